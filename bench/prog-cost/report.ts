// The program-cost bench's table, from one run's measurements only.
import Table from 'cli-table3';
import { thousands } from '../support/cli.js';
import { median } from '../support/stats.js';
import type { CaseResult, Reference } from './cases.js';

/** Issue #4's targets, ns per packet, the same at every scale. */
const TARGETS: Partial<Record<CaseResult['key'], number>> = { established: 150, 'new-random': 300, 'new-maglev': 300 };

const LABELS: Record<CaseResult['key'], string> = {
  established: 'established Service flow → local pod',
  'new-random': 'new flow, random backend → local pod',
  'new-maglev': 'new flow, Maglev → local pod',
  'pod-to-pod': 'pod→pod, no Service → local pod',
};

interface Run {
  scale: number;
  reference: Reference;
  cases: CaseResult[];
}

export function renderProgCost(scales: number[], runs: Run[]): string {
  const at = (scale: number) => runs.filter((r) => r.scale === scale);
  const caseNs = (scale: number, key: CaseResult['key']) => median(at(scale).map((r) => r.cases.find((c) => c.key === key)!.ns));
  const refNs = (scale: number, f: (r: Reference) => number) => median(at(scale).map((r) => f(r.reference)));
  const head = ['ns per packet (median of rounds)', ...scales.map((s) => `${thousands(s)} Services`), 'target', `${thousands(scales.at(-1)!)} ÷ ${thousands(scales[0]!)}`];
  const t = new Table({ head, style: { head: [], border: [], compact: true }, colAligns: ['left', ...scales.map(() => 'right' as const), 'left', 'right'] });
  for (const key of Object.keys(LABELS) as Array<CaseResult['key']>) {
    const values = scales.map((s) => caseNs(s, key));
    const target = TARGETS[key];
    const verdict = target === undefined ? '' : `≤ ${target}: ${values.every((v) => v <= target) ? 'MET' : 'MISSED'}`;
    t.push([LABELS[key], ...values.map((v) => v.toFixed(0)), verdict, `${(values.at(-1)! / values[0]!).toFixed(2)}×`]);
  }
  t.push(
    ['floor: hash lookup + MACs + redirect_peer', ...scales.map((s) => refNs(s, (r) => r.floor).toFixed(0)), 'issue: ~75 here', ''],
    ['floor: one new conntrack entry (LRU, 65,536)', ...scales.map((s) => refNs(s, (r) => r.ctInsert).toFixed(0)), 'a new flow writes 2', ''],
    ['floor: one new entry, plain hash of 4,096', ...scales.map((s) => refNs(s, (r) => r.hashInsert).toFixed(0)), 'cheapest insert', ''],
    ['nop: the test-run loop alone', ...scales.map((s) => refNs(s, (r) => r.nop).toFixed(0)), '', ''],
  );
  return [
    t.toString(),
    '  every figure includes the test-run loop (nop). Established: BPF_PROG_RUN keeps one flow\'s entries hot in cache, so map size shows',
    '  as hash-chain length, not as cache misses. New flows: every run writes two conntrack entries of a tuple never seen before.',
  ].join('\n');
}
