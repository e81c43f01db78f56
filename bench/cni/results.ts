// What one bench run records per contender: every call with its timing
// (warm-up calls included and marked), and ferry's own per-request time from
// its log.
import type { CallTiming } from './protocol.js';
import type { ContenderKey, FerryMode } from './contenders.js';

/** How many calls and rounds a run makes. */
export interface RunSettings {
  /** Pods in each sequential series (ADD, then DEL). */
  sequential: number;
  /** Calls started at once in each concurrent round. */
  concurrent: number;
  /** Measured concurrent rounds (one more runs first, as warm-up). */
  rounds: number;
  /** Calls discarded at the start of each sequential series. */
  warmup: number;
  /** ferry calls made before its daemon runs (in-process mode). */
  inProcess: number;
}

export interface CallRecord extends CallTiming {
  /** Discarded from the summaries. */
  warmup: boolean;
  /** ferry only: `ms` its log recorded for this request (time inside runCni). */
  pluginMs?: number;
}

export interface RoundRecord {
  /** Wall time of the round: first spawn to last exit. */
  wallMs: number;
  warmup: boolean;
  calls: CallRecord[];
}

export interface ContenderRun {
  key: ContenderKey;
  label: string;
  mode?: FerryMode;
  network: string;
  subnet: string;
  node: string;
  /** ferry without its daemon: the frontend execs node for every call. */
  inProcess?: { add: CallRecord[]; del: CallRecord[] };
  sequential: { add: CallRecord[]; del: CallRecord[] };
  concurrent: { add: RoundRecord[]; del: RoundRecord[] };
}

export const measured = <T extends { warmup: boolean }>(xs: readonly T[]): T[] => xs.filter((x) => !x.warmup);
export const callMs = (xs: readonly CallRecord[]): number[] => measured(xs).map((c) => c.ms);
export const pluginMs = (xs: readonly CallRecord[]): number[] => measured(xs).flatMap((c) => (c.pluginMs === undefined ? [] : [c.pluginMs]));
export const wallMs = (rounds: readonly RoundRecord[]): number[] => measured(rounds).map((r) => r.wallMs);
