// The daemon's Prometheus metrics (prom-client): its syncs (a latency
// histogram, what the last one programmed, map writes, failures and refused
// objects), the datapath's counters and map fill read from the pinned maps
// at each scrape (engine/dataplane/metrics.ts), and Node.js's process
// metrics. Served on the metrics bind address (kube-proxy's 127.0.0.1:10249).
import type http from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataplaneMetrics, type MetricsSnapshot } from '../../engine/dataplane/metrics.js';
import type { SyncReport } from './services.js';

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #read: () => Promise<MetricsSnapshot>;
  readonly #dataplane = new DataplaneMetrics(this.registry, { gc: true });
  readonly #registers = [this.registry];
  // kube-proxy's sync_proxy_rules_duration_seconds buckets: 1 ms doubling to 16 s.
  readonly #duration = new Histogram({ name: 'ferry_sync_duration_seconds', help: 'How long a sync (read, convert, reconcile the maps) took.', buckets: Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i), registers: this.#registers });
  readonly #last = new Gauge({ name: 'ferry_sync_last_timestamp_seconds', help: 'When the last successful sync ended.', registers: this.#registers });
  readonly #errors = new Counter({ name: 'ferry_sync_errors_total', help: 'Syncs that failed (the next change or resync tries again).', registers: this.#registers });
  readonly #refused = new Gauge({ name: 'ferry_sync_refused_objects', help: 'Objects the last sync left out as invalid, and manifest files that did not parse.', registers: this.#registers });
  readonly #services = new Gauge({ name: 'ferry_services_programmed', help: 'Services the last sync programmed.', registers: this.#registers });
  readonly #frontends = new Gauge({ name: 'ferry_frontends_programmed', help: 'Frontends (IP, port, protocol, scope) the last sync programmed.', registers: this.#registers });
  readonly #endpoints = new Gauge({ name: 'ferry_endpoints_programmed', help: 'Backends (endpoint IP, port, protocol) the last sync programmed.', registers: this.#registers });
  readonly #writes = new Counter({ name: 'ferry_sync_map_writes_total', help: 'Entries syncs wrote to the load-balancing maps, by map and operation.', labelNames: ['map', 'op'] as const, registers: this.#registers });

  /** `read`: one snapshot of the maps, taken at each scrape. */
  constructor(read: () => Promise<MetricsSnapshot>) {
    this.#read = read;
    collectDefaultMetrics({ register: this.registry });
  }

  observeSync(report: SyncReport, at = Date.now()): void {
    this.#duration.observe(report.ms / 1000);
    this.#last.set(at / 1000);
    this.#refused.set(report.problems);
    this.#services.set(report.services);
    this.#frontends.set(report.frontends);
    this.#endpoints.set(report.backends);
    for (const [map, counts] of Object.entries(report.writes)) {
      for (const op of ['added', 'updated', 'removed'] as const) if (counts[op] > 0) this.#writes.inc({ map, op }, counts[op]);
    }
  }

  syncFailed(): void {
    this.#errors.inc();
  }

  /** The metrics server's handler: /metrics. */
  handler(): http.RequestListener {
    return (req, res) => {
      if ((req.url ?? '/').split('?')[0] !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      this.#read()
        .then((snapshot) => {
          this.#dataplane.set(snapshot);
          return this.registry.metrics();
        })
        .then(
          (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
          (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`reading the dataplane's metrics failed: ${e.message}\n`),
        );
    };
  }
}
