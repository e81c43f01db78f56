// End to end: `ferry daemon --services FILE` in a node namespace programs a
// ClusterIP from a Service and an EndpointSlice manifest, follows edits of
// the file within a second, refuses an invalid Service by name while the
// valid one works, survives SIGKILL (the datapath keeps forwarding; the new
// daemon adopts the maps and writes nothing) and serves /healthz and /metrics.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { fromPodPin } from '../../engine/dataplane/paths.js';
import { Netns } from '../../engine/netns/netns.js';
import { Prober } from '../../engine/probe/probe.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { isRoot, makeNetns, run } from '../support/netns.js';
import { DaemonProcess, isSync } from './support.js';

const VIP = '10.96.0.10';
const METRICS = '127.0.0.1:9464';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const service = (name: string, port: number | string) => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
  type: ClusterIP
  clusterIP: ${name === 'web' ? VIP : '10.96.0.11'}
  ports:
    - { name: http, protocol: TCP, port: ${port}, targetPort: 8080 }
`;

const slice = (backends: string[]) => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: default
  labels: { kubernetes.io/service-name: web }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
${backends.map((ip) => `  - addresses: [${ip}]\n    conditions: { ready: true }\n    nodeName: node-a`).join('\n')}
`;

/** GET http://METRICS/PATH from inside the node namespace. */
async function httpGet(nodeNs: string, path: string): Promise<{ status: number; body: string }> {
  const script = `fetch('http://${METRICS}${path}').then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))`;
  const { stdout } = await promisify(execFile)('nsenter', [`--net=/var/run/netns/${nodeNs}`, process.execPath, '-e', script]);
  return JSON.parse(stdout) as { status: number; body: string };
}

describe.skipIf(!isRoot)('ferry daemon --services (needs root)', () => {
  it('programs a ClusterIP from manifests, follows edits, refuses a bad Service, survives a restart', { timeout: 90_000 }, async () => {
    const pinRoot = makePinDir('ferry-daemon');
    cleanups.push(() => removePinDir(pinRoot));
    const state = mkdtempSync(join(tmpdir(), 'ferry-daemon-'));
    cleanups.push(() => rmSync(state, { recursive: true, force: true }));
    const nodeName = makeNetns('fd-node');
    const node = Netns.open(nodeName);
    cleanups.push(() => node.close());
    run('ip', ['-n', nodeName, 'link', 'set', 'lo', 'up']);

    const file = join(state, 'services.yaml');
    // At first only an invalid Service (port out of range): refused by name, daemon runs on.
    writeFileSync(file, service('broken', 70000));
    const args = ['--cni-socket', join(state, 'cni.sock'), '--pin-root', pinRoot, '--services', file, '--node-name', 'node-a', '--metrics-address', METRICS, '--gc-interval', '1000'];
    const daemons: DaemonProcess[] = [];
    const start = () => {
      const d = new DaemonProcess(nodeName, args);
      daemons.push(d);
      return d;
    };
    cleanups.push(async () => {
      for (const d of daemons) await d.kill();
    });
    let daemon = start();
    const refused = await daemon.waitFor((l) => l.level === 50 && l.object === 'default/broken', 20_000);
    expect(refused.msg).toContain('spec.ports[0].port');
    expect((await daemon.waitFor(isSync)).frontends).toBe(0);

    // Pods through ferry's CNI, attached to the daemon's pinned from_pod.
    const handlers = createHandlers({ nodeNetns: node });
    const conf = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'daemon-e2e',
      type: 'ferry',
      logFile: join(state, 'cni.log'),
      dataDir: join(state, 'state'),
      ebpf: { pinRoot },
      ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }]] },
    });
    const add = async (label: string) => {
      const ns = makeNetns(`fd-${label}`);
      const netns = Netns.open(ns);
      cleanups.push(() => netns.close());
      const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `daemon-${label}`, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
      const out = await runCni({ env, stdin: conf }, handlers);
      expect(out.exitCode, out.stdout).toBe(0);
      const ip = (JSON.parse(out.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address.split('/')[0]!;
      return { ns, netns, ip };
    };
    const client = await add('client');
    const be1 = await add('be1');
    const be2 = await add('be2');
    const prober = new Prober();
    cleanups.push(() => prober.close());
    for (const b of [be1, be2]) await prober.serveTcp(b.netns, b.ip, 8080, { echo: true });

    // The valid Service with both backends, beside the invalid one.
    let synced = daemon.nextSync();
    let t0 = Date.now();
    writeFileSync(file, [service('broken', 70000), service('web', 80), slice([be1.ip, be2.ip])].join('---\n'));
    let sync = await synced;
    expect(sync.time - t0).toBeLessThan(1000);
    expect(sync).toMatchObject({ services: 1, frontends: 1, backends: 2, problems: 1 });
    for (let i = 0; i < 8; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `hello ${i}`);
      expect(r.reply).toContain(`pong hello ${i} (you are ${client.ip}:`);
    }

    // be2 leaves the slice: within 1 s new connections go to be1 only (be2 is cut off to prove it).
    synced = daemon.nextSync();
    t0 = Date.now();
    writeFileSync(file, [service('broken', 70000), service('web', 80), slice([be1.ip])].join('---\n'));
    sync = await synced;
    expect(sync.time - t0).toBeLessThan(1000);
    expect(sync).toMatchObject({ frontends: 1, backends: 1 });
    expect(sync.writes).toMatchObject({ backends: { removed: 1 } });
    run('ip', ['-n', be2.ns, 'link', 'set', 'eth0', 'down']);
    for (let i = 0; i < 10; i++) await prober.tcpExchange(client.netns, VIP, 80, `after ${i}`, 1500);

    // A connection held open across a SIGKILL and a restart of the daemon.
    const stream = await prober.openTcpStream(client.netns, VIP, 80);
    expect(await stream.send('before')).toContain('pong before');
    const killed = await daemon.kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    expect(await stream.send('daemon down')).toContain('pong daemon down');
    await prober.tcpExchange(client.netns, VIP, 80, 'new flow while down');

    daemon = start();
    sync = await daemon.waitFor(isSync, 20_000);
    // The maps were adopted: nothing to write for the same file.
    for (const map of ['services', 'backends', 'revNat'] as const) {
      expect(sync.writes, map).toMatchObject({ [map]: { added: 0, updated: 0, removed: 0 } });
    }
    expect(await stream.send('after restart')).toContain('pong after restart');
    await stream.close();

    const health = await httpGet(nodeName, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', syncs: 1 });
    const metrics = await httpGet(nodeName, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^ferry_ct_entries \d+$/m);
    expect(metrics.body).toContain('ferry_lb_packets_total{outcome=');

    // SIGTERM: a clean exit, the dataplane left pinned.
    const stopped = await daemon.kill('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(existsSync(fromPodPin(pinRoot))).toBe(true);
    expect(existsSync(join(state, 'cni.sock'))).toBe(false);
  });
});
