// The dataplane bench's table and verdicts, from one run's measurements only.
import Table from 'cli-table3';
import { median } from '../support/stats.js';
import type { IperfResult } from './iperf.js';

export type ScenarioKey = 'ferry-pod' | 'ferry-cip' | 'ref-pod' | 'ipt-cip' | 'ipt-pod';

export interface ScenarioRun {
  key: ScenarioKey;
  label: string;
  /** The node the pods live on (its description). */
  node: string;
  client: string;
  server: string;
  /** What the client connects to. */
  dst: string;
  /** The scenario this one is compared with, if any. */
  baseline?: ScenarioKey;
  /** Connections the ClusterIP setup DNATed, read back after the runs (ClusterIP scenarios only). */
  dnatConnections?: number;
  /** rep: the round; order: position in the whole run; load1: 1-minute load average when the run started. */
  runs: Array<IperfResult & { rep: number; order: number; load1: number }>;
}

const gbps = (bps: number): number => bps / 1e9;
export const medianGbps = (s: ScenarioRun): number => median(s.runs.map((r) => gbps(r.receivedBitsPerSecond)));
const minGbps = (s: ScenarioRun): number => Math.min(...s.runs.map((r) => gbps(r.receivedBitsPerSecond)));
const maxGbps = (s: ScenarioRun): number => Math.max(...s.runs.map((r) => gbps(r.receivedBitsPerSecond)));
const medianRetransmits = (s: ScenarioRun): number => median(s.runs.map((r) => r.retransmits));

const fmtG = (g: number): string => (Number.isFinite(g) ? g.toFixed(2) : '—');
const fmtRatio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '—');
const fmtPct = (p: number): string => (Number.isFinite(p) ? `${p.toFixed(0)}%` : '—');

export const SHORT: Record<ScenarioKey, string> = {
  'ferry-pod': 'ferry pod→pod',
  'ferry-cip': 'ferry pod→ClusterIP',
  'ref-pod': 'reference bridge pod→pod',
  'ipt-cip': 'iptables pod→ClusterIP',
  'ipt-pod': 'kube-proxy node pod→pod',
};

export function renderTable(scenarios: ScenarioRun[]): string {
  const head = ['scenario', 'Gbit/s\n(median)', 'min–max', 'retransmits\n(median)', 'retransmits\n(each run)', 'CPU % sender /\nreceiver (median)', 'ratio to baseline'];
  const t = new Table({ head, style: { head: [], border: [], compact: true }, colAligns: head.map((_, i) => (i === 0 ? 'left' : 'right')) });
  const byKey = new Map(scenarios.map((s) => [s.key, s]));
  for (const s of scenarios) {
    const base = s.baseline ? byKey.get(s.baseline) : undefined;
    t.push([
      s.label,
      fmtG(medianGbps(s)),
      `${fmtG(minGbps(s))}–${fmtG(maxGbps(s))}`,
      String(Math.round(medianRetransmits(s))),
      s.runs.map((r) => r.retransmits).join(' '),
      `${fmtPct(median(s.runs.map((r) => r.senderCpuPercent)))} / ${fmtPct(median(s.runs.map((r) => r.receiverCpuPercent)))}`,
      base ? `${fmtRatio(medianGbps(s) / medianGbps(base))} of ${SHORT[base.key]}` : 'baseline',
    ]);
  }
  return t.toString();
}

export interface Verdict {
  what: string;
  kind: 'compare' | 'cost';
  /** Ratio of the two medians. */
  ratio: number;
  /** a ÷ b run by run (the same round, taken close together), and their median. */
  paired: number[];
  pairedMedian: number;
  a: { key: ScenarioKey; gbps: number };
  b: { key: ScenarioKey; gbps: number };
  /** The two scenarios' min–max ranges overlap: the difference is within this run's spread. */
  overlap: boolean;
}

const PAIRS: Array<[ScenarioKey, ScenarioKey, Verdict['kind'], string]> = [
  ['ferry-cip', 'ipt-cip', 'compare', 'ferry pod→ClusterIP vs iptables pod→ClusterIP'],
  ['ferry-pod', 'ref-pod', 'compare', 'ferry pod→pod vs reference bridge pod→pod'],
  ['ferry-cip', 'ferry-pod', 'cost', 'ClusterIP through ferry (pod→ClusterIP ÷ pod→pod, same pods)'],
  ['ipt-cip', 'ipt-pod', 'cost', 'ClusterIP through iptables (pod→ClusterIP ÷ pod→pod, same pods)'],
];

export function verdicts(scenarios: ScenarioRun[]): Verdict[] {
  const byKey = new Map(scenarios.map((s) => [s.key, s]));
  const out: Verdict[] = [];
  for (const [ka, kb, kind, what] of PAIRS) {
    const a = byKey.get(ka);
    const b = byKey.get(kb);
    if (!a || !b) continue;
    const paired = a.runs.flatMap((ra) => {
      const rb = b.runs.find((x) => x.rep === ra.rep);
      return rb ? [ra.receivedBitsPerSecond / rb.receivedBitsPerSecond] : [];
    });
    out.push({
      what,
      kind,
      ratio: medianGbps(a) / medianGbps(b),
      paired,
      pairedMedian: median(paired),
      a: { key: ka, gbps: medianGbps(a) },
      b: { key: kb, gbps: medianGbps(b) },
      overlap: minGbps(a) <= maxGbps(b) && minGbps(b) <= maxGbps(a),
    });
  }
  return out;
}

export function renderVerdicts(vs: Verdict[], repeat: number): string {
  return vs
    .map((v) => {
      let word: string;
      if (v.kind === 'cost') word = '';
      else if (v.overlap) word = ' — not resolved: the two min–max ranges overlap';
      else if (Math.abs(v.ratio - 1) < 0.05) word = ' — on par (within 5%)';
      else word = v.ratio > 1 ? ' — ferry faster' : ' — ferry slower';
      const paired = `run by run ${v.paired.map(fmtRatio).join(' ')} (median ${fmtRatio(v.pairedMedian)})`;
      return `${v.what}: ${fmtRatio(v.ratio)}${word}\n    medians of ${repeat}: ${fmtG(v.a.gbps)} vs ${fmtG(v.b.gbps)} Gbit/s; ${paired}`;
    })
    .join('\n');
}
