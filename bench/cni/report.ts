// The bench's tables and verdicts, from one run's measurements only.
import Table from 'cli-table3';
import { median, quantile } from '../support/stats.js';
import { callMs, measured, pluginMs, wallMs, type CallRecord, type ContenderRun, type RunSettings } from './results.js';


const fmt = (ms: number): string => (Number.isNaN(ms) ? '—' : ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
const fmtRatio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '—');
const isFerry = (r: ContenderRun): boolean => r.key.startsWith('ferry-');

function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [], compact: true }, colAligns: head.map((_, i) => (i === 0 ? 'left' : 'right')) });
}

/** The figures the issue sets targets on: ferry's daemon beside the reference, with ferry ÷ reference. */
export function renderTargets(runs: ContenderRun[], s: RunSettings): string {
  const ref = runs.find((r) => r.key === 'reference');
  const ferries = runs.filter(isFerry);
  const head = ['ms', ...(ref ? ['reference'] : [])];
  for (const f of ferries) head.push(`${f.label}\n(daemon)`, ...(ref ? ['ratio'] : []));
  const t = table(head);
  const rows: [string, (r: ContenderRun) => number][] = [
    ['ADD p50 (sequential)', (r) => quantile(callMs(r.sequential.add), 0.5)],
    ['ADD p95 (sequential)', (r) => quantile(callMs(r.sequential.add), 0.95)],
    ['DEL p50 (sequential)', (r) => quantile(callMs(r.sequential.del), 0.5)],
    ['DEL p95 (sequential)', (r) => quantile(callMs(r.sequential.del), 0.95)],
    [`${s.concurrent} concurrent ADDs, wall`, (r) => median(wallMs(r.concurrent.add))],
    [`${s.concurrent} concurrent DELs, wall`, (r) => median(wallMs(r.concurrent.del))],
  ];
  for (const [label, value] of rows) {
    const refValue = ref ? value(ref) : Number.NaN;
    const cells = [label, ...(ref ? [fmt(refValue)] : [])];
    for (const f of ferries) cells.push(fmt(value(f)), ...(ref ? [fmtRatio(value(f) / refValue)] : []));
    t.push(cells);
  }
  return t.toString();
}

/**
 * Where the time goes: every contender's cnitool wall time beside the floor
 * (a no-op plugin), ferry's own per-request time from its log, the first and
 * last third of the sequential pods (does a call slow down as the node
 * fills?), and ferry without its daemon.
 */
export function renderBreakdown(runs: ContenderRun[], s: RunSettings): string {
  const daemonCols = runs.map((r) => ({ label: isFerry(r) ? `${r.label}\n(daemon)` : r.key === 'floor' ? `${r.label}\n(cnitool floor)` : r.label, run: r, inProcess: false }));
  const inProcessCols = runs
    .filter((r) => r.inProcess && r.inProcess.add.length > 0)
    .map((r) => ({ label: `${r.label}\n(in-process, n=${r.inProcess!.add.length})`, run: r, inProcess: true }));
  const cols = [...daemonCols, ...inProcessCols];
  const t = table(['ms', ...cols.map((c) => c.label)]);

  const third = Math.max(1, Math.floor((s.sequential - s.warmup) / 3));
  const firstPods = `pods ${s.warmup + 1}–${s.warmup + third}`;
  const lastPods = `pods ${s.sequential - third + 1}–${s.sequential}`;
  const head = (xs: CallRecord[]) => measured(xs).slice(0, third);
  const tail = (xs: CallRecord[]) => measured(xs).slice(-third);
  const wall = (xs: CallRecord[]) => xs.map((c) => c.ms);
  const inLog = (xs: CallRecord[]) => xs.flatMap((c) => (c.pluginMs === undefined ? [] : [c.pluginMs]));
  const concCalls = (r: ContenderRun) => measured(r.concurrent.add).flatMap((x) => x.calls);

  // Each row: the value for a daemon-mode (or non-ferry) column, and for an in-process column.
  type Cell = (r: ContenderRun) => number;
  const na: Cell = () => Number.NaN;
  const ferryOnly = (f: Cell): Cell => (r) => (isFerry(r) ? f(r) : Number.NaN);
  // In-process calls all count: each is a fresh node process, nothing to warm up.
  const ip = (cmd: 'add' | 'del', pick: (xs: CallRecord[]) => number[]): Cell => (r) => median(pick(r.inProcess?.[cmd] ?? []));
  const rows: [string, Cell, Cell][] = [
    ['ADD p50, cnitool wall', (r) => median(callMs(r.sequential.add)), ip('add', wall)],
    ["ADD p50, in ferry's log", ferryOnly((r) => median(pluginMs(r.sequential.add))), ip('add', inLog)],
    [`ADD p50, cnitool wall, ${firstPods}`, (r) => median(wall(head(r.sequential.add))), na],
    [`ADD p50, cnitool wall, ${lastPods}`, (r) => median(wall(tail(r.sequential.add))), na],
    [`ADD p50, in ferry's log, ${firstPods}`, ferryOnly((r) => median(inLog(head(r.sequential.add)))), na],
    [`ADD p50, in ferry's log, ${lastPods}`, ferryOnly((r) => median(inLog(tail(r.sequential.add)))), na],
    ['DEL p50, cnitool wall', (r) => median(callMs(r.sequential.del)), ip('del', wall)],
    ["DEL p50, in ferry's log", ferryOnly((r) => median(pluginMs(r.sequential.del))), ip('del', inLog)],
    [`${s.concurrent} concurrent ADDs, wall`, (r) => median(wallMs(r.concurrent.add)), na],
    ["  per call in ferry's log, p50", ferryOnly((r) => median(inLog(concCalls(r)))), na],
    ["  per call in ferry's log, max", ferryOnly((r) => quantile(inLog(concCalls(r)), 1)), na],
    [`${s.concurrent} concurrent DELs, wall`, (r) => median(wallMs(r.concurrent.del)), na],
  ];
  for (const [label, daemon, inProcess] of rows) {
    t.push([label, ...cols.map((c) => fmt((c.inProcess ? inProcess : daemon)(c.run)))]);
  }
  return t.toString();
}

export interface Verdict {
  contender: string;
  target: string;
  ferryMs: number;
  referenceMs: number;
  met: boolean;
}

/** The targets: ferry's ADD p50, DEL p50 and concurrent ADD wall time no slower than the reference's. */
export function verdicts(runs: ContenderRun[], s: RunSettings): Verdict[] {
  const ref = runs.find((r) => r.key === 'reference');
  if (!ref) return [];
  const targets: [string, (r: ContenderRun) => number][] = [
    ['ADD p50', (r) => median(callMs(r.sequential.add))],
    ['DEL p50', (r) => median(callMs(r.sequential.del))],
    [`${s.concurrent} concurrent ADDs, wall`, (r) => median(wallMs(r.concurrent.add))],
  ];
  const out: Verdict[] = [];
  for (const f of runs.filter(isFerry)) {
    for (const [target, value] of targets) {
      const ferryMs = value(f);
      const referenceMs = value(ref);
      out.push({ contender: `${f.label} (daemon)`, target, ferryMs, referenceMs, met: ferryMs <= referenceMs });
    }
  }
  return out;
}

export function renderVerdicts(vs: Verdict[]): string {
  return vs
    .map(
      (v) =>
        `${v.met ? 'MET   ' : 'MISSED'} ${v.contender}: ${v.target} ${fmt(v.ferryMs)} ms ${v.met ? '≤' : '>'} ` +
        `reference ${fmt(v.referenceMs)} ms (${fmtRatio(v.ferryMs / v.referenceMs)})`,
    )
    .join('\n');
}
