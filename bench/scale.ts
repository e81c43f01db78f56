// Scale bench (issue #5): 10k Services with 100k endpoints fed to the daemon
// through the watch path, beside iptables-restore of kube-proxy's
// equivalent ruleset, in one run.
//
//   make bench-scale   (node --import tsx bench/scale.ts [options]; --help lists them)
//
// In a node netns of its own: a fake API server (scale/apiserver.ts, the
// tests' list + watch server) holding the cluster, and the daemon
// (scale/daemon.ts: the daemon's dataplane, Reconciler, K8sApiSource and
// ServiceSync, maps sized for the cluster) started against it. Measured:
//   - converging: daemon start → the sync log line with every frontend and
//     backend (and the informers' lists → that line); the maps are counted
//     after it;
//   - RSS once converged, and the peak;
//   - one endpoint update's latency: a slice changed on the API server (the
//     moment its watch event goes out) → its new backend seen in the pinned
//     maps (polled every ms), one update at a time;
//   - CPU time (utime + stime of the daemon) per 1,000 endpoint updates
//     sent at a steady rate, up to the last one reaching the maps;
//   - kube-proxy: the same Services as its iptables rules, iptables-restore
//     into the node netns, each backend asked for.
// Raw figures go to build/bench/scale-<timestamp>.json.
//
// Needs root and `make` (dist/). Never touches the host's network
// namespace; the namespace, both processes, the pins and the temp dir are
// removed at the end, on failure and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { makePinDir, removePinDir } from '../engine/bpf/index.js';
import { SERVICE_BACKEND_IDS_MIN } from '../engine/dataplane/layout.js';
import { DEFAULT_MIN_SYNC_PERIOD_MS } from '../plugin/daemon/services.js';
import { writeKubeconfig } from '../test/daemon/fake-apiserver.js';
import { iptablesVersion, kubeProxyRules, restoreInNetns, type IptablesBackend } from './dataplane/kube-proxy.js';
import { flushTables } from './programming/iptables.js';
import { ApiServerProcess, PinnedServiceMaps } from './scale/control.js';
import { renderScale, type ScaleResults } from './scale/report.js';
import { Cleanup } from './support/cleanup.js';
import { environment, integer, printEnvironment, REPO_ROOT, requireCommands, requireRoot, say, thousands, writeRaw } from './support/cli.js';
import { fillerServices, intToIpv4, ipv4ToInt, kubeService } from './support/cluster.js';
import { transpileEntry } from './support/compile.js';
import { DaemonProcess, type LogLine } from './support/daemon-process.js';
import { addNetns, delNetns, runPrefix } from './support/netns.js';
import { median } from './support/stats.js';

interface Options {
  services: number;
  endpoints: number;
  latencySamples: number;
  updates: number;
  updateRate: number;
  minSyncMs: number;
  iptables: IptablesBackend[];
  daemonNodeArgs: string;
}

function parseOptions(): Options {
  const program = new Command('bench/scale.ts')
    .description('N Services with N×K endpoints through the daemon\'s watch path: converging, RSS, CPU per update, update latency; beside iptables-restore')
    .option('--services <n>', 'Services (one TCP port each)', integer(1), 10_000)
    .option('--endpoints <n>', 'endpoints per Service', integer(1), 10)
    .option('--latency-samples <n>', 'single endpoint updates timed watch event → maps', integer(1), 20)
    .option('--updates <n>', 'endpoint updates sent at a steady rate for the CPU figure', integer(1), 1000)
    .option('--update-rate <n>', 'updates per second', integer(1), 100)
    .option('--min-sync-ms <n>', "the daemon's minSyncPeriod: at most one sync per this period", integer(0), DEFAULT_MIN_SYNC_PERIOD_MS)
    .addOption(new Option('--iptables <backends...>', 'iptables backends to time').choices(['nft', 'legacy']).default(['nft', 'legacy']))
    .option('--daemon-node-args <flags>', "node flags for the daemon, space-separated, to profile it (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof')", '');
  program.parse();
  return program.opts<Options>();
}

const isSync = (l: LogLine) => typeof l.sync === 'number';
/** Replacement endpoint addresses, from a range the cluster's endpoints do not use. */
const replacement = (i: number) => intToIpv4(ipv4ToInt('10.127.0.1') + i);

async function main(): Promise<void> {
  const o = parseOptions();
  requireRoot('scale');
  requireCommands(['nsenter', ...o.iptables.map((b) => `iptables-${b}-restore`)]);
  const daemonScript = transpileEntry(join(REPO_ROOT, 'bench/scale/daemon.ts'), 'scale-daemon.mjs');
  const cleanup = new Cleanup();
  try {
    const tmp = mkdtempSync(join(tmpdir(), 'ferry-bench-scale-'));
    cleanup.add(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
    const node = `${runPrefix('fbs')}-node`;
    addNetns(node);
    cleanup.add(`ip netns del ${node}`, () => delNetns([node]));
    // The API server and the daemon talk over the namespace's loopback.
    execFileSync('ip', ['-n', node, 'link', 'set', 'lo', 'up']);
    const pinRoot = makePinDir('ferry-bench-scale');
    cleanup.add(`remove the BPF pins under ${pinRoot}`, () => removePinDir(pinRoot));
    const started = new Date();
    const env = { ...environment(), ...Object.fromEntries(o.iptables.map((b) => [`iptables-${b}`, iptablesVersion(b)])) };

    const api = new ApiServerProcess(node, join(REPO_ROOT, 'bench/scale/apiserver.ts'));
    cleanup.add('kill the API server', () => api.kill());
    const { port } = await api.next('listening');
    const kubeconfig = join(tmp, 'kubeconfig');
    writeKubeconfig(kubeconfig, `http://127.0.0.1:${port}`);
    const populated = api.next('populated', 300_000);
    api.send({ op: 'populate', services: o.services, endpoints: o.endpoints });
    say(`API server: ${thousands((await populated).objects)} objects (${thousands(o.services)} Services, ${thousands(o.services * o.endpoints)} endpoints)`);

    const services = fillerServices(o.services, o.endpoints);
    const entries = o.services * (1 + o.endpoints);
    const room = (n: number) => 2 ** Math.ceil(Math.log2(n + 1024));
    // Backend ids are indices of the backends maps, Services' above hostPorts'.
    const backendSlots = room(SERVICE_BACKEND_IDS_MIN + o.services * o.endpoints);
    const t0 = performance.now();
    const daemon = new DaemonProcess(node, [daemonScript, kubeconfig, pinRoot, String(room(entries)), String(backendSlots), String(o.minSyncMs)], o.daemonNodeArgs.split(' ').filter(Boolean));
    cleanup.add('kill the daemon', () => daemon.kill());
    const everything = (l: LogLine) => isSync(l) && l.frontends === o.services && l.backends === o.services * o.endpoints;
    const converged = await daemon.waitFor('the sync with every Service', (l) => everything(l) || l.level === 50, 300_000);
    if (!everything(converged)) throw new Error(`the daemon failed: ${converged.msg}`);
    const listed = daemon.lines.filter((l) => /: listed \d+/.test(l.msg));
    const convergence = {
      startToSyncedMs: converged.at - t0,
      listedToSyncedMs: converged.at - Math.max(...listed.map((l) => l.at)),
      syncMs: converged.ms as number,
      syncs: daemon.lines.filter(isSync).length,
    };
    const rssConverged = daemon.rssMiB();
    const maps = new PinnedServiceMaps(pinRoot);
    cleanup.add('close the pinned maps', () => maps.close());
    const counted = maps.countServiceEntries();
    if (counted !== entries) throw new Error(`the daemon's services map holds ${counted} entries, not ${entries}`);
    say(`converged in ${(convergence.startToSyncedMs / 1000).toFixed(2)} s (sync ${convergence.syncMs} ms); RSS ${rssConverged.toFixed(0)} MiB`);

    // One update at a time, each after the daemon is idle again.
    const latencies: number[] = [];
    let n = 0;
    for (let i = 0; i < o.latencySamples; i++, n++) {
      const index = Math.floor((i * o.services) / o.latencySamples);
      const s = services[index]!;
      const address = replacement(n);
      const emitted = await api.updateSlice(index, [...s.endpoints.slice(0, -1), address]);
      const seen = await maps.waitForBackend(s, o.endpoints, address);
      latencies.push(Number(seen - emitted) / 1e6);
      await new Promise((r) => setTimeout(r, o.minSyncMs + 200));
    }
    say(`one endpoint update, watch event → maps: median ${median(latencies).toFixed(1)} ms over ${o.latencySamples}`);

    // A steady stream: each update replaces one endpoint of another Service.
    const syncsBefore = daemon.lines.filter(isSync).length;
    const cpuBefore = daemon.cpuMs();
    const streamStart = performance.now();
    let last: { index: number; address: string } | undefined;
    for (let i = 0; i < o.updates; i++, n++) {
      const index = (i * 7919) % o.services;
      last = { index, address: replacement(n) };
      await api.updateSlice(index, [...services[index]!.endpoints.slice(0, -1), last.address]);
      const due = streamStart + ((i + 1) * 1000) / o.updateRate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const lastSent = daemon.lines.length;
    await maps.waitForBackend(services[last!.index]!, o.endpoints, last!.address, 120_000);
    // The sync that wrote it logs right after: count it, and its CPU.
    await daemon.waitFor('the last sync', isSync, 60_000, lastSent);
    const stream = {
      updates: o.updates,
      rate: o.updateRate,
      seconds: (performance.now() - streamStart) / 1000,
      cpuMs: daemon.cpuMs() - cpuBefore,
      syncs: daemon.lines.filter(isSync).length - syncsBefore,
    };
    const rss = { converged: rssConverged, afterUpdates: daemon.rssMiB(), peak: daemon.peakRssMiB() };
    say(`${o.updates} updates at ${o.updateRate}/s: ${stream.cpuMs.toFixed(0)} ms CPU in ${stream.syncs} syncs; RSS ${rss.afterUpdates.toFixed(0)} MiB, peak ${rss.peak.toFixed(0)} MiB`);
    await daemon.stop();
    maps.close();

    const rules = kubeProxyRules(services.map((s) => kubeService(s)));
    const iptables: Record<string, number> = {};
    for (const b of o.iptables) {
      flushTables(node, b);
      iptables[b] = restoreInNetns(node, b, rules, { noflush: false });
      flushTables(node, b);
      say(`iptables-${b}-restore of kube-proxy's ruleset: ${(iptables[b] / 1000).toFixed(2)} s`);
    }

    const results: ScaleResults = { services: o.services, endpoints: o.endpoints, minSyncMs: o.minSyncMs, convergence, rss, latencies, stream, iptables };
    const file = writeRaw('scale', started, { started: started.toISOString(), environment: env, options: o, results, daemonSyncs: daemon.lines.filter(isSync), daemonMemory: daemon.lines.filter((l) => l.memory !== undefined) });
    printEnvironment(`${thousands(o.services)} Services, ${thousands(o.services * o.endpoints)} endpoints through the watch path, ${started.toISOString()}`, env);
    console.log(`  daemon: scale/daemon.ts on dist/ (the daemon's API-server path; maps sized ${thousands(room(entries))} service entries, ${thousands(backendSlots)} backend slots); minSyncPeriod ${o.minSyncMs} ms`);
    console.log(`\n${renderScale(results)}`);
    console.log(`\nraw figures: ${file}`);
  } finally {
    cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/scale.ts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
