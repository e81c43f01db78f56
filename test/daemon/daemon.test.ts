// End to end: `ferry daemon --services FILE` in a node namespace programs a
// ClusterIP from a Service and an EndpointSlice manifest, follows edits of
// the file (how fast is a bench's target, not a test's), refuses invalid
// Services by name while the valid one works, serves kube-proxy's /healthz
// (503 once a change waited 2 × syncPeriod, set to 1 s here) and /metrics,
// and survives SIGKILL under load: iperf3 and 50 open connections through a
// ClusterIP see no reset, and the new daemon adopts the maps and writes
// nothing.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fromPodPin } from '../../engine/dataplane/paths.js';
import { Prober, type TcpStream } from '../../engine/probe/probe.js';
import { replaceFile } from '../support/files.js';
import { inNetns, isRoot, run } from '../support/netns.js';
import { parsePrometheus, sample } from './prometheus.js';
import { DaemonProcess, httpGetIn, isSync, nodeFixture, pollUntil, type NodeFixture } from './support.js';

const VIP = '10.96.0.10';
const IPERF_VIP = '10.96.0.20';
// Inside the node namespace: nothing on the host is taken.
const HEALTHZ = '127.0.0.1:10256';
const METRICS = '127.0.0.1:10249';

const cleanups: Array<() => unknown> = [];
const defer = (c: () => unknown) => void cleanups.push(c);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const service = (name: string, clusterIP: string, port: number | string, targetPort: number, protocol = 'TCP') => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
  type: ClusterIP
  clusterIP: ${clusterIP}
  ports:
    - { name: p, protocol: ${protocol}, port: ${port}, targetPort: ${targetPort} }
`;

const slice = (serviceName: string, port: number, backends: string[]) => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${serviceName}-abc12
  namespace: default
  labels: { kubernetes.io/service-name: ${serviceName} }
addressType: IPv4
ports: [{ name: p, port: ${port}, protocol: TCP }]
endpoints:
${backends.map((ip) => `  - addresses: [${ip}]\n    conditions: { ready: true }\n    nodeName: node-a`).join('\n')}
`;

/** A port, an IP and a protocol that are not valid: each Service is refused by name. */
const BROKEN = [service('bad-port', '10.96.0.11', 70000, 8080), service('bad-ip', '10.96.0.300', 80, 8080), service('bad-proto', '10.96.0.12', 80, 8080, 'ICMP')];
const web = (backends: string[]) => [...BROKEN, service('web', VIP, 80, 8080), slice('web', 8080, backends)].join('---\n');

/** `ferry daemon` in the node namespace with a config file and flags over it. */
function daemonArgs(f: NodeFixture, file: string, settings: string[]): string[] {
  const config = join(f.dir, 'daemon.yaml');
  writeFileSync(config, settings.join('\n'));
  return ['--config', config, '--cni-socket', join(f.dir, 'cni.sock'), '--pin-root', f.pinRoot, '--services', file, '--node-name', 'node-a'];
}

/** The Tcp: counters of /proc/net/snmp in namespace `ns`. */
function tcpCounters(ns: string): Record<string, number> {
  const lines = inNetns(ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Tcp:'));
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
}

describe.skipIf(!isRoot)('ferry daemon --services (needs root)', () => {
  it('programs a ClusterIP from manifests, follows edits, refuses bad Services, reports health and metrics', { timeout: 120_000 }, async () => {
    const f = nodeFixture('fd', defer);
    const file = join(f.dir, 'services.yaml');
    writeFileSync(file, BROKEN.join('---\n'));
    const args = daemonArgs(f, file, [`healthzBindAddress: "${HEALTHZ}"`, `metricsBindAddress: "${METRICS}"`, 'syncPeriod: 1s', 'conntrackGCInterval: 1s']);
    const daemon = new DaemonProcess(f.ns, args);
    defer(() => daemon.kill());

    // Only invalid Services at first: each refused with a line naming it and the field; the daemon runs on.
    for (const [name, field] of [['bad-port', 'spec.ports[0].port'], ['bad-ip', 'spec.clusterIPs[0]'], ['bad-proto', 'spec.ports[0].protocol']]) {
      const refused = await daemon.waitFor((l) => l.level === 50 && l.object === `default/${name}`, 20_000);
      expect(refused.msg).toContain(`Service default/${name} `);
      expect(refused.msg).toContain(field);
    }
    expect(await daemon.waitFor(isSync)).toMatchObject({ frontends: 0, problems: 3 });

    const client = await f.addPod('client');
    const be1 = await f.addPod('be1');
    const be2 = await f.addPod('be2');
    const prober = new Prober();
    defer(() => prober.close());
    for (const b of [be1, be2]) await prober.serveTcp(b.netns, b.ip, 8080, { echo: true });

    // The valid Service with both backends, beside the invalid ones.
    let synced = daemon.nextSync();
    replaceFile(file, web([be1.ip, be2.ip]));
    let sync = await synced;
    expect(sync).toMatchObject({ services: 1, frontends: 1, backends: 2, problems: 3 });
    for (let i = 0; i < 8; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `hello ${i}`);
      expect(r.reply).toContain(`pong hello ${i} (you are ${client.ip}:`);
    }

    // be2 leaves the slice: once synced, new connections go to be1 only (be2 is cut off to prove it).
    synced = daemon.nextSync();
    replaceFile(file, web([be1.ip]));
    sync = await synced;
    expect(sync).toMatchObject({ frontends: 1, backends: 1 });
    expect(sync.writes).toMatchObject({ backends: { removed: 1 } });
    run('ip', ['-n', be2.ns, 'link', 'set', 'eth0', 'down']);
    for (let i = 0; i < 10; i++) await prober.tcpExchange(client.netns, VIP, 80, `after ${i}`, 5000);

    // kube-proxy's /healthz: fresh while every change is synced.
    const healthy = await httpGetIn(f.ns, `http://${HEALTHZ}/healthz`);
    expect(healthy).toMatchObject({ status: 200, json: { nodeEligible: true } });
    expect(Date.parse(healthy.json.lastUpdated)).toBe(Date.parse(healthy.json.currentTime));

    // The file goes away: that sync fails (the maps stay as they are, traffic goes on), and
    // once the change has waited 2 × syncPeriod for a successful sync, /healthz says 503.
    const failed = daemon.lines.length;
    renameSync(file, `${file}.away`);
    await daemon.waitFor((l) => l.level === 50 && /sync from .* failed/.test(l.msg), 20_000, failed);
    const stale = await pollUntil('/healthz 503', () => httpGetIn(f.ns, `http://${HEALTHZ}/healthz`), (a) => a.status === 503);
    expect(Date.parse(stale.json.currentTime) - Date.parse(stale.json.lastUpdated)).toBeGreaterThanOrEqual(2000);
    expect((await httpGetIn(f.ns, `http://${HEALTHZ}/livez`)).status).toBe(503);
    await prober.tcpExchange(client.netns, VIP, 80, 'while stale');
    renameSync(`${file}.away`, file);
    await pollUntil('/healthz 200 again', () => httpGetIn(f.ns, `http://${HEALTHZ}/healthz`), (a) => a.status === 200);

    // /metrics, parsed: what the last sync programmed, the failed sync, the datapath's counters.
    const metrics = await httpGetIn(f.ns, `http://${METRICS}/metrics`);
    expect(metrics.status).toBe(200);
    const s = parsePrometheus(metrics.body);
    expect(sample(s, 'ferry_services_programmed')).toBe(1);
    expect(sample(s, 'ferry_frontends_programmed')).toBe(1);
    expect(sample(s, 'ferry_endpoints_programmed')).toBe(1);
    expect(sample(s, 'ferry_sync_refused_objects')).toBe(3);
    expect(sample(s, 'ferry_sync_errors_total')).toBeGreaterThanOrEqual(1);
    expect(sample(s, 'ferry_sync_duration_seconds_count')).toBe(daemon.lines.filter(isSync).length);
    expect(sample(s, 'ferry_lb_packets_total{outcome="translated"}')).toBeGreaterThanOrEqual(19);
    expect(sample(s, 'ferry_bpf_map_entries{map="services"}')).toBe(2); // slot 0 and one backend
    expect(sample(s, 'ferry_bpf_map_entries{map="backends"}')).toBe(1);
    expect(sample(s, 'ferry_bpf_map_max_entries{map="conntrack"}')).toBeGreaterThan(0);
    // Both families' maps are read; ferry_ct_entries counts both conntrack maps.
    expect(sample(s, 'ferry_bpf_map_entries{map="services6"}')).toBe(0);
    expect(sample(s, 'ferry_bpf_map_max_entries{map="backends6"}')).toBeGreaterThan(0);
    expect(sample(s, 'ferry_ct_entries')).toBe(sample(s, 'ferry_bpf_map_entries{map="conntrack"}') + sample(s, 'ferry_bpf_map_entries{map="conntrack6"}'));
    expect(sample(s, 'ferry_ct_max_entries')).toBe(sample(s, 'ferry_bpf_map_max_entries{map="conntrack"}') + sample(s, 'ferry_bpf_map_max_entries{map="conntrack6"}'));
    expect(sample(s, 'ferry_ct_gc_runs_total')).toBeGreaterThanOrEqual(1);

    // SIGTERM: a clean exit, the dataplane left pinned.
    const stopped = await daemon.kill('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(existsSync(fromPodPin(f.pinRoot))).toBe(true);
    expect(existsSync(join(f.dir, 'cni.sock'))).toBe(false);
  });

  it('SIGKILL and a restart under iperf3 and 50 open connections through ClusterIPs: no reset, the maps adopted', { timeout: 180_000 }, async () => {
    const f = nodeFixture('fr', defer);
    const file = join(f.dir, 'services.yaml');
    writeFileSync(file, '');
    const args = daemonArgs(f, file, ['conntrackGCInterval: 1s']);
    const daemons: DaemonProcess[] = [];
    defer(async () => {
      for (const d of daemons) await d.kill();
    });
    const start = () => daemons[daemons.push(new DaemonProcess(f.ns, args)) - 1]!;
    let daemon = start();
    await daemon.waitFor(isSync, 20_000);

    // Pods once the daemon has pinned the dataplane (CNI ADD attaches them to it).
    const client = await f.addPod('client');
    const be = await f.addPod('be');
    const prober = new Prober();
    defer(() => prober.close());
    await prober.serveTcp(be.netns, be.ip, 8080, { echo: true });
    const synced = daemon.nextSync();
    replaceFile(file, [service('web', VIP, 80, 8080), slice('web', 8080, [be.ip]), service('iperf', IPERF_VIP, 5201, 5201), slice('iperf', 5201, [be.ip])].join('---\n'));
    expect(await synced).toMatchObject({ services: 2, frontends: 2, backends: 2 });

    const streams: TcpStream[] = [];
    for (let i = 0; i < 50; i++) streams.push(await prober.openTcpStream(client.netns, VIP, 80));
    defer(() => Promise.all(streams.map((s) => s.close().catch(() => undefined))));
    const sendAll = async (what: string) => {
      const replies = await Promise.all(streams.map((s, i) => s.send(`${what} ${i}`, 5000)));
      replies.forEach((r, i) => expect(r).toContain(`pong ${what} ${i}`));
    };
    await sendAll('before');

    // iperf3 through the ClusterIP, long enough to outlast the kill and the restart with room to spare
    // (a daemon start on a busy 2-core machine is slow; iperf3 ending first would fail the test).
    const server = spawn('nsenter', [`--net=/var/run/netns/${be.ns}`, 'iperf3', '-s', '-1', '-B', be.ip, '-p', '5201'], { stdio: 'ignore' });
    defer(() => server.exitCode === null && server.signalCode === null && server.kill('SIGKILL'));
    await pollUntil('iperf3 listening', async () => inNetns(be.ns, 'ss', ['-Htln', `sport = :5201`]), (out) => out.trim() !== '');
    const iperf = spawn('nsenter', [`--net=/var/run/netns/${client.ns}`, 'iperf3', '-c', IPERF_VIP, '-p', '5201', '-t', '40', '-i', '1', '-J'], { stdio: ['ignore', 'pipe', 'pipe'] });
    defer(() => iperf.exitCode === null && iperf.signalCode === null && iperf.kill('SIGKILL'));
    let iperfOut = '';
    iperf.stdout!.setEncoding('utf8').on('data', (c: string) => (iperfOut += c));
    const iperfDone = once(iperf, 'exit');
    await pollUntil('iperf3 connected', async () => inNetns(client.ns, 'ss', ['-Htn', 'state', 'established', `dport = :5201`]), (out) => out.split('\n').filter(Boolean).length >= 2);

    const resetsBefore = { client: tcpCounters(client.ns).EstabResets!, backend: tcpCounters(be.ns).EstabResets! };
    expect((await daemon.kill('SIGKILL')).signal).toBe('SIGKILL');
    await sendAll('daemon down');
    await prober.tcpExchange(client.netns, VIP, 80, 'new flow while down');

    daemon = start();
    const sync = await daemon.waitFor(isSync, 30_000);
    // The maps were adopted: nothing to write for the same file.
    for (const map of ['services', 'backends', 'revNat'] as const) expect(sync.writes, map).toMatchObject({ [map]: { added: 0, updated: 0, removed: 0 } });
    await sendAll('after restart');
    expect(tcpCounters(client.ns).EstabResets).toBe(resetsBefore.client);
    expect(tcpCounters(be.ns).EstabResets).toBe(resetsBefore.backend);
    expect(iperf.exitCode, 'iperf3 still running after the restart').toBeNull();

    const [code] = await iperfDone;
    expect(code, iperfOut.slice(-2000)).toBe(0);
    const result = JSON.parse(iperfOut) as { error?: string; intervals: Array<{ sum: { bytes: number } }>; end: { sum_received: { bytes: number } } };
    expect(result.error).toBeUndefined();
    // Every second of the 40 carried data: the transfer never stopped.
    expect(result.intervals.length).toBeGreaterThanOrEqual(40);
    for (const [i, interval] of result.intervals.entries()) expect(interval.sum.bytes, `interval ${i}`).toBeGreaterThan(0);
    expect(result.end.sum_received.bytes).toBeGreaterThan(0);
  });
});
