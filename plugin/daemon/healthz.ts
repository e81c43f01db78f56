// kube-proxy's health semantics (pkg/proxy/healthcheck/proxier_health.go):
// the proxy is healthy unless a change has been waiting longer than the
// timeout (2 × syncPeriod) for a successful sync. Starting up, with nothing
// queued yet, counts as healthy. /healthz also fails while this node is
// being deleted (deletionTimestamp, or the cluster autoscaler's
// ToBeDeletedByClusterAutoscaler taint); /livez ignores the node. Bodies are
// kube-proxy's JSON, with RFC 3339 times.
import type http from 'node:http';

export interface ProxyHealthOptions {
  /** How long a queued change may wait for a successful sync. */
  timeoutMs: number;
  /** Milliseconds since the epoch; Date.now by default (tests move it). */
  now?: () => number;
}

export class ProxyHealth {
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #lastUpdated: number | undefined;
  #oldestQueued: number | undefined;

  constructor(options: ProxyHealthOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#now = options.now ?? Date.now;
  }

  /** A change arrived that the maps do not show yet (kube-proxy's QueuedUpdate). */
  queued(): void {
    this.#oldestQueued ??= this.#now();
  }

  /** The maps show every change queued so far (kube-proxy's Updated). */
  updated(): void {
    this.#oldestQueued = undefined;
    this.#lastUpdated = this.#now();
  }

  status(): { healthy: boolean; lastUpdated: Date; currentTime: Date } {
    const now = this.#now();
    const healthy = this.#oldestQueued === undefined || now - this.#oldestQueued < this.#timeoutMs;
    // Healthy: lastUpdated is now, as kube-proxy answers (older releases synced periodically).
    return { healthy, lastUpdated: new Date(healthy ? now : (this.#lastUpdated ?? GO_ZERO_TIME)), currentTime: new Date(now) };
  }
}

/** Go's zero time.Time, which kube-proxy reports when it never synced. */
const GO_ZERO_TIME = Date.parse('0001-01-01T00:00:00Z');

/** The healthz server's handler: /healthz and /livez. */
export function healthzHandler(health: ProxyHealth, nodeEligible: () => boolean): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/livez') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    const { healthy, lastUpdated, currentTime } = health.status();
    const eligible = nodeEligible();
    const ok = path === '/livez' ? healthy : healthy && eligible;
    const body = { lastUpdated: lastUpdated.toISOString(), currentTime: currentTime.toISOString(), ...(path === '/healthz' && { nodeEligible: eligible }) };
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
    res.end(JSON.stringify(body));
  };
}
