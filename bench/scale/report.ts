// The scale bench's table, from one run's measurements only.
import Table from 'cli-table3';
import { ms, thousands } from '../support/cli.js';
import { median, quantile } from '../support/stats.js';

/** Issue #5's targets. */
const TARGETS = { convergeMs: 3000, rssMiB: 250, updateMs: 50 } as const;

export interface ScaleResults {
  services: number;
  endpoints: number;
  minSyncMs: number;
  convergence: { startToSyncedMs: number; listedToSyncedMs: number; syncMs: number; syncs: number };
  rss: { converged: number; afterUpdates: number; peak: number };
  /** ms, watch event → seen in the maps. */
  latencies: number[];
  stream: { updates: number; rate: number; seconds: number; cpuMs: number; syncs: number };
  /** ms per iptables backend. */
  iptables: Record<string, number>;
}

const met = (ok: boolean) => (ok ? 'MET' : 'MISSED');

export function renderScale(r: ScaleResults): string {
  const t = new Table({ head: ['', 'measured', 'target'], style: { head: [], border: [], compact: true }, colAligns: ['left', 'right', 'left'] });
  const fastestIptables = Math.min(...Object.values(r.iptables));
  const converge = r.convergence.startToSyncedMs;
  t.push(
    ['converged: daemon start → every Service in the maps', `${ms(converge)} ms`, `≤ ${TARGETS.convergeMs} ms and < iptables-restore: ${met(converge <= TARGETS.convergeMs && converge < fastestIptables)}`],
    ['  informers listed → synced', `${ms(r.convergence.listedToSyncedMs)} ms`, ''],
    ['  that sync (the daemon\'s own ms)', `${ms(r.convergence.syncMs)} ms`, `${r.convergence.syncs} sync(s) up to it`],
    ...Object.entries(r.iptables).map(([b, v]) => [`kube-proxy: iptables-${b}-restore, the same Services`, `${ms(v)} ms`, `ferry ÷ this: ${(converge / v).toFixed(2)}×`]),
    ['RSS converged / after the updates / peak', `${r.rss.converged.toFixed(0)} / ${r.rss.afterUpdates.toFixed(0)} / ${r.rss.peak.toFixed(0)} MiB`, `≤ ${TARGETS.rssMiB} MB: ${met(r.rss.peak * 1.048576 <= TARGETS.rssMiB)}`],
    [
      `one endpoint update, watch event → maps (${r.latencies.length}, one at a time)`,
      `p50 ${ms(median(r.latencies))}, p90 ${ms(quantile(r.latencies, 0.9))}, max ${ms(Math.max(...r.latencies))} ms`,
      `≤ ${TARGETS.updateMs} ms: ${met(median(r.latencies) <= TARGETS.updateMs)} (minSyncPeriod ${r.minSyncMs} ms)`,
    ],
    [
      `CPU per 1,000 endpoint updates (${thousands(r.stream.updates)} at ${r.stream.rate}/s, ${r.stream.syncs} syncs)`,
      `${ms((r.stream.cpuMs * 1000) / r.stream.updates)} ms`,
      `${ms(r.stream.cpuMs)} ms CPU in ${r.stream.seconds.toFixed(1)} s`,
    ],
  );
  return t.toString();
}
