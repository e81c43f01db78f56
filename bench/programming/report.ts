// The programming bench's table, from one run's measurements only.
import Table from 'cli-table3';
import { ms } from '../support/cli.js';
import { summarize } from '../support/stats.js';
import type { DaemonRun } from './daemon.js';
import type { IptablesRound } from './iptables.js';
import type { SyncFigures, SyncRound } from './sync.js';

/** Issue #4's targets. */
export const TARGETS = { fullMs: 1000, changeMs: 10 } as const;

interface ProgrammingResults {
  rounds: number;
  reconciler: SyncRound[];
  iptables: Record<string, IptablesRound[]>;
  daemon?: DaemonRun;
}

const median = (xs: number[]): number => summarize(xs).p50;
const range = (xs: number[]): string => {
  const s = summarize(xs);
  return xs.length > 1 ? `${ms(s.min)}–${ms(s.max)}` : '';
};
const verdict = (value: number, target: number): string => `${value <= target ? 'MET' : 'MISSED'} (≤ ${target} ms)`;

export function renderProgramming(r: ProgrammingResults): string {
  const head = ['', 'median ms', 'min–max', 'target'];
  const t = new Table({ head, style: { head: [], border: [], compact: true }, colAligns: ['left', 'right', 'right', 'left'] });
  const full = r.reconciler.map((x) => x.full.ms);
  const programmed = r.reconciler.map((x) => x.full.stagesMs.desired + x.full.stagesMs.apply);
  const changes = r.reconciler.flatMap((x) => x.changes);
  const change = changes.map((x) => x.ms);
  const split = ({ stagesMs: s }: SyncFigures) =>
    `read ${ms(s.read)} + convert ${ms(s.convert)} + desired state ${ms(s.desired)} + apply ${ms(s.apply)} + conntrack ${ms(s.conntrack)}`;
  const mid = <T>(xs: T[], f: (x: T) => number): T => [...xs].sort((a, b) => f(a) - f(b))[Math.floor((xs.length - 1) / 2)]!;
  t.push(
    [{ colSpan: 4, content: `ferry, the daemon's sync path (ServiceSync, in process, real BPF maps), ${r.rounds} rounds` }],
    ['  all Services, empty maps: the first sync', ms(median(full)), range(full), verdict(median(full), TARGETS.fullMs)],
    [`    (median round: ${split(mid(r.reconciler, (x: SyncRound) => x.full.ms).full)})`, '', '', ''],
    ['    of which programming: desired state + apply', ms(median(programmed)), range(programmed), verdict(median(programmed), TARGETS.fullMs)],
    [`  one endpoint replaced, synced by key as on a watch event (${changes.length} changes)`, ms(median(change)), range(change), verdict(median(change), TARGETS.changeMs)],
    [`    (median change: ${split(mid(changes, (x) => x.ms))})`, '', '', ''],
    ['  every Service removed', ms(median(r.reconciler.map((x) => x.removeMs))), range(r.reconciler.map((x) => x.removeMs)), ''],
  );
  if (r.daemon) {
    const d = r.daemon;
    const syncs = d.edits.map((e) => e.syncMs);
    const latencies = d.edits.map((e) => e.latencyMs);
    t.push(
      [{ colSpan: 4, content: `ferry daemon --services (JSON manifest), ${d.edits.length} edits; RSS after: ${d.rssMiB.toFixed(0)} MiB` }],
      ['  first sync (the daemon\'s own ms)', ms(d.first.syncMs), '', verdict(d.first.syncMs, TARGETS.fullMs)],
      ['  start → first sync logged', ms(d.startMs), '', ''],
      ['  one endpoint edited: sync (own ms)', ms(median(syncs)), range(syncs), verdict(median(syncs), TARGETS.changeMs)],
      ['  one endpoint edited: rename → sync logged', ms(median(latencies)), range(latencies), 'file source: ≤ 1000 ms (#5)'],
    );
  }
  for (const [backend, rounds] of Object.entries(r.iptables)) {
    const fulls = rounds.map((x) => x.fullMs);
    const changes = rounds.map((x) => x.changeMs);
    t.push(
      [{ colSpan: 4, content: `kube-proxy rules, iptables-${backend}-restore (a process in the node netns), ${rounds.length} rounds` }],
      ['  all Services, empty tables', ms(median(fulls)), range(fulls), `ferry ÷ this: ${(median(full) / median(fulls)).toFixed(2)}×`],
      ['  one endpoint replaced (minimized restore)', ms(median(changes)), range(changes), `ferry ÷ this: ${(median(change) / median(changes)).toPrecision(2)}×`],
    );
  }
  return t.toString();
}
