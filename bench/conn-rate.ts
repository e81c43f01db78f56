// Connection-rate bench: connect + close to one ClusterIP Service, as many
// as a small C client (conn-rate/connrate.c, compiled here) makes, with 10,
// 1k, 10k, 30k Services loaded — ferry's eBPF dataplane beside kube-proxy's
// iptables rules for the same Services — and ferry alone at 100k; the same
// client connecting to the server pod's own address is the reference.
//
//   make bench-conn-rate   (node --import tsx bench/conn-rate.ts [options]; --help lists them)
//
// Two node netns, each with a client pod and a server pod added by ferry's
// CNI ADD (routed):
//   ferry     the eBPF dataplane loaded first (its maps sized for the
//             largest scale), so from_pod sits at tcx ingress of both host
//             veths; Services programmed by the Reconciler (past its reach,
//             100k, the rest written straight into the maps: see
//             conn-rate/services.ts);
//   iptables  plain routed pods, no eBPF; the same Services as kube-proxy's
//             iptables mode writes them (iptables-restore in the node netns),
//             the measured Service's rule last in KUBE-SERVICES.
// Per scale: the Services loaded (timed) on both nodes, then rounds of four
// scenarios — pod→ClusterIP and pod→pod IP on each node — in rotating
// order, one connrate client run each (client pinned to CPU 0, server to
// CPU 1). Medians over the rounds are reported. Raw figures go to
// build/bench/conn-rate-<timestamp>.json.
//
// Needs root and `make`. Never touches the host's network namespace;
// namespaces, processes, BPF pins and the temp dir are removed at the end,
// on failure and on Ctrl-C.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { makePinDir, removePinDir } from '../engine/bpf/index.js';
import { SERVICE_BACKEND_IDS_MIN } from '../engine/dataplane/layout.js';
import { loadDataplane } from '../engine/dataplane/loader.js';
import { readCounters } from '../engine/dataplane/metrics.js';
import { Reconciler } from '../engine/dataplane/reconcile.js';
import { FerryServices, loadIptables, measuredKube, MEASURED_IP, MEASURED_PORT } from './conn-rate/services.js';
import { renderTable, renderVerdicts, SCENARIOS, type ScaleResult, type ScenarioKey } from './conn-rate/report.js';
import { connPerSecond, DIRECT_PORT, runClient, SERVER_PORT, startServer } from './conn-rate/runner.js';
import { Processes } from './dataplane/iperf.js';
import { dnatCounts, iptablesVersion, saveNat, type IptablesBackend } from './dataplane/kube-proxy.js';
import { ferryNode } from './dataplane/nodes.js';
import { Cleanup } from './support/cleanup.js';
import { environment, integer, integers, printEnvironment, REPO_ROOT, requireCommands, requireRoot, say, thousands, writeRaw } from './support/cli.js';
import { compileC } from './support/compile.js';
import { addNetns, delNetns, runPrefix } from './support/netns.js';

interface Options {
  scales: number[];
  iptablesUpTo: number;
  seconds: number;
  rounds: number;
  fillerEndpoints: number;
  iptables: IptablesBackend;
  affinity: boolean;
}

function parseOptions(): Options {
  const program = new Command('bench/conn-rate.ts')
    .description('connect+close rate to one ClusterIP with N Services loaded: ferry beside kube-proxy iptables rules, and direct to the pod')
    .option('--scales <list>', 'Services loaded, comma-separated, rising', integers(1), [10, 1000, 10_000, 30_000, 100_000])
    .option('--iptables-up-to <n>', 'largest scale the iptables rules are measured at', integer(1), 30_000)
    .option('--seconds <n>', 'measured seconds per client run', integer(1), 3)
    .option('--rounds <n>', 'runs per scenario and scale (the median is reported)', integer(1), 3)
    .option('--filler-endpoints <n>', 'endpoints of each filler Service', integer(1), 1)
    .addOption(new Option('--iptables <backend>', 'iptables backend for the kube-proxy rules').choices(['nft', 'legacy']).default('nft'))
    .option('--no-affinity', 'do not pin the client to CPU 0 and the server to CPU 1');
  program.parse();
  return program.opts<Options>();
}

async function main(): Promise<void> {
  const o = parseOptions();
  requireRoot('connection-rate');
  requireCommands(['nsenter', `iptables-${o.iptables}-restore`]);
  for (let i = 1; i < o.scales.length; i++) if (o.scales[i]! <= o.scales[i - 1]!) throw new Error('--scales must rise');
  const binary = compileC(join(REPO_ROOT, 'bench/conn-rate/connrate.c'), 'connrate');
  const cpu = o.affinity && cpus().length >= 2 ? { client: 0, server: 1 } : undefined;
  const cleanup = new Cleanup();
  const procs = new Processes();
  try {
    const tmp = mkdtempSync(join(tmpdir(), 'ferry-bench-conn-rate-'));
    cleanup.add(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
    const pinRoot = makePinDir('ferry-bench-conn-rate');
    cleanup.add(`remove the BPF pins under ${pinRoot}`, () => removePinDir(pinRoot));
    const largest = Math.max(...o.scales);
    const room = (n: number) => 2 ** Math.ceil(Math.log2(n + 64));
    // Backend ids are indices of the backends map, Services' above hostPorts'.
    const dp = await loadDataplane(pinRoot, undefined, { maxEntries: { services: room(largest * (1 + o.fillerEndpoints)), backends: room(SERVICE_BACKEND_IDS_MIN + largest * o.fillerEndpoints) } });
    cleanup.add('close the dataplane', () => dp.close());

    const prefix = runPrefix('fbc');
    const names = (n: 'f' | 'k') => ({ node: `${prefix}-${n}-node`, client: `${prefix}-${n}-cli`, server: `${prefix}-${n}-srv` });
    const f = names('f');
    const k = names('k');
    const made: string[] = [];
    cleanup.add(`ip netns del ${prefix}-*`, () => delNetns(made));
    cleanup.add('kill connrate processes', () => procs.killAll());
    for (const name of [...Object.values(f), ...Object.values(k)]) {
      addNetns(name);
      made.push(name);
    }
    const ferry = await ferryNode({ ...f, dir: join(tmp, 'ferry'), subnet: '10.244.1.0/24', dataplane: dp }, cleanup);
    const kube = await ferryNode({ ...k, dir: join(tmp, 'iptables'), subnet: '10.244.3.0/24' }, cleanup);
    for (const node of [ferry, kube]) {
      for (const port of [SERVER_PORT, DIRECT_PORT]) await startServer(procs, binary, { netns: node.server.netns, ip: node.server.ip }, port, cpu?.server);
    }
    say(`pods up: ferry ${ferry.client.ip} → ${ferry.server.ip}, iptables node ${kube.client.ip} → ${kube.server.ip}; connrate servers listening on :${SERVER_PORT} (Service) and :${DIRECT_PORT} (direct)`);

    const services = new FerryServices(dp, await Reconciler.adopt(dp.maps), ferry.server, o.fillerEndpoints);
    const started = new Date();
    const env = { ...environment(), iptables: iptablesVersion(o.iptables) };
    const results: ScaleResult[] = [];
    for (const scale of o.scales) {
      const withIptables = scale <= o.iptablesUpTo;
      say(`${thousands(scale)} Services: loading…`);
      const loads = { ferry: services.load(scale), ...(withIptables && { iptables: loadIptables(k.node, o.iptables, scale, kube.server, o.fillerEndpoints) }) };
      const plan: Array<[ScenarioKey, string, { address: string; port: number }]> = [
        ['ferry-cip', f.client, { address: MEASURED_IP, port: MEASURED_PORT }],
        ['ferry-pod', f.client, { address: ferry.server.ip, port: DIRECT_PORT }],
        ...(withIptables
          ? ([
              ['ipt-cip', k.client, { address: MEASURED_IP, port: MEASURED_PORT }],
              ['ipt-pod', k.client, { address: kube.server.ip, port: DIRECT_PORT }],
            ] as Array<[ScenarioKey, string, { address: string; port: number }]>)
          : []),
      ];
      const runs: ScaleResult['runs'] = {};
      const translatedBefore = readCounters(dp.maps.metrics).translated;
      for (let round = 0; round < o.rounds; round++) {
        for (let i = 0; i < plan.length; i++) {
          const [key, client, dst] = plan[(i + round) % plan.length]!;
          const run = await runClient(procs, binary, client, dst, o.seconds, cpu?.client);
          (runs[key] ??= []).push(run);
          say(`  ${thousands(scale)} Services, round ${round + 1}/${o.rounds}, ${SCENARIOS[key]}: ${thousands(connPerSecond(run))} conn/s, p50 ${(run.p50_ns / 1000).toFixed(1)} µs, p99 ${(run.p99_ns / 1000).toFixed(1)} µs`);
        }
      }
      const dnat = {
        ferryPackets: Number(readCounters(dp.maps.metrics).translated - translatedBefore),
        ...(withIptables && { iptablesConnections: [...dnatCounts(saveNat(k.node, o.iptables), measuredKube(kube.server)).values()].reduce((a, b) => a + b, 0) }),
      };
      const ferryConnections = runs['ferry-cip']!.reduce((n, r) => n + r.connections, 0);
      if (dnat.ferryPackets < ferryConnections) throw new Error(`ferry translated ${dnat.ferryPackets} packets for ${ferryConnections} ClusterIP connections: the connections did not cross the DNAT`);
      const iptConnections = runs['ipt-cip']?.reduce((n, r) => n + r.connections, 0) ?? 0;
      if (withIptables && dnat.iptablesConnections! < iptConnections) throw new Error(`kube-proxy's DNAT rule counted ${dnat.iptablesConnections} of ${iptConnections} ClusterIP connections`);
      results.push({ scale, loads, runs, dnat });
    }

    const file = writeRaw('conn-rate', started, { started: started.toISOString(), environment: env, options: o, nodes: { ferry: ferry.description, iptables: kube.description }, results });
    printEnvironment(`Connection rate to one ClusterIP (connect + abortive close), ${started.toISOString()}`, env);
    console.log(`  ferry: ${ferry.description}; maps sized for ${thousands(largest)} Services (services ${thousands(dp.maps.services.maxEntries)}, backends ${thousands(dp.maps.backends.maxEntries)} entries)`);
    console.log(`  iptables: ${kube.description}; kube-proxy's rules (iptables-${o.iptables}), the measured Service last in KUBE-SERVICES`);
    console.log(`  Service ${MEASURED_IP}:${MEASURED_PORT} → server pod :${SERVER_PORT}; direct: server pod :${DIRECT_PORT} (another port: runner.ts says why); fillers: ${o.fillerEndpoints} endpoint(s) each; ${o.rounds} client runs of ${o.seconds} s per scenario and scale${cpu ? ', client on CPU 0, server on CPU 1' : ''}`);
    console.log(`\n${renderTable(results)}`);
    for (const r of results) {
      console.log(`  ${thousands(r.scale)} Services: ferry translated ${thousands(r.dnat.ferryPackets)} packets${r.dnat.iptablesConnections === undefined ? '' : `; kube-proxy's DNAT rule took ${thousands(r.dnat.iptablesConnections)} connections`}`);
    }
    console.log(`\n${renderVerdicts(results)}`);
    console.log(`\nraw figures: ${file}`);
  } finally {
    cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/conn-rate.ts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
