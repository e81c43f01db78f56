// The datapath's counters as people and scrapers read them: ferry_lb_metric
// summed over CPUs, the conntrack table's fill, and the conntrack GC's
// totals, with a Prometheus text exposition (format 0.0.4) of all three.
import type { CtGcRun, CtGcTotals, ReadableMap } from './ct-gc.js';
import { LB_EVENTS, LB_METRICS, metricKey, metricValue, type LbMetric } from './layout.js';

/** The per-CPU counters map: BpfMap has it. */
export interface MetricsMap {
  lookup(key: Buffer): Buffer | undefined;
  perCpuValues(value: Buffer): Buffer[];
}

export interface ConntrackFill {
  entries: number;
  /** max_entries of the map. */
  maxEntries: number;
}

export interface MetricsSnapshot {
  counters: Record<LbMetric, bigint>;
  conntrack: ConntrackFill;
  gc?: { totals: CtGcTotals; last?: CtGcRun | undefined };
}

/**
 * The outcome counters count each packet once; the others (LB_EVENTS) are
 * events counted on top (enum lb_metric in bpf/include/ferry_lb.h).
 */
export function isOutcome(name: LbMetric): boolean {
  return !LB_EVENTS.has(name);
}

/** Every counter of LB_METRICS, summed over CPUs. */
export function readCounters(map: MetricsMap): Record<LbMetric, bigint> {
  const out = {} as Record<LbMetric, bigint>;
  LB_METRICS.forEach((name, index) => {
    const value = map.lookup(metricKey.encode(index));
    // A per-CPU array always has every index; a missing one means another layout.
    if (value === undefined) throw new Error(`metrics map has no counter ${index} (${name}): not ferry's layout`);
    out[name] = map.perCpuValues(value).reduce((sum, slot) => sum + metricValue.decode(slot), 0n);
  });
  return out;
}

/** How many entries the conntrack map holds (by iteration: the kernel keeps no count) and how many it can. */
export function conntrackFill(map: ReadableMap & { maxEntries: number; keys?(): Iterable<Buffer> }): ConntrackFill {
  let entries = 0;
  for (const _ of map.keys?.() ?? map.entries()) entries++;
  return { entries, maxEntries: map.maxEntries };
}

/** The Prometheus text exposition of a snapshot. */
export function formatPrometheus(snapshot: MetricsSnapshot): string {
  const lines: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[labels: string, value: bigint | number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const counters = Object.entries(snapshot.counters) as Array<[LbMetric, bigint]>;
  family(
    'ferry_lb_packets_total',
    'counter',
    'Packets seen by the datapath programs, by outcome (each packet counted once).',
    counters.filter(([n]) => isOutcome(n)).map(([n, v]) => [`{outcome="${n}"}`, v]),
  );
  family(
    'ferry_lb_events_total',
    'counter',
    'Events in the datapath, counted on top of the packet outcomes.',
    counters.filter(([n]) => !isOutcome(n)).map(([n, v]) => [`{event="${n}"}`, v]),
  );
  family('ferry_ct_entries', 'gauge', 'Entries in the conntrack map.', [['', snapshot.conntrack.entries]]);
  family('ferry_ct_max_entries', 'gauge', 'Capacity of the conntrack map.', [['', snapshot.conntrack.maxEntries]]);
  const gc = snapshot.gc;
  if (gc !== undefined) {
    family('ferry_ct_gc_runs_total', 'counter', 'Conntrack GC passes completed.', [['', gc.totals.runs]]);
    family('ferry_ct_gc_errors_total', 'counter', 'Conntrack GC passes that failed.', [['', gc.totals.errors]]);
    family('ferry_ct_gc_deleted_total', 'counter', 'Conntrack entries deleted by the GC, by reason.', [
      ['{reason="expired"}', gc.totals.expired],
      ['{reason="orphaned"}', gc.totals.orphaned],
      ['{reason="withdrawn"}', gc.totals.withdrawn],
    ]);
    if (gc.last !== undefined) {
      family('ferry_ct_gc_last_run_timestamp_seconds', 'gauge', 'When the last GC pass completed.', [['', gc.last.at.getTime() / 1000]]);
      family('ferry_ct_gc_last_run_duration_seconds', 'gauge', 'How long the last GC pass took.', [['', gc.last.durationMs / 1000]]);
    }
  }
  return `${lines.join('\n')}\n`;
}
