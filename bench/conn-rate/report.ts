// The connection-rate bench's table and verdicts, from one run's
// measurements only.
import Table from 'cli-table3';
import { ms, thousands } from '../support/cli.js';
import { median } from '../support/stats.js';
import type { Loaded } from './services.js';
import { connPerSecond, type ConnRun } from './runner.js';

export type ScenarioKey = 'ferry-cip' | 'ferry-pod' | 'ipt-cip' | 'ipt-pod';

export const SCENARIOS: Record<ScenarioKey, string> = {
  'ferry-cip': 'ferry, pod→ClusterIP',
  'ferry-pod': 'ferry, pod→pod IP (direct)',
  'ipt-cip': 'iptables, pod→ClusterIP',
  'ipt-pod': 'iptables, pod→pod IP (direct)',
};

export interface ScaleResult {
  scale: number;
  loads: { ferry: Loaded; iptables?: Loaded };
  runs: Partial<Record<ScenarioKey, ConnRun[]>>;
  /** Packets ferry translated (SYN, ACK, RST of each ClusterIP connection); connections through the KUBE-SEP DNAT rule. */
  dnat: { ferryPackets: number; iptablesConnections?: number };
}

const rate = (runs: ConnRun[]): number => median(runs.map(connPerSecond));
const p50 = (runs: ConnRun[]): number => median(runs.map((r) => r.p50_ns)) / 1000;
const p99 = (runs: ConnRun[]): number => median(runs.map((r) => r.p99_ns)) / 1000;
const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

export function renderTable(results: ScaleResult[]): string {
  const head = ['Services', 'path', 'conn/s\n(median)', 'min–max', 'connect p50\nµs', 'connect p99\nµs', 'failed', 'Services loaded in'];
  const t = new Table({ head, style: { head: [], border: [], compact: true }, colAligns: ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'left'] });
  for (const r of results) {
    for (const key of Object.keys(SCENARIOS) as ScenarioKey[]) {
      const runs = r.runs[key];
      if (!runs) continue;
      const rates = runs.map(connPerSecond);
      const load = key === 'ferry-cip' ? `${ms(r.loads.ferry.ms)} ms, ${r.loads.ferry.how}` : key === 'ipt-cip' && r.loads.iptables ? `${ms(r.loads.iptables.ms)} ms, ${r.loads.iptables.how}` : '';
      t.push([
        thousands(r.scale),
        SCENARIOS[key],
        thousands(rate(runs)),
        `${thousands(Math.min(...rates))}–${thousands(Math.max(...rates))}`,
        p50(runs).toFixed(1),
        p99(runs).toFixed(1),
        String(runs.reduce((n, x) => n + x.failures, 0)),
        load,
      ]);
    }
  }
  return t.toString();
}

/** The issue's targets, each with what this run measured. */
export function renderVerdicts(results: ScaleResult[]): string {
  const lines: string[] = [];
  const ferry = results.filter((r) => r.runs['ferry-cip']);
  if (ferry.length >= 2) {
    const first = ferry[0]!;
    const last = ferry.at(-1)!;
    const change = rate(last.runs['ferry-cip']!) / rate(first.runs['ferry-cip']!) - 1;
    const latency = p50(last.runs['ferry-cip']!) / p50(first.runs['ferry-cip']!) - 1;
    lines.push(
      `ferry conn/s from ${thousands(first.scale)} to ${thousands(last.scale)} Services: ${pct(change)} (target: within 5%) — ${Math.abs(change) <= 0.05 ? 'MET' : 'MISSED'}; ` +
        `every scale: ${ferry.map((r) => `${thousands(r.scale)} ${thousands(rate(r.runs['ferry-cip']!))}`).join(', ')}`,
      // The loop's rate swings with whatever else runs on the CPUs; one connect's latency much less.
      `ferry connect p50 from ${thousands(first.scale)} to ${thousands(last.scale)} Services: ${pct(latency)}; ` +
        `every scale: ${ferry.map((r) => `${thousands(r.scale)} ${p50(r.runs['ferry-cip']!).toFixed(1)} µs`).join(', ')}`,
    );
  }
  for (const r of results) {
    if (!r.runs['ipt-cip'] || !r.runs['ferry-cip']) continue;
    const ratio = rate(r.runs['ferry-cip']) / rate(r.runs['ipt-cip']);
    const target = r.scale === 10_000 ? ` (target at 10k: ≥ 2×) — ${ratio >= 2 ? 'MET' : 'MISSED'}` : '';
    lines.push(`${thousands(r.scale)} Services: ferry ÷ iptables conn/s ${ratio.toFixed(2)}×${target}; connect p50 ${p50(r.runs['ferry-cip']).toFixed(1)} vs ${p50(r.runs['ipt-cip']).toFixed(1)} µs`);
  }
  for (const r of ferry) {
    if (!r.runs['ferry-pod']) continue;
    const ratio = p50(r.runs['ferry-cip']!) / p50(r.runs['ferry-pod']);
    lines.push(`${thousands(r.scale)} Services: ferry connect p50 through the ClusterIP ÷ direct ${ratio.toFixed(3)} (target ≤ 1.10) — ${ratio <= 1.1 ? 'MET' : 'MISSED'}`);
  }
  return lines.join('\n');
}
