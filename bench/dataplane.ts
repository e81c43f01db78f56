// Dataplane bench: TCP throughput (iperf3) through ferry's eBPF dataplane
// beside the reference bridge and kube-proxy's iptables rules, in one run.
//
//   make bench-dataplane     (node --import tsx bench/dataplane.ts [options]; --help lists them)
//
// Three node netns, each with a client pod and a server pod:
//   F  ferry's CNI ADD (routed), the eBPF dataplane loaded and pinned first,
//      so from_pod sits at tcx ingress of both host veths; a Service
//      ClusterIP 10.96.0.10:5201 → the server pod, written by ferry's
//      reconciler into the dataplane's maps;
//   R  the reference bridge + host-local (cnitool), nothing else;
//   K  the iptables baseline: the same Service as kube-proxy's iptables mode
//      writes it (KUBE-SERVICES → KUBE-SVC-… → KUBE-SEP-… DNAT), loaded by
//      iptables-restore in K. K is a reference bridge node when
//      net.bridge.bridge-nf-call-iptables can be set in K (br_netfilter: the
//      bridged replies must cross conntrack to be un-DNATed), else ferry
//      routed pods WITHOUT the eBPF dataplane (plain routing; netfilter sees
//      every packet anyway). The output says which.
// Scenarios: ferry pod→pod (F), ferry pod→ClusterIP (F), reference pod→pod
// (R), iptables pod→ClusterIP (K) and pod→pod on K (what kube-proxy's rules
// and conntrack cost traffic that is not even for a Service).
// Every scenario runs `iperf3 -c` in its client pod against a one-shot
// `iperf3 -s -1 -B <server pod IP>` in its server pod (nsenter --net), N
// times, in rotating order so background load falls on all alike; the
// median of the receiver's throughput is reported, with retransmits.
// Raw figures go to build/bench/dataplane-<timestamp>.json.
//
// Needs root and `make` (dist/, build/bpf/lb.o). Never touches the host's
// network namespace; everything it makes (namespaces, iperf3 processes, BPF
// pins, temp dirs) is removed at the end, on failure and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { integer, REPO_ROOT } from './support/cli.js';
import { makePinDir, removePinDir } from '../engine/bpf/index.js';
import { OBJECT_FILE } from '../engine/dataplane/layout.js';
import { loadDataplane } from '../engine/dataplane/loader.js';
import { bpfObjectPath } from '../engine/dataplane/paths.js';
import { Netns } from '../engine/netns/netns.js';
import { ensureCnitool, referencePluginDir } from '../test/support/cnitool.js';
import { iperfOnce, IPERF_PORT, Processes, type IperfSettings } from './dataplane/iperf.js';
import { iptablesVersion, type IptablesBackend } from './dataplane/kube-proxy.js';
import { CLUSTER_IP, ferryClusterIp, ferryNode, iptablesClusterIp, referenceNode, type ClusterIpProbe, type Node } from './dataplane/nodes.js';
import { renderTable, renderVerdicts, verdicts, type ScenarioKey, type ScenarioRun } from './dataplane/report.js';
import { Cleanup } from './support/cleanup.js';
import { addNetns, delNetns, runPrefix } from './support/netns.js';

const BRIDGE_NF = 'net.bridge.bridge-nf-call-iptables';

type Baseline = 'auto' | 'bridge' | 'routed';

interface Options {
  seconds: number;
  omit: number;
  repeat: number;
  streams: number;
  iptables: IptablesBackend;
  iptablesBaseline: Baseline;
  affinity: boolean;
  kubeProxyPodToPod: boolean;
  out: string;
}

function parseOptions(): Options {
  const program = new Command('bench/dataplane.ts')
    .description("TCP throughput (iperf3) through ferry's eBPF dataplane beside the reference bridge and kube-proxy's iptables rules")
    .option('--seconds <n>', 'measured seconds per iperf3 run (-t)', integer(1), 4)
    .option('--omit <n>', 'seconds left out at the start of each run (-O, TCP slow start)', integer(0), 1)
    .option('--repeat <n>', 'runs per scenario (the median is reported)', integer(1), 3)
    .option('--streams <n>', 'parallel TCP streams per run (-P)', integer(1), 1)
    .addOption(new Option('--iptables <backend>', 'iptables backend for the kube-proxy rules').choices(['nft', 'legacy']).default('nft'))
    .addOption(
      new Option('--iptables-baseline <kind>', 'node for the iptables ClusterIP: reference bridge with br_netfilter, or ferry routed pods without eBPF')
        .choices(['auto', 'bridge', 'routed'])
        .default('auto'),
    )
    .option('--no-affinity', 'do not pin the iperf3 client to CPU 0 and the server to CPU 1 (-A)')
    .option('--no-kube-proxy-pod-to-pod', 'skip pod→pod on the kube-proxy node')
    .option('--out <dir>', 'where the raw figures (JSON) go', join(REPO_ROOT, 'build/bench'));
  program.parse();
  return program.opts<Options>();
}

const say = (msg: string) => process.stderr.write(`${msg}\n`);

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function preflight(o: Options): { refDir: string } {
  if (process.getuid?.() !== 0) throw new Error('the dataplane bench needs root (network namespaces, veths, BPF)');
  const object = bpfObjectPath(OBJECT_FILE);
  if (!existsSync(object)) throw new Error(`${object} is missing (run make)`);
  for (const bin of ['iperf3', 'nsenter', `iptables-${o.iptables}-restore`]) {
    if (sh('sh', ['-c', `command -v ${bin}`]) === 'unknown') throw new Error(`${bin} is not installed (run make deps)`);
  }
  const refDir = referencePluginDir();
  if (!existsSync(join(refDir, 'bridge'))) throw new Error(`the reference bridge plugin is missing in ${refDir} (package containernetworking-plugins; run make deps)`);
  say('building or finding cnitool…');
  ensureCnitool();
  return { refDir };
}

/** Sets net.bridge.bridge-nf-call-iptables=1 in the node netns; false when br_netfilter is not there to set. */
async function bridgeNetfilter(node: string): Promise<{ ok: boolean; why: string }> {
  const ns = Netns.open(node);
  try {
    await ns.sysctlSet(BRIDGE_NF, 1);
    const v = await ns.sysctlGet(BRIDGE_NF);
    return v === '1' ? { ok: true, why: `${BRIDGE_NF}=1 in the node netns` } : { ok: false, why: `${BRIDGE_NF} reads ${v} after writing 1` };
  } catch (e) {
    return { ok: false, why: `${BRIDGE_NF} cannot be set in the node netns (br_netfilter not loaded? loading it would change the host's bridges too): ${(e as Error).message}` };
  } finally {
    ns.close();
  }
}

async function readSysctl(node: string, key: string): Promise<string> {
  const ns = Netns.open(node);
  try {
    return await ns.sysctlGet(key);
  } catch {
    return 'absent';
  } finally {
    ns.close();
  }
}

function rotated<T>(xs: readonly T[], step: number): T[] {
  const k = step % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function main(): Promise<void> {
  const o = parseOptions();
  const { refDir } = preflight(o);
  const cleanup = new Cleanup();
  const procs = new Processes();
  try {
    const tmp = mkdtempSync(join(tmpdir(), 'ferry-bench-dataplane-'));
    cleanup.add(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
    const pinRoot = makePinDir('ferry-bench');
    cleanup.add(`remove the BPF pins under ${pinRoot}`, () => removePinDir(pinRoot));
    const dp = await loadDataplane(pinRoot);
    cleanup.add('close the dataplane', () => dp.close());
    say(`eBPF dataplane loaded and pinned under ${pinRoot}`);

    const prefix = runPrefix('fbd');
    const ns = (node: 'f' | 'r' | 'k') => ({ node: `${prefix}-${node}-node`, client: `${prefix}-${node}-cli`, server: `${prefix}-${node}-srv` });
    const names = { f: ns('f'), r: ns('r'), k: ns('k') };
    const made: string[] = [];
    cleanup.add(`ip netns del ${prefix}-*`, () => delNetns(made));
    // Last registered, first run: no iperf3 may outlive the run.
    cleanup.add('kill iperf3 processes', () => procs.killAll());
    for (const n of Object.values(names)) {
      for (const name of [n.node, n.client, n.server]) {
        addNetns(name);
        made.push(name);
      }
    }
    say(`created 3 node + 6 pod namespaces (${prefix}-*)`);

    const ferry = await ferryNode({ ...names.f, dir: join(tmp, 'ferry'), subnet: '10.244.1.0/24', dataplane: dp }, cleanup);
    const reference = referenceNode({ ...names.r, dir: join(tmp, 'reference'), subnet: '10.244.2.0/24', pluginDir: refDir });
    reference.description += `; ${BRIDGE_NF}=${await readSysctl(names.r.node, BRIDGE_NF)} (kernel default), no iptables rules`;

    let kind: 'bridge' | 'routed' = o.iptablesBaseline === 'routed' ? 'routed' : 'bridge';
    let kindWhy = o.iptablesBaseline === 'routed' ? 'chosen with --iptables-baseline routed' : '';
    if (kind === 'bridge') {
      const bnf = await bridgeNetfilter(names.k.node);
      if (!bnf.ok && o.iptablesBaseline === 'bridge') throw new Error(`--iptables-baseline bridge: ${bnf.why}`);
      kind = bnf.ok ? 'bridge' : 'routed';
      kindWhy = bnf.ok ? `bridged traffic crosses iptables: ${bnf.why}` : `falling back to routed: ${bnf.why}`;
    }
    const kNode: Node =
      kind === 'bridge'
        ? referenceNode({ ...names.k, dir: join(tmp, 'kube-proxy'), subnet: '10.244.3.0/24', pluginDir: refDir })
        : await ferryNode({ ...names.k, dir: join(tmp, 'kube-proxy'), subnet: '10.244.3.0/24' }, cleanup);
    const ferryCip = await ferryClusterIp(dp, ferry.server);
    const iptCip = iptablesClusterIp(names.k.node, o.iptables, kNode.server);
    kNode.description += `; kube-proxy iptables rules (iptables-${o.iptables}), ${kindWhy}`;
    const kLabel = kind === 'bridge' ? 'reference bridge + kube-proxy iptables' : 'ferry routed, no eBPF + kube-proxy iptables';
    say(`pods up: ferry ${ferry.client.ip} → ${ferry.server.ip}, reference ${reference.client.ip} → ${reference.server.ip}, iptables baseline (${kind}) ${kNode.client.ip} → ${kNode.server.ip}`);

    type Plan = { key: ScenarioKey; label: string; node: Node; dst: string; baseline?: ScenarioKey; probe?: ClusterIpProbe };
    // Table order; each ferry scenario sits next to its baseline.
    const plans: Plan[] = [
      { key: 'ferry-pod', label: 'ferry routed + eBPF, pod→pod', node: ferry, dst: ferry.server.ip, baseline: 'ref-pod' },
      { key: 'ref-pod', label: 'reference bridge, pod→pod', node: reference, dst: reference.server.ip },
      { key: 'ferry-cip', label: 'ferry routed + eBPF, pod→ClusterIP', node: ferry, dst: CLUSTER_IP, baseline: 'ipt-cip', probe: ferryCip },
      { key: 'ipt-cip', label: `${kLabel}, pod→ClusterIP`, node: kNode, dst: CLUSTER_IP, probe: iptCip },
      ...(o.kubeProxyPodToPod ? [{ key: 'ipt-pod' as const, label: `${kLabel}, pod→pod`, node: kNode, dst: kNode.server.ip, baseline: 'ref-pod' as const }] : []),
    ];
    const scenarios: ScenarioRun[] = plans.map((p) => ({
      key: p.key,
      label: p.label,
      node: p.node.description,
      client: `${p.node.client.netns} ${p.node.client.ip}`,
      server: `${p.node.server.netns} ${p.node.server.ip}`,
      dst: `${p.dst}:${IPERF_PORT}`,
      ...(p.baseline ? { baseline: p.baseline } : {}),
      runs: [],
    }));

    const settings: IperfSettings = {
      seconds: o.seconds,
      omit: o.omit,
      streams: o.streams,
      ...(o.affinity && cpus().length >= 2 ? { affinity: { client: 0, server: 1 } } : {}),
    };
    const load = loadavg()[0]!;
    const started = new Date();
    const total = plans.length * o.repeat;
    say(`measuring: ${plans.length} scenarios × ${o.repeat} runs of ${o.omit}+${o.seconds} s, in rotating order (about ${Math.ceil((total * (o.seconds + o.omit + 0.5)) / 5) * 5} s)…`);
    // Run order: ferry and its baseline back to back (which goes first
    // alternates), the groups in rotating order, so load from elsewhere on the
    // machine falls on both alike and each pair can be compared run by run.
    const groups: number[][] = [[0, 1], [2, 3], ...(plans.length > 4 ? [[4]] : [])];
    let order = 0;
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const group of rotated(groups, rep)) {
        for (const i of rep % 2 === 0 ? group : [...group].reverse()) {
          const p = plans[i]!;
          const load1 = loadavg()[0]!;
          const r = await iperfOnce(procs, { serverNetns: p.node.server.netns, serverIp: p.node.server.ip, clientNetns: p.node.client.netns, dst: p.dst }, settings);
          scenarios[i]!.runs.push({ ...r, rep, order: order++, load1 });
          say(`  [${order}/${total}] ${p.label}: ${(r.receivedBitsPerSecond / 1e9).toFixed(2)} Gbit/s, ${r.retransmits} retransmits (load ${load1.toFixed(1)})`);
        }
      }
    }
    plans.forEach((p, i) => {
      if (p.probe) scenarios[i]!.dnatConnections = p.probe.dnatConnections();
    });
    const loadAfter = loadavg()[0]!;
    const loads = scenarios.flatMap((sc) => sc.runs.map((r) => r.load1));
    const loadDuring = { min: Math.min(...loads), max: Math.max(...loads) };

    const env = {
      kernel: sh('uname', ['-r']),
      node: process.version,
      cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
      iperf3: sh('iperf3', ['--version']).split('\n')[0] ?? 'unknown',
      iptables: iptablesVersion(o.iptables),
      tcpCongestion: [...new Set(scenarios.flatMap((s) => s.runs.map((r) => r.congestion)))].join(', '),
      ferry: `${sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'])}${sh('git', ['-C', REPO_ROOT, 'status', '--porcelain']) ? ' (uncommitted changes)' : ''}`,
      'load average (1 min)': `${load.toFixed(1)} before the runs, ${loadDuring.min.toFixed(1)}–${loadDuring.max.toFixed(1)} at the start of each run (iperf3 itself adds about 2), ${loadAfter.toFixed(1)} after`,
    };
    const vs = verdicts(scenarios);
    const nodes = { ferry: ferry.description, reference: reference.description, iptablesBaseline: { kind, why: kindWhy, node: kNode.description, rules: iptCip.rules } };
    mkdirSync(o.out, { recursive: true });
    const file = join(o.out, `dataplane-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ started: started.toISOString(), environment: env, settings: { ...o, ...settings }, nodes, verdicts: vs, scenarios }, null, 2)}\n`);

    console.log(`\nTCP throughput through the dataplane (iperf3), ${started.toISOString()}`);
    console.log(Object.entries(env).map(([k, v]) => `  ${k}: ${v}`).join('\n'));
    console.log(
      [
        `  per scenario: ${o.repeat} runs of iperf3 -c … -t ${o.seconds} -O ${o.omit} -P ${o.streams}${settings.affinity ? ' -A 0 (server -A 1)' : ''}, against iperf3 -s -1 -B <server pod IP>;`,
        '  scenarios interleaved run by run in rotating order; Gbit/s = what the server received; retransmits = the sender’s.',
        `  ClusterIP ${CLUSTER_IP}:${IPERF_PORT} → the server pod :${IPERF_PORT} (Service bench/iperf, one endpoint)`,
      ].join('\n'),
    );
    console.log('\nNodes:');
    console.log(`  ferry:     ${ferry.description}`);
    console.log(`  reference: ${reference.description}`);
    console.log(`  iptables baseline: ${kind === 'bridge' ? 'REFERENCE BRIDGE' : 'FERRY ROUTED WITHOUT eBPF'} — ${kNode.description}`);
    console.log(`\n${renderTable(scenarios)}`);
    for (const s of scenarios) {
      if (s.dnatConnections !== undefined) {
        console.log(`  ${s.label}: ${s.dnatConnections} connections DNATed to the server pod (${s.key === 'ferry-cip' ? "forward entries in ferry's conntrack map" : 'packets on the KUBE-SEP DNAT rule'}; iperf3 opens ${1 + o.streams} per run)`);
      }
    }
    console.log(`\n${renderVerdicts(vs, o.repeat)}`);
    // iperf3 itself keeps about 2 runnable; more than that came from elsewhere.
    const busy = load >= 1 || loadDuring.max > 3;
    if (busy) {
      console.log(
        `\nnote: the 1-minute load average was ${load.toFixed(1)} before the runs and up to ${loadDuring.max.toFixed(1)} during them ` +
          `(other work on the ${cpus().length} CPUs, or an earlier run still decaying out of the average); ` +
          'a single TCP stream over veths is CPU-bound, so figures swing with it. The run-by-run ratios (a ferry run and its baseline back to back) are the steadier comparison.',
      );
    }
    console.log(`\nraw figures: ${file}`);
  } finally {
    cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/dataplane.ts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
