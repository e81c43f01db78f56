// CNI bench: ferry beside the reference bridge + host-local chain, both
// driven by libcni's cnitool, in one run.
//
//   make bench-cni        (node --import tsx bench/cni.ts [options]; --help lists them)
//
// Contenders, each in a fresh node netns with its own pods, config dir, IPAM
// store and libcni cache (all in a temp dir): the reference chain; ferry in
// routed and in bridge mode, through its frontend binary and daemon; and a
// no-op plugin, the floor every call pays (cnitool, libcni, one exec).
//   - ferry only, first: a few ADD/DEL calls before its daemon runs, so the
//     frontend execs node for each (in-process mode), for honesty;
//   - sequential: ADD on every pod one after another, then DEL on each;
//   - concurrent: rounds of N ADDs started at once (wall time of the round),
//     each followed by N concurrent DELs.
// Each call is timed as the wall time of the cnitool process, spawned
// directly by a runner that lives in the node netns (bench/cni/runner.ts),
// so nsenter/unshare/mount stay outside the measured interval. Contenders
// take turns — call by call, round by round, in rotating order — so load
// from elsewhere on the machine falls on all of them alike. The first calls
// of each sequential series and the first concurrent round are warm-up and
// discarded. Raw samples go to build/bench/cni-<timestamp>.json.
//
// Needs root and `make` (dist/, build/cni/ferry). Never touches the host's
// network namespace; everything it makes (namespaces, daemons, temp dirs) is
// removed at the end, on failure and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { integer, REPO_ROOT } from './support/cli.js';
import { ensureCnitool, referencePluginDir } from '../test/support/cnitool.js';
import { FERRY_CNI_DIR, planContender, type ContenderKey, type FerryMode } from './cni/contenders.js';
import { FERRY_CLI } from './cni/daemon.js';
import { bringDown, bringUp, measure, type Live } from './cni/measure.js';
import { renderBreakdown, renderTargets, renderVerdicts, verdicts } from './cni/report.js';
import type { RunSettings } from './cni/results.js';
import { Cleanup } from './support/cleanup.js';
import { addNetns, delNetns, runPrefix } from './support/netns.js';


interface Options extends RunSettings {
  modes: FerryMode[];
  reference: boolean;
  floor: boolean;
  out: string;
}

function parseOptions(): Options {
  const program = new Command('bench/cni.ts')
    .description("times CNI ADD/DEL through libcni's cnitool: ferry beside the reference bridge + host-local chain")
    .option('--sequential <n>', 'pods for the sequential ADD and DEL series', integer(1), 30)
    .option('--concurrent <n>', 'ADDs started at once per concurrent round', integer(1), 20)
    .option('--rounds <n>', 'measured concurrent rounds (after one warm-up round)', integer(1), 5)
    .option('--warmup <n>', 'calls discarded at the start of each sequential series', integer(0), 2)
    .option('--in-process <n>', 'ferry ADD/DEL calls without its daemon (node per call); 0 skips', integer(0), 3)
    .option('--modes <list>', 'ferry modes, comma-separated', (v) => v.split(',').map(mode), ['routed', 'bridge'] as FerryMode[])
    .option('--no-reference', 'skip the reference chain')
    .option('--no-floor', 'skip the no-op plugin (what cnitool costs by itself)')
    .option('--out <dir>', 'where the raw samples (JSON) go', join(REPO_ROOT, 'build/bench'));
  program.parse();
  const o = program.opts<Options>();
  if (o.sequential <= o.warmup) throw new InvalidArgumentError(`--sequential (${o.sequential}) must exceed --warmup (${o.warmup})`);
  return o;
}

function mode(v: string): FerryMode {
  if (v !== 'routed' && v !== 'bridge') throw new InvalidArgumentError(`unknown mode "${v}" (routed, bridge)`);
  return v;
}

const say = (msg: string) => process.stderr.write(`${msg}\n`);

const FLOOR_SOURCE = fileURLToPath(new URL('./cni/noop-plugin.c', import.meta.url));
const FLOOR_DIR = join(REPO_ROOT, 'build/bench/cni-noop');

/** Compiles the no-op plugin (bench/cni/noop-plugin.c) when it is missing or older than its source. */
function buildFloorPlugin(): string {
  const bin = join(FLOOR_DIR, 'noop');
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(FLOOR_SOURCE).mtimeMs) return FLOOR_DIR;
  mkdirSync(FLOOR_DIR, { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, FLOOR_SOURCE], { stdio: ['ignore', 'inherit', 'inherit'] });
  return FLOOR_DIR;
}

function preflight(o: Options): { cnitool: string; refDir: string; floorDir: string } {
  if (process.getuid?.() !== 0) throw new Error('the CNI bench needs root (network namespaces, veths, bridges)');
  for (const path of [join(FERRY_CNI_DIR, 'ferry'), FERRY_CLI]) {
    if (!existsSync(path)) throw new Error(`${path} is missing (run make)`);
  }
  const refDir = referencePluginDir();
  if (!existsSync(join(refDir, 'bridge'))) {
    throw new Error(`the reference bridge plugin is missing in ${refDir} (package containernetworking-plugins; run make deps)`);
  }
  const floorDir = o.floor ? buildFloorPlugin() : FLOOR_DIR;
  say('building or finding cnitool…');
  return { cnitool: ensureCnitool(), refDir, floorDir };
}

function environment(): Record<string, string> {
  const sh = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    kernel: sh('uname', ['-r']),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    cnitool: sh('cat', [join(REPO_ROOT, 'build/cnitool/cnitool.version')]),
    referencePlugins: `containernetworking-plugins ${sh('dpkg-query', ['-W', '-f=${Version}', 'containernetworking-plugins'])}`,
    ferry: `${sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'])}${sh('git', ['-C', REPO_ROOT, 'status', '--porcelain']) ? ' (uncommitted changes)' : ''}`,
  };
}

/** On failure, the plugin's and the daemons' logs outlive the temp dir. */
function keepLogs(dir: string, out: string): void {
  const dest = join(out, `cni-failed-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  try {
    cpSync(dir, dest, { recursive: true, filter: (src) => statSync(src).isDirectory() || src.endsWith('.log') });
    say(`logs kept in ${dest}`);
  } catch (e) {
    say(`could not keep the logs: ${(e as Error).message}`);
  }
}

async function main(): Promise<void> {
  const o = parseOptions();
  const { cnitool, refDir, floorDir } = preflight(o);
  const cleanup = new Cleanup();
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'ferry-bench-cni-'));
    const tmp = dir;
    cleanup.add(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
    const prefix = runPrefix('fbc');
    const keys: ContenderKey[] = [
      ...(o.floor ? (['floor'] as const) : []),
      ...(o.reference ? (['reference'] as const) : []),
      ...o.modes.map((m) => `ferry-${m}` as const),
    ];
    const pods = Math.max(o.sequential, o.concurrent, o.inProcess);
    const contenders = keys.map((key) => {
      const cdir = join(tmp, key);
      mkdirSync(cdir);
      return planContender({ key, prefix, pods, dir: cdir, referencePluginDir: refDir, floorPluginDir: floorDir });
    });
    say(`creating ${contenders.length} node + ${contenders.length * pods} pod namespaces (${prefix}-*)…`);
    const made: string[] = [];
    cleanup.add(`ip netns del ${prefix}-*`, () => delNetns(made));
    for (const c of contenders) {
      for (const ns of [c.node, ...c.pods]) {
        addNetns(ns);
        made.push(ns);
      }
    }

    const load = loadavg()[0]!;
    const started = new Date();
    const lives: Live[] = [];
    for (const c of contenders) lives.push(await bringUp(c, o, cnitool, cleanup));
    await measure(lives, o);
    for (const l of lives) await bringDown(l);
    const runs = lives.map((l) => l.run);
    const loadAfter = loadavg()[0]!;

    const env = { ...environment(), 'load average (1 min)': `${load.toFixed(1)} before, ${loadAfter.toFixed(1)} after` };
    const settings: RunSettings = { sequential: o.sequential, concurrent: o.concurrent, rounds: o.rounds, warmup: o.warmup, inProcess: o.inProcess };
    const vs = verdicts(runs, settings);
    mkdirSync(o.out, { recursive: true });
    const file = join(o.out, `cni-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ started: started.toISOString(), environment: env, settings, verdicts: vs, runs }, null, 2)}\n`);

    console.log(`\nCNI ADD/DEL through libcni's cnitool, ${started.toISOString()}`);
    console.log(Object.entries(env).map(([k, v]) => `  ${k}: ${v}`).join('\n'));
    console.log(
      [
        `  per contender: ${o.sequential} sequential ADDs, then as many DELs (the first ${o.warmup} of each discarded as warm-up);`,
        `  ${o.rounds} rounds of ${o.concurrent} concurrent ADDs, each followed by ${o.concurrent} concurrent DELs (one more round first, discarded);`,
        '  contenders interleaved call by call and round by round, in rotating order;',
        '  a call = wall time of one cnitool process; p50/p95 interpolated between ranks; concurrent = median of the rounds.',
      ].join('\n'),
    );
    console.log('\nTargets (ratio = ferry ÷ reference; ≤ 1.00× is no slower):');
    console.log(renderTargets(runs, settings));
    if (vs.length > 0) console.log(`\n${renderVerdicts(vs)}`);
    console.log(
      "\nWhere the time goes (\"in ferry's log\" = the ms ferry logs per request, inside runCni; " +
        'the no-op plugin = cnitool, libcni and one plugin exec, no work):',
    );
    console.log(renderBreakdown(runs, settings));
    if (Math.max(load, loadAfter) > cpus().length) {
      console.log(`\nnote: the load average exceeded the ${cpus().length} CPUs: other work shared the machine; contenders were interleaved so it fell on all of them, but expect noise`);
    }
    console.log(`\nraw samples: ${file}`);
  } catch (e) {
    if (dir) keepLogs(dir, o.out);
    throw e;
  } finally {
    cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/cni.ts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
