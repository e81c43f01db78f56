// The API server source (plugin/daemon/k8s-source.ts) against a fake API
// server on 127.0.0.1: the library's informers list and watch, the store
// feeds the file source's conversion, and desiredState() follows ADDED,
// MODIFIED, DELETED, a 410 relist and a reset connection. No root needed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { desiredState } from '../../engine/dataplane/desired.js';
import { clusterStateFromObjects } from '../../engine/dataplane/k8s.js';
import { K8sApiSource, loadKubeConfig } from '../../plugin/daemon/k8s-source.js';
import { FakeApiServer } from './fake-apiserver.js';

const service = (name: string, clusterIP: string, nodePort?: number) => ({
  metadata: { name, namespace: 'shop' },
  spec: {
    type: nodePort === undefined ? 'ClusterIP' : 'NodePort',
    clusterIP,
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, ...(nodePort !== undefined && { nodePort }) }],
  },
});
const slice = (service: string, addresses: string[]) => ({
  metadata: { name: `${service}-x`, namespace: 'shop', labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
});
const node = (name: string, ip: string) => ({ metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }] } });

/** Polls f until it returns a truthy value: 0 (say, no watchers yet) is not done. */
async function until<T>(what: string, f: () => T | undefined | null | false | 0, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Kubernetes API source', () => {
  let dir: string;
  let server: FakeApiServer;
  let source: K8sApiSource | undefined;
  let changes = 0;
  const logs: Array<{ msg: string; resource?: string }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as { msg: string }) });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-k8s-api-'));
    server = await new FakeApiServer().listen();
    server.writeKubeconfig(join(dir, 'kubeconfig'));
    changes = 0;
    logs.length = 0;
  });
  afterEach(async () => {
    await source?.close();
    source = undefined;
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = () => {
    source = new K8sApiSource({
      kubeConfig: loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig') }),
      nodeName: 'node-a',
      log,
      onChange: () => changes++,
      backoffMs: 50,
      backoffCapMs: 200,
      resyncMs: 0,
    }).start();
    return source;
  };
  /** The summary of desiredState(): frontend → backends. */
  const desired = () => {
    const state = clusterStateFromObjects(source!.read().objects);
    const addrs = source!.nodeAddresses();
    const d = desiredState(state.services, state.endpoints, { nodeName: 'node-a', ...(addrs !== undefined && { nodeAddresses: addrs }) });
    return Object.fromEntries([...d.frontends.values()].sort((a, b) => (`${a.address}:${a.port}` < `${b.address}:${b.port}` ? -1 : 1)).filter((f) => f.scope === 'external').map((f) => [`${f.address}:${f.port}`, f.backends.join(',')]));
  };
  const settle = async (want: Record<string, string>) => {
    const sorted = JSON.stringify(Object.fromEntries(Object.entries(want).sort(([a], [b]) => (a < b ? -1 : 1))));
    await until(`desired state ${sorted}`, () => JSON.stringify(desired()) === sorted);
    expect(desired()).toEqual(want);
  };

  it('lists, then follows ADDED, MODIFIED and DELETED', async () => {
    server.apply('services', service('web', '10.96.0.10', 30080));
    server.apply('endpointslices', slice('web', ['10.244.0.5', '10.244.0.6']));
    server.apply('nodes', node('node-a', '192.168.50.2'));
    server.apply('nodes', node('node-b', '192.168.50.3'));
    const s = start();
    await s.whenReady();
    await settle({ '10.96.0.10:80': '10.244.0.5:8080/tcp,10.244.0.6:8080/tcp', '192.168.50.2:30080': '10.244.0.5:8080/tcp,10.244.0.6:8080/tcp' });
    expect(server.requests.find((r) => !r.watch)?.authorization).toBe('Bearer fake-token');
    await until('three watches', () => server.watching('services') > 0 && server.watching('endpointslices') > 0 && server.watching('nodes') > 0);

    const before = changes;
    server.apply('services', service('db', '10.96.0.20'));
    server.apply('endpointslices', slice('db', ['10.244.1.9']));
    server.apply('endpointslices', slice('web', ['10.244.0.6'])); // MODIFIED: 10.244.0.5 gone
    await settle({
      '10.96.0.10:80': '10.244.0.6:8080/tcp',
      '10.96.0.20:80': '10.244.1.9:8080/tcp',
      '192.168.50.2:30080': '10.244.0.6:8080/tcp',
    });
    expect(changes).toBeGreaterThan(before);

    server.remove('services', 'shop', 'db');
    server.remove('endpointslices', 'shop', 'db-x');
    await settle({ '10.96.0.10:80': '10.244.0.6:8080/tcp', '192.168.50.2:30080': '10.244.0.6:8080/tcp' });
    // The store hands k8s.ts objects stamped with apiVersion/kind: nothing is left out.
    expect(clusterStateFromObjects(s.read().objects).problems).toEqual([]);
  });

  it('stores Services and slices converted, as they arrive: their identity and conversion, not the objects', async () => {
    const web = { ...service('web', '10.96.0.10', 30080), metadata: { name: 'web', namespace: 'shop', annotations: { note: 'x'.repeat(1000) } } };
    const bad = slice('bad', ['not-an-address']);
    server.apply('services', web);
    server.apply('endpointslices', slice('web', ['10.244.0.5', '10.244.0.6']));
    server.apply('endpointslices', bad);
    const s = start();
    await s.whenReady();
    const raw = [
      { apiVersion: 'v1', kind: 'Service', ...web },
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', ...slice('web', ['10.244.0.5', '10.244.0.6']) },
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', ...bad },
    ].map((object) => ({ source: 'api', object }));
    const check = () => {
      const stored = s.read().objects.map((o) => o.object as { metadata: Record<string, unknown> });
      for (const o of stored) {
        expect(Object.keys(o).sort()).toEqual(['apiVersion', 'kind', 'metadata']);
        expect(Object.keys(o.metadata).sort()).toEqual(o.metadata.labels ? ['labels', 'name', 'namespace', 'resourceVersion'] : ['name', 'namespace', 'resourceVersion']);
      }
      // What the sync gets is what converting the objects themselves gives, problems included.
      expect(clusterStateFromObjects(s.read().objects)).toEqual(clusterStateFromObjects(raw));
    };
    check();
    // A watch event's object is stored converted too.
    await until('watches', () => server.watching('endpointslices') > 0);
    const moved = slice('web', ['10.244.0.7']);
    raw[1] = { source: 'api', object: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', ...moved } };
    server.apply('endpointslices', moved);
    await until('the MODIFIED slice', () => clusterStateFromObjects(s.read().objects).endpoints.get('shop/web')?.[0]?.addresses[0] === '10.244.0.7');
    check();
  });

  it('a dual-stack Service and node: IPv4 and IPv6 slices, NodePorts at both InternalIPs (canonical)', async () => {
    server.apply('services', {
      ...service('web', '10.96.0.10', 30080),
      spec: { ...service('web', '10.96.0.10', 30080).spec, clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' },
    });
    server.apply('endpointslices', slice('web', ['10.244.0.5']));
    const v6 = slice('web', ['fd00:244::5']);
    server.apply('endpointslices', { ...v6, metadata: { ...v6.metadata, name: 'web-y' }, addressType: 'IPv6' });
    server.apply('nodes', {
      metadata: { name: 'node-a' },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.50.2' }, { type: 'InternalIP', address: '2001:DB8:0::2' }, { type: 'ExternalIP', address: '203.0.113.2' }, { type: 'Hostname', address: 'node-a' }] },
    });
    const s = start();
    await s.whenReady();
    expect(await until('the Node', () => s.nodeAddresses())).toEqual(['192.168.50.2', '2001:db8::2']);
    await settle({
      '10.96.0.10:80': '10.244.0.5:8080/tcp',
      'fd00:96::10:80': 'fd00:244::5:8080/tcp',
      '192.168.50.2:30080': '10.244.0.5:8080/tcp',
      '2001:db8::2:30080': 'fd00:244::5:8080/tcp',
    });
  });

  // (The watches must really be connected before the BOOKMARK: whenReady()
  // resolves after the lists, before the watch requests reach the server.)
  it('relists after 410 Gone (an ERROR event, then a too-old resourceVersion) and resumes after a BOOKMARK', async () => {
    server.apply('services', service('web', '10.96.0.10'));
    server.apply('endpointslices', slice('web', ['10.244.0.5']));
    const s = start();
    await s.whenReady();
    await settle({ '10.96.0.10:80': '10.244.0.5:8080/tcp' });
    await until('watches', () => server.watching('services') > 0 && server.watching('endpointslices') > 0);

    // A BOOKMARK moves the watch's resourceVersion; a clean end resumes from it, without a list.
    const mark = server.bookmark('services');
    const lists = s.stats('services').lists;
    await new Promise((r) => setTimeout(r, 50));
    server.dropWatches('services');
    await until(`a watch from the bookmark ${mark}: ${JSON.stringify(server.requests.filter((r) => r.resource === 'services'))}`, () => server.requests.some((r) => r.resource === 'services' && r.watch && r.resourceVersion === String(mark)));
    expect(s.stats('services').lists).toBe(lists);

    // The server changes things watchers never hear of, then expires their watch.
    server.applySilently('services', { delete: { namespace: 'shop', name: 'web' } });
    server.applySilently('services', service('api', '10.96.0.30'));
    server.applySilently('endpointslices', slice('api', ['10.244.2.2']));
    server.gone('services'); // ERROR 410 event
    server.dropWatches('endpointslices'); // its resumed watch gets a 410 status
    await settle({ '10.96.0.30:80': '10.244.2.2:8080/tcp' });
    expect(s.stats('services').lists).toBe(lists + 1);
    expect(s.stats('endpointslices').lists).toBe(2);
    expect(s.stats('services').errors).toBe(0);
  });

  it('a watch the server ends cleanly (no error) is resumed at once from its resourceVersion, without a list', async () => {
    server.apply('services', service('web', '10.96.0.10'));
    server.apply('endpointslices', slice('web', ['10.244.0.5']));
    const s = start();
    await s.whenReady();
    await until('watches', () => server.watching('services') > 0 && server.watching('endpointslices') > 0 && server.watching('nodes') > 0);
    const watches = () => server.requests.filter((r) => r.resource === 'services' && r.watch);
    // The store keeps a Service's identity and its conversion (k8s-source.ts).
    type Svc = { metadata: { resourceVersion: string } };
    const stored = () => s.read().objects.find((o) => (o.object as { kind?: string }).kind === 'Service')?.object as Svc | undefined;
    const nodePort = () => clusterStateFromObjects(s.read().objects).services[0]?.ports[0]?.nodePort;

    // As the API server does at its watch timeout: the response just ends.
    for (let round = 0; round < 3; round++) {
      // The resourceVersion of the newest services event (or of the list).
      const rv = round === 0 ? watches().at(-1)!.resourceVersion : stored()!.metadata.resourceVersion;
      const before = watches().length;
      expect(server.dropWatches('services')).toBe(1);
      // Resumed as a clean end, not retried as an error (errors: 0 below); how fast is a bench's question.
      await until('the services watch resumed', () => watches().length > before && server.watching('services') > 0);
      expect(watches().at(-1)!.resourceVersion).toBe(rv); // from where it was, not a relist
      // Changes after the resumed watch arrive.
      server.apply('services', service('web', '10.96.0.10', 30000 + round));
      await until(`nodePort ${30000 + round}`, () => nodePort() === 30000 + round);
    }
    expect(s.stats('services')).toMatchObject({ starts: 1, errors: 0, lists: 1 });
    expect(server.requests.filter((r) => r.resource === 'services' && !r.watch)).toHaveLength(1);
  });

  it('a reset watch is restarted with growing, capped backoff; a refused server is retried until it returns', async () => {
    server.apply('services', service('web', '10.96.0.10'));
    server.apply('endpointslices', slice('web', ['10.244.0.5']));
    const s = start();
    await s.whenReady();
    await until('watches', () => server.watching('services') > 0);

    // A reset watch is a failure: the library stops the informer, and we
    // restart it after the backoff, from its resourceVersion (no list).
    const watches = server.requests.filter((r) => r.resource === 'services' && r.watch).length;
    const rv = server.requests.filter((r) => r.resource === 'services' && r.watch).at(-1)!.resourceVersion;
    expect(server.dropWatches('services', true)).toBe(1);
    await until('a new services watch', () => server.requests.filter((r) => r.resource === 'services' && r.watch).length > watches && server.watching('services') > 0);
    expect(server.requests.filter((r) => r.resource === 'services' && r.watch).at(-1)!.resourceVersion).toBe(rv);
    expect(s.stats('services')).toMatchObject({ starts: 2, errors: 1, lists: 1 });
    // The restarted watch works; its event also resets the backoff.
    server.apply('services', service('web', '10.96.0.11'));
    await settle({ '10.96.0.11:80': '10.244.0.5:8080/tcp' });

    // The server goes away: each restart fails (refused), and the delays grow to the cap.
    const port = server.port;
    await server.close();
    await until('five more failures', () => s.stats('services').errors >= 6);
    const failed = logs.filter((l) => l.resource === 'services' && /informer failed/.test(l.msg));
    const delays = failed.map((l) => Number(/restarting in (\d+) ms/.exec(l.msg)![1]));
    expect(delays.slice(0, 6)).toEqual([50, 50, 100, 200, 200, 200]);

    // Back on the same port, changed meanwhile and with the old history gone: relisted.
    server = new FakeApiServer(1000);
    server.applySilently('services', service('db', '10.96.0.20'));
    server.applySilently('endpointslices', slice('db', ['10.244.1.9']));
    await server.listen(port);
    await settle({ '10.96.0.20:80': '10.244.1.9:8080/tcp' });
    await until('watches again', () => server.watching('services') > 0 && server.watching('endpointslices') > 0 && server.watching('nodes') > 0);
  });
});
