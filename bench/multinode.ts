// Multi-node bench: TCP throughput (iperf3) pod↔pod across two nodes, by
// direct routes and through the VXLAN overlay, beside pod↔pod on one node,
// in one run; and how long a node's routes take to follow a Node leaving
// and joining.
//
//   make bench-multinode    (node --import tsx bench/multinode.ts [options]; --help lists them)
//
// Two node namespaces on an underlay bridge (engine/demo/cluster.ts: wired
// by ferry's engine, pods added by ferry's CNI ADD in routed mode, no eBPF
// dataplane), pods a and b on node-1, c on node-2:
//   direct  node network in direct mode; pods' MTU 1500;
//           same node a→b, across nodes a→c (routed via node-2's address);
//   vxlan   the same nodes re-reconciled to vxlan mode and the pods re-added
//           with the device's MTU (1450): same node a→b, across nodes a→c
//           (through ferry.vxlan, UDP 8472 on the underlay).
// Each scenario is `iperf3 -c` in the client pod against a one-shot
// `iperf3 -s -1 -B <server IP>` (bench/dataplane/iperf.ts), --repeat times
// (median reported). The issue's target: direct ≥ 0.8 × same node.
// Raw figures go to build/bench/multinode-<timestamp>.json.
//
// Needs root and `make`. Never touches the host's network namespace;
// everything (namespaces, iperf3 processes, temp dirs) is removed at the
// end, on failure and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { Command } from 'commander';
import { integer, REPO_ROOT } from './support/cli.js';
import { SimCluster, type SimPod } from '../engine/demo/cluster.js';
import type { NodeNetworkMode } from '../engine/nodes/model.js';
import { iperfOnce, Processes, type IperfResult, type IperfSettings } from './dataplane/iperf.js';
import { membershipTimes, type MembershipTimes } from './multinode/membership.js';
import { Cleanup } from './support/cleanup.js';
import { runPrefix } from './support/netns.js';

const TARGET = 0.8;

interface Options {
  seconds: number;
  omit: number;
  repeat: number;
  streams: number;
  affinity: boolean;
  out: string;
}

function parseOptions(): Options {
  return new Command('bench/multinode.ts')
    .description('TCP throughput (iperf3) pod↔pod across nodes, by direct routes and a VXLAN overlay, beside same-node')
    .option('--seconds <n>', 'measured seconds per iperf3 run (-t)', integer(1), 5)
    .option('--omit <n>', 'seconds left out at the start of each run (-O)', integer(0), 1)
    .option('--repeat <n>', 'runs per scenario (the median is reported)', integer(1), 1)
    .option('--streams <n>', 'parallel TCP streams per run (-P)', integer(1), 1)
    .option('--no-affinity', 'do not pin the iperf3 client to CPU 0 and the server to CPU 1 (-A)')
    .option('--out <dir>', 'where the raw figures (JSON) go', join(REPO_ROOT, 'build/bench'))
    .parse()
    .opts<Options>();
}

const say = (msg: string) => process.stderr.write(`${msg}\n`);
const gbit = (bps: number) => (bps / 1e9).toFixed(2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Scenario {
  mode: NodeNetworkMode;
  label: string;
  /** Pod eth0 MTU. */
  mtu: number;
  client: string;
  server: string;
  runs: IperfResult[];
}

async function main(): Promise<void> {
  const o = parseOptions();
  if (process.getuid?.() !== 0) throw new Error('the multi-node bench needs root (network namespaces, veths)');
  const cleanup = new Cleanup();
  const procs = new Processes();
  const tmp = mkdtempSync(join(tmpdir(), 'ferry-bench-multinode-'));
  cleanup.add(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
  const cluster = await SimCluster.create(runPrefix('fbm'), 2, tmp);
  cleanup.add('delete the namespaces', () => {
    for (const p of cluster.destroy()) say(`cleanup: ${p}`);
  });
  cleanup.add('kill iperf3 processes', () => procs.killAll());
  const [n1, n2] = cluster.nodes as [SimCluster['nodes'][0], SimCluster['nodes'][0]];
  say(`2 nodes on an underlay bridge: ${cluster.nodes.map((n) => `${n.name} ${n.address} pods ${n.podCidr}`).join(', ')}`);

  const settings: IperfSettings = {
    seconds: o.seconds,
    omit: o.omit,
    streams: o.streams,
    ...(o.affinity && cpus().length >= 2 ? { affinity: { client: 0, server: 1 } } : {}),
  };
  const scenarios: Scenario[] = [];
  const membership: MembershipTimes[] = [];
  const started = new Date();
  for (const mode of ['direct', 'vxlan'] as const) {
    await cluster.applyNodeNetwork(mode);
    const [a, b, c] = [await cluster.addPod(n1, `a-${mode}`, mode), await cluster.addPod(n1, `b-${mode}`, mode), await cluster.addPod(n2, `c-${mode}`, mode)];
    say(`${mode}: pods ${a.ip}, ${b.ip} on node-1 and ${c.ip} on node-2, eth0 MTU ${a.mtu}`);
    const plan: Array<[string, SimPod]> = [
      ['same node', b],
      [mode === 'direct' ? 'across nodes, direct routes' : 'across nodes, VXLAN', c],
    ];
    for (const [label, server] of plan) {
      const s: Scenario = { mode, label, mtu: a.mtu, client: `${a.label} ${a.ip}`, server: `${server.label} ${server.ip} (${server.node.name})`, runs: [] };
      for (let rep = 0; rep < o.repeat; rep++) {
        const r = await iperfOnce(procs, { serverNetns: server.netns.name, serverIp: server.ip, clientNetns: a.netns.name, dst: server.ip }, settings);
        s.runs.push(r);
        say(`  ${mode}, ${label}: ${gbit(r.receivedBitsPerSecond)} Gbit/s, ${r.retransmits} retransmits (load ${loadavg()[0]!.toFixed(1)})`);
      }
      scenarios.push(s);
    }
    membership.push(await membershipTimes(cluster, mode));
    for (const pod of [a, b, c]) await cluster.delPod(pod, mode);
  }

  const throughput = (s: Scenario) => median(s.runs.map((r) => r.receivedBitsPerSecond));
  const sameNode = (mode: NodeNetworkMode) => throughput(scenarios.find((s) => s.mode === mode && s.label === 'same node')!);
  const table = new Table({ head: ['node network', 'pod → pod', 'pod MTU', 'Gbit/s (median)', 'retransmits', '× same node'] });
  for (const s of scenarios) {
    const ratio = s.label === 'same node' ? '1.00' : (throughput(s) / sameNode(s.mode)).toFixed(2);
    table.push([s.mode, s.label, s.mtu, gbit(throughput(s)), median(s.runs.map((r) => r.retransmits)), ratio]);
  }
  console.log(`\nTCP throughput, iperf3 ${o.seconds} s (+${o.omit} s omitted) × ${o.repeat}, ${o.streams} stream(s), ${cpus().length} CPUs\n${table.toString()}`);
  const direct = throughput(scenarios.find((s) => s.mode === 'direct' && s.label !== 'same node')!) / sameNode('direct');
  console.log(`target: direct across nodes ≥ ${TARGET} × same node: ${direct.toFixed(2)} × — ${direct >= TARGET ? 'MET' : 'MISSED'}`);

  const times = new Table({ head: ['node network', 'Node removed → route gone', 'Node added → route back'] });
  for (const m of membership) times.push([m.mode, `${m.removedMs.toFixed(0)} ms`, `${m.addedMs.toFixed(0)} ms`]);
  console.log(`\nnode-1 following node-2 in its manifest (the daemon's node network, 100 ms quiet period)\n${times.toString()}`);
  const slowest = Math.max(...membership.flatMap((m) => [m.removedMs, m.addedMs]));
  console.log(`target: within 1 s: slowest ${slowest.toFixed(0)} ms — ${slowest <= 1000 ? 'MET' : 'MISSED'}`);

  mkdirSync(o.out, { recursive: true });
  const file = join(o.out, `multinode-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  writeFileSync(file, JSON.stringify({ started, options: o, kernel, cpus: cpus().length, scenarios, membership }, null, 2));
  say(`raw figures: ${file}`);
  cleanup.run();
}

main().catch((e: Error) => {
  say(`bench/multinode.ts: ${e.message}`);
  process.exitCode = 1;
});
