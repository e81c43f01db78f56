// Programming bench: how long ferry takes to program N Services × K
// endpoints into its eBPF maps, and to apply one endpoint change, beside
// iptables-restore of kube-proxy's equivalent ruleset, in one run.
//
//   make bench-programming   (node --import tsx bench/programming.ts [options]; --help lists them)
//
// Contenders:
//   - ferry's sync path in this process, the one the daemon runs on API
//     server events (programming/sync.ts): ServiceSync's first sync of every
//     Service (conversion, desired state, apply() on empty maps), then one
//     endpoint change synced by key (DesiredStates.update and the
//     Reconciler's by-key diff), on real BPF maps;
//   - `ferry daemon --services DIR` on a JSON manifest of the same Services
//     and EndpointSlices: its first sync, and edits of the file
//     (programming/daemon.ts);
//   - kube-proxy's iptables rules in a node netns: the full ruleset with
//     iptables-restore, and its minimized restore for one endpoint change
//     (programming/iptables.ts), with each iptables backend asked for.
// Rounds alternate the in-process contenders so background load falls on
// all alike; medians are reported. Raw figures go to
// build/bench/programming-<timestamp>.json.
//
// Needs root and `make`. Never touches the host's network namespace: the
// rules go into a netns of the bench's own, the maps under a pin root of its
// own; both, the daemon and the temp dir are removed at the end, on failure
// and on Ctrl-C.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { makePinDir, removePinDir } from '../engine/bpf/index.js';
import { SERVICE_BACKEND_IDS_MIN } from '../engine/dataplane/layout.js';
import { loadDataplane } from '../engine/dataplane/loader.js';
import { iptablesVersion, type IptablesBackend } from './dataplane/kube-proxy.js';
import { daemonRun, type DaemonRun } from './programming/daemon.js';
import { iptablesRound, type IptablesRound } from './programming/iptables.js';
import { syncRound, type SyncRound } from './programming/sync.js';
import { renderProgramming } from './programming/report.js';
import { Cleanup } from './support/cleanup.js';
import { environment, integer, printEnvironment, requireCommands, requireRoot, say, thousands, writeRaw } from './support/cli.js';
import { fillerServices } from './support/cluster.js';
import { addNetns, delNetns, runPrefix } from './support/netns.js';
import { median } from './support/stats.js';

interface Options {
  services: number;
  endpoints: number;
  rounds: number;
  changes: number;
  edits: number;
  iptables: IptablesBackend[];
  daemon: boolean;
}

function parseOptions(): Options {
  const program = new Command('bench/programming.ts')
    .description("times programming N Services × K endpoints into ferry's maps, and one endpoint change, beside iptables-restore of kube-proxy's rules")
    .option('--services <n>', 'Services (one TCP port each)', integer(1), 10_000)
    .option('--endpoints <n>', 'endpoints per Service', integer(1), 3)
    .option('--rounds <n>', "rounds of ferry's sync path and iptables-restore (the median is reported)", integer(1), 5)
    .option('--changes <n>', 'one-endpoint changes synced per round', integer(1), 20)
    .option('--edits <n>', 'edits of the manifest while the daemon runs', integer(1), 10)
    .addOption(new Option('--iptables <backends...>', 'iptables backends to time').choices(['nft', 'legacy']).default(['nft', 'legacy']))
    .option('--no-daemon', 'skip the daemon (file source)');
  program.parse();
  return program.opts<Options>();
}

async function main(): Promise<void> {
  const o = parseOptions();
  requireRoot('programming');
  requireCommands(['nsenter', ...o.iptables.map((b) => `iptables-${b}-restore`)]);
  const cleanup = new Cleanup();
  try {
    const tmp = mkdtempSync(join(tmpdir(), 'ferry-bench-programming-'));
    cleanup.add(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
    const node = `${runPrefix('fbp')}-node`;
    addNetns(node);
    cleanup.add(`ip netns del ${node}`, () => delNetns([node]));
    const pinRoot = makePinDir('ferry-bench-programming');
    cleanup.add(`remove the BPF pins under ${pinRoot}`, () => removePinDir(pinRoot));

    const services = fillerServices(o.services, o.endpoints);
    // The Service in the middle: a pod of it restarted with a new address.
    const changed = { index: Math.floor(o.services / 2), address: '10.127.255.254' };
    const entries = o.services * (1 + o.endpoints);
    const dp = await loadDataplane(join(pinRoot, 'reconciler'));
    cleanup.add('close the dataplane', () => dp.close());
    // Services' backend ids are the backends map's indices above hostPorts'.
    const backendIds = dp.maps.backends.maxEntries - SERVICE_BACKEND_IDS_MIN;
    if (entries > dp.maps.services.maxEntries || o.services * o.endpoints > backendIds) {
      throw new Error(
        `${thousands(o.services)} Services × ${o.endpoints} endpoints need ${thousands(entries)} service map entries and ${thousands(o.services * o.endpoints)} backends; ` +
          `lb.o's maps hold ${thousands(dp.maps.services.maxEntries)} and ${thousands(backendIds)}`,
      );
    }
    const started = new Date();
    const env = { ...environment(), ...Object.fromEntries(o.iptables.map((b) => [`iptables-${b}`, iptablesVersion(b)])) };

    const reconciler: SyncRound[] = [];
    const iptables: Record<string, IptablesRound[]> = Object.fromEntries(o.iptables.map((b) => [b, []]));
    for (let round = 0; round < o.rounds; round++) {
      // Which contender goes first rotates from round to round.
      const steps: Array<() => Promise<void>> = [
        async () => void reconciler.push(await syncRound(dp, services, changed, o.changes)),
        ...o.iptables.map((b) => async () => void iptables[b]!.push(iptablesRound(node, b, services, changed))),
      ];
      for (let i = 0; i < steps.length; i++) await steps[(i + round) % steps.length]!();
      const r = reconciler.at(-1)!;
      say(
        `  round ${round + 1}/${o.rounds}: ferry ${r.full.ms.toFixed(0)} ms, change ${median(r.changes.map((c) => c.ms)).toFixed(1)} ms (median of ${o.changes}); ` +
          o.iptables.map((b) => `iptables-${b} ${iptables[b]!.at(-1)!.fullMs.toFixed(0)} ms, change ${iptables[b]!.at(-1)!.changeMs.toFixed(0)} ms`).join('; '),
      );
    }

    let daemon: DaemonRun | undefined;
    if (o.daemon) {
      say(`ferry daemon --services (${thousands(2 * o.services)} objects in one JSON file), ${o.edits} edits…`);
      daemon = await daemonRun({ nodeNetns: node, dir: tmp, pinRoot: join(pinRoot, 'daemon'), edits: o.edits }, services, changed, (d) =>
        cleanup.add('kill the daemon', () => d.kill()),
      );
    }

    const file = writeRaw('programming', started, { started: started.toISOString(), environment: env, options: o, reconciler, iptables, daemon });
    printEnvironment(`Programming ${thousands(o.services)} Services × ${o.endpoints} endpoints, ${started.toISOString()}`, env);
    console.log(
      `  ferry's maps: ${thousands(entries)} service entries, ${thousands(o.services * o.endpoints)} backends, ${thousands(o.services)} rev-NAT entries; ` +
        `kube-proxy: ${thousands(o.services * (2 + 3 * o.endpoints))} nat rules in ${thousands(o.services * (1 + o.endpoints))} chains`,
    );
    console.log(`  one endpoint change: the last endpoint of ${services[changed.index]!.name} replaced by ${changed.address}`);
    console.log(`\n${renderProgramming({ rounds: o.rounds, reconciler, iptables, ...(daemon && { daemon }) })}`);
    console.log(`\nraw figures: ${file}`);
  } finally {
    cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/programming.ts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
