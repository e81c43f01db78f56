// The node network fed by the API server: startNodeNetwork() with the
// daemon's API source (plugin/daemon/node-network.ts, k8s-source.ts) against the fake
// API server on 127.0.0.1, applied to a namespace of the test's own. Nodes
// added, changed and deleted through list + watch reach the kernel; a watch
// the server resets is restarted and the store resyncs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_VXLAN } from '../../engine/nodes/model.js';
import { K8sApiSource, loadKubeConfig } from '../../plugin/daemon/k8s-source.js';
import { startNodeNetwork, type NodeNetwork } from '../../plugin/daemon/node-network.js';
import { FakeApiServer } from '../daemon/fake-apiserver.js';
import { handleIn, ip, vethUp } from '../support/handle.js';
import { ipJson, isRoot } from '../support/netns.js';
import { PROTO, until } from './cluster.js';

const node = (name: string, address: string, podCIDR: string) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  spec: { podCIDR, podCIDRs: [podCIDR] },
  status: { addresses: [{ type: 'InternalIP', address }] },
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!isRoot)('node network from the API server (needs root for its namespace)', () => {
  it('follows Nodes added, changed and deleted, and a watch the server drops', { timeout: 60_000 }, async () => {
    const { ns, h } = await handleIn('mna');
    vethUp(ns, 'eth0', 'peer0');
    ip(ns, 'addr', 'add', '192.168.100.11/24', 'dev', 'eth0');
    const dir = mkdtempSync(join(tmpdir(), 'ferry-mn-api-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const server = await new FakeApiServer().listen();
    cleanups.push(() => server.close());
    server.writeKubeconfig(join(dir, 'kubeconfig'));
    server.apply('nodes', node('node-1', '192.168.100.11', '10.244.1.0/24'));
    server.apply('nodes', node('node-2', '192.168.100.12', '10.244.2.0/24'));

    const log = pino({ level: 'silent' });
    const api = new K8sApiSource({ kubeConfig: loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig') }), nodeName: 'node-1', log, onChange: () => {} });
    cleanups.push(() => api.close());
    const nn: NodeNetwork = await startNodeNetwork({
      settings: { mode: 'direct', vxlan: { ...DEFAULT_VXLAN } },
      nodeName: 'node-1',
      source: api,
      netns: h.netns,
      log,
      delayMs: 20,
    });
    cleanups.push(() => nn.close());
    api.start();
    const routes = () => ipJson<any[]>(ns, ['route', 'show', 'proto', PROTO]).map((r) => (r.type === 'blackhole' ? `blackhole ${r.dst}` : `${r.dst} via ${r.gateway}`)).sort();
    const settle = async (want: string[]) => {
      await until(`routes ${want.join(', ')}`, () => JSON.stringify(routes()) === JSON.stringify(want));
      expect(routes()).toEqual(want);
    };

    await settle(['10.244.2.0/24 via 192.168.100.12', 'blackhole 10.244.1.0/24']);
    server.apply('nodes', node('node-3', '192.168.100.13', '10.244.3.0/24'));
    await settle(['10.244.2.0/24 via 192.168.100.12', '10.244.3.0/24 via 192.168.100.13', 'blackhole 10.244.1.0/24']);
    server.apply('nodes', node('node-2', '192.168.100.22', '10.244.2.0/24'));
    await settle(['10.244.2.0/24 via 192.168.100.22', '10.244.3.0/24 via 192.168.100.13', 'blackhole 10.244.1.0/24']);
    server.remove('nodes', undefined, 'node-3');
    await settle(['10.244.2.0/24 via 192.168.100.22', 'blackhole 10.244.1.0/24']);

    // The server drops the watch; a change made meanwhile still arrives.
    await until('the nodes watch', () => server.watching('nodes') > 0);
    server.dropWatches('nodes', true);
    server.apply('nodes', node('node-4', '192.168.100.14', '10.244.4.0/24'));
    await settle(['10.244.2.0/24 via 192.168.100.22', '10.244.4.0/24 via 192.168.100.14', 'blackhole 10.244.1.0/24']);
  });
});
