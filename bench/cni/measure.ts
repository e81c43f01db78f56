// The CNI bench's measurements: each contender brought up (its cnitool
// runner in its node netns; for ferry a few in-process calls, then its
// daemon), then the sequential series and the concurrent rounds, taken in
// turns across contenders.
import type { Cleanup } from '../support/cleanup.js';
import { netnsPath } from '../support/netns.js';
import type { Contender } from './contenders.js';
import { FerryDaemon } from './daemon.js';
import { CnitoolRunner } from './driver.js';
import { logOffset, readDone } from './plugin-log.js';
import type { BatchResult, CniCommand } from './protocol.js';
import type { CallRecord, ContenderRun, RoundRecord, RunSettings } from './results.js';

const say = (msg: string) => process.stderr.write(`${msg}\n`);

/** A contender ready to be measured: its runner up and, for ferry, its daemon listening. */
export interface Live {
  c: Contender;
  run: ContenderRun;
  runner: CnitoolRunner;
  daemon?: FerryDaemon;
}

/** Runs one batch and insists every call succeeded (and that concurrent ADDs got distinct addresses). */
async function batch(runner: CnitoolRunner, c: Contender, command: CniCommand, pods: string[]): Promise<BatchResult> {
  const r = await runner.run(command, c.network, pods.map(netnsPath));
  const failed = r.calls.find((x) => x.status !== 0);
  if (failed) throw new Error(`${c.label}: cnitool ${command} ${c.network} ${failed.netns} failed (exit ${failed.status}):\n${failed.error}`);
  if (command === 'add' && c.key !== 'floor') {
    const ips = r.calls.map((x) => x.ip);
    if (new Set(ips).size !== ips.length) throw new Error(`${c.label}: concurrent ADDs handed out one address twice: ${ips.join(' ')}`);
  }
  return r;
}

/**
 * ferry's per-request `ms` from its log, matched to the calls a phase made
 * (by netns). With a daemon up, every call must have been served by it: the
 * frontend falls back to in-process mode silently when it cannot connect,
 * which would pass off in-process calls as daemon calls.
 */
function attachPluginMs({ c, daemon }: Live, from: number, calls: CallRecord[]): void {
  if (!c.ferry) return;
  const entries = readDone(c.ferry.logFile, from, logOffset(c.ferry.logFile));
  for (const call of calls) {
    const e = entries.find((x) => x.netns === call.netns);
    if (!e) continue;
    if (daemon && e.pid !== daemon.pid) {
      throw new Error(`${c.label}: a call on ${call.netns} was served by pid ${e.pid}, not by the daemon (pid ${daemon.pid}); is the daemon still up? Its log: ${c.ferry.daemonLog}`);
    }
    call.pluginMs = e.ms;
  }
}

/** One call after another, one pod each. */
async function sequential(live: Live, command: CniCommand, pods: string[]): Promise<CallRecord[]> {
  const { runner, c } = live;
  const from = c.ferry ? logOffset(c.ferry.logFile) : 0;
  const out: CallRecord[] = [];
  for (const pod of pods) {
    const r = await batch(runner, c, command, [pod]);
    out.push({ ...r.calls[0]!, warmup: false });
  }
  attachPluginMs(live, from, out);
  return out;
}

/** One call per pod, all started at once. */
async function concurrentRound(live: Live, command: CniCommand, pods: string[], warmup: boolean): Promise<RoundRecord> {
  const { runner, c } = live;
  const from = c.ferry ? logOffset(c.ferry.logFile) : 0;
  const r = await batch(runner, c, command, pods);
  const calls = r.calls.map((x) => ({ ...x, warmup }));
  attachPluginMs(live, from, calls);
  return { wallMs: r.wallMs, warmup, calls };
}

/** Starts a contender's runner; for ferry, makes the in-process calls, then starts its daemon. */
export async function bringUp(c: Contender, o: RunSettings, cnitool: string, cleanup: Cleanup): Promise<Live> {
  const run: ContenderRun = {
    key: c.key,
    label: c.label,
    ...(c.ferry ? { mode: c.ferry.mode } : {}),
    network: c.network,
    subnet: c.subnet,
    node: c.node,
    sequential: { add: [], del: [] },
    concurrent: { add: [], del: [] },
  };
  const runner = await CnitoolRunner.start({ cnitool, nodeNetns: c.node, cacheDir: c.cacheDir, confDir: c.confDir, pluginPaths: c.pluginPaths, env: c.env });
  cleanup.add(`kill the cnitool runner of ${c.label}`, () => runner.kill());
  const live: Live = { c, run, runner };
  if (!c.ferry) return live;
  if (o.inProcess > 0) {
    say(`${c.label}: ${o.inProcess} ADD + DEL in-process (no daemon yet: node per call)…`);
    const pods = c.pods.slice(0, o.inProcess);
    run.inProcess = { add: await sequential(live, 'add', pods), del: await sequential(live, 'del', pods) };
  }
  const daemon = await FerryDaemon.start({ nodeNetns: c.node, socket: c.ferry.socket, logFile: c.ferry.daemonLog });
  cleanup.add(`kill the ferry daemon of ${c.label}`, () => daemon.kill());
  say(`${c.label}: daemon up (pid ${daemon.pid})`);
  live.daemon = daemon;
  return live;
}

/** Contenders in a different order for every step, so none always goes first. */
function rotated<T>(xs: readonly T[], step: number): T[] {
  const k = step % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/**
 * The measurements, interleaved across contenders — call by call for the
 * sequential series, round by round for the concurrent ones — so background
 * load on a shared machine falls on all of them alike.
 */
export async function measure(lives: Live[], o: RunSettings): Promise<void> {
  for (const command of ['add', 'del'] as const) {
    say(`sequential ${command.toUpperCase()}: ${o.sequential} pods per contender, interleaved…`);
    for (let i = 0; i < o.sequential; i++) {
      for (const l of rotated(lives, i)) l.run.sequential[command].push(...(await sequential(l, command, [l.c.pods[i]!])));
    }
    for (const l of lives) l.run.sequential[command].forEach((call, i) => (call.warmup = i < o.warmup));
  }
  say(`concurrent: 1 warm-up + ${o.rounds} rounds of ${o.concurrent} ADDs, then ${o.concurrent} DELs, per contender, interleaved…`);
  for (let round = 0; round <= o.rounds; round++) {
    for (const l of rotated(lives, round)) {
      const pods = l.c.pods.slice(0, o.concurrent);
      l.run.concurrent.add.push(await concurrentRound(l, 'add', pods, round === 0));
      l.run.concurrent.del.push(await concurrentRound(l, 'del', pods, round === 0));
    }
  }
}

export async function bringDown(l: Live): Promise<void> {
  await l.daemon?.stop();
  await l.runner.stop();
}

