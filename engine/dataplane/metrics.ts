// The datapath's counters as people and scrapers read them: ferry_lb_metric
// summed over CPUs, the fill of the hash maps (both families' conntrack
// among them, each map by its role), and the conntrack GC's totals. A snapshot is read from the maps once per
// scrape and set on prom-client metrics (DataplaneMetrics), which the daemon
// registers beside its own and `ferry metrics -o prometheus` prints.
import { Counter, Gauge, Registry } from 'prom-client';
import { backendSlots, type BackendsReader } from './backend-slots.js';
import type { CtGcRun, CtGcTotals, ReadableMap } from './ct-gc.js';
import { LB_EVENTS, LB_METRICS, metricKey, metricValue, type LbMetric, type MapRole, type MapSet } from './layout.js';

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

/** How full one map is. */
export interface MapFill extends ConntrackFill {
  map: MapRole;
}

export interface MetricsSnapshot {
  counters: Record<LbMetric, bigint>;
  /** Both families' conntrack maps (ferry_ct4 and ferry_ct6), summed: ferry_ct_entries. `maps` has each. */
  conntrack: ConntrackFill;
  /**
   * The hash maps' fill, and the backends maps' (arrays: their used slots);
   * other arrays are always full and left out.
   */
  maps?: MapFill[];
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

/** Fills added up: the entries and the capacity of several maps together. */
export function sumFills(fills: readonly ConntrackFill[]): ConntrackFill {
  return { entries: fills.reduce((n, f) => n + f.entries, 0), maxEntries: fills.reduce((n, f) => n + f.maxEntries, 0) };
}

type LiveMap = MetricsMap & ReadableMap & BackendsReader & { type: string; maxEntries: number; keys(): Iterable<Buffer> };

/** Keys counted one syscall each (~2 µs): this many at a time, then the event loop gets a turn. */
const COUNT_CHUNK = 4096;

/**
 * One read of every map the metrics show (the conntrack maps are counted
 * once, for both the fills and ferry_ct_entries). Full maps take a few hundred ms to count; the counting yields
 * so that CNI calls are not held up meanwhile.
 */
export async function readSnapshot(maps: MapSet<LiveMap>, gc?: MetricsSnapshot['gc']): Promise<MetricsSnapshot> {
  const fills: MapFill[] = [];
  for (const [role, map] of Object.entries(maps) as Array<[MapRole, LiveMap]>) {
    // The backends maps' fill is what bounds the backend ids: their used slots (a few batched syscalls).
    if (role === 'backends' || role === 'backends6') {
      fills.push({ map: role, entries: backendSlots(map).length, maxEntries: map.maxEntries });
      continue;
    }
    if (map.type.includes('array')) continue;
    let entries = 0;
    for (const _ of map.keys()) if (++entries % COUNT_CHUNK === 0) await new Promise(setImmediate);
    fills.push({ map: role, entries, maxEntries: map.maxEntries });
  }
  return {
    counters: readCounters(maps.metrics),
    conntrack: sumFills(fills.filter((f) => f.map === 'conntrack' || f.map === 'conntrack6')),
    maps: fills,
    ...(gc !== undefined && { gc }),
  };
}

/** The datapath's prom-client metrics in `registry`; set() puts a snapshot's values there. */
export class DataplaneMetrics {
  readonly #packets: Counter<'outcome'>;
  readonly #events: Counter<'event'>;
  readonly #ctEntries: Gauge;
  readonly #ctMax: Gauge;
  readonly #mapEntries: Gauge<'map'>;
  readonly #mapMax: Gauge<'map'>;
  readonly #gc: ReturnType<typeof gcMetrics> | undefined;

  /** `gc`: also the conntrack GC's metrics (the daemon runs it; the CLI does not). */
  constructor(registry: Registry, options: { gc?: boolean } = {}) {
    const registers = [registry];
    this.#packets = new Counter({ name: 'ferry_lb_packets_total', help: 'Packets seen by the datapath programs, by outcome (each packet counted once).', labelNames: ['outcome'], registers });
    this.#events = new Counter({ name: 'ferry_lb_events_total', help: 'Events in the datapath, counted on top of the packet outcomes.', labelNames: ['event'], registers });
    this.#ctEntries = new Gauge({ name: 'ferry_ct_entries', help: 'Entries in the conntrack maps (IPv4 and IPv6 together; ferry_bpf_map_entries has each).', registers });
    this.#ctMax = new Gauge({ name: 'ferry_ct_max_entries', help: 'Capacity of the conntrack maps (IPv4 and IPv6 together).', registers });
    this.#mapEntries = new Gauge({ name: 'ferry_bpf_map_entries', help: 'Entries in each of the dataplane\'s hash maps (the backends maps: used slots).', labelNames: ['map'], registers });
    this.#mapMax = new Gauge({ name: 'ferry_bpf_map_max_entries', help: 'Capacity (max_entries) of each of the dataplane\'s hash maps and of the backends maps.', labelNames: ['map'], registers });
    this.#gc = options.gc === true ? gcMetrics(registers) : undefined;
  }

  set(snapshot: MetricsSnapshot): void {
    // The kernel keeps the counts: each scrape sets them whole.
    this.#packets.reset();
    this.#events.reset();
    for (const [name, value] of Object.entries(snapshot.counters) as Array<[LbMetric, bigint]>) {
      if (isOutcome(name)) this.#packets.inc({ outcome: name }, Number(value));
      else this.#events.inc({ event: name }, Number(value));
    }
    this.#ctEntries.set(snapshot.conntrack.entries);
    this.#ctMax.set(snapshot.conntrack.maxEntries);
    for (const fill of snapshot.maps ?? []) {
      this.#mapEntries.set({ map: fill.map }, fill.entries);
      this.#mapMax.set({ map: fill.map }, fill.maxEntries);
    }
    const gc = snapshot.gc;
    if (gc === undefined || this.#gc === undefined) return;
    const m = this.#gc;
    setCounter(m.runs, gc.totals.runs);
    setCounter(m.errors, gc.totals.errors);
    m.deleted.reset();
    for (const reason of ['expired', 'orphaned', 'withdrawn'] as const) m.deleted.inc({ reason }, gc.totals[reason]);
    if (gc.last !== undefined) {
      m.lastAt.set(gc.last.at.getTime() / 1000);
      m.lastDuration.set(gc.last.durationMs / 1000);
    }
  }
}

function gcMetrics(registers: Registry[]) {
  return {
    runs: new Counter({ name: 'ferry_ct_gc_runs_total', help: 'Conntrack GC passes completed.', registers }),
    errors: new Counter({ name: 'ferry_ct_gc_errors_total', help: 'Conntrack GC passes that failed.', registers }),
    deleted: new Counter({ name: 'ferry_ct_gc_deleted_total', help: 'Conntrack entries deleted by the GC, by reason.', labelNames: ['reason'] as const, registers }),
    lastAt: new Gauge({ name: 'ferry_ct_gc_last_run_timestamp_seconds', help: 'When the last GC pass completed (0: none yet).', registers }),
    lastDuration: new Gauge({ name: 'ferry_ct_gc_last_run_duration_seconds', help: 'How long the last GC pass took.', registers }),
  };
}

function setCounter(counter: Counter, value: number): void {
  counter.reset();
  counter.inc(value);
}

/** The Prometheus text exposition (format 0.0.4) of a snapshot alone. */
export async function formatPrometheus(snapshot: MetricsSnapshot): Promise<string> {
  const registry = new Registry();
  new DataplaneMetrics(registry, { gc: snapshot.gc !== undefined }).set(snapshot);
  return registry.metrics();
}
