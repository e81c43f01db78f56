// The health check node port servers (kube-proxy's service health server,
// pkg/proxy/healthcheck/service_health.go): one HTTP server per Service
// that needs one, opened when the Service appears, closed when it goes or
// its port changes, and answering from the counts of the latest sync:
// 200 while the Service has local endpoints and the proxy is healthy, 503
// otherwise, with kube-proxy's JSON body. A port that cannot be opened is
// logged and tried again at the next sync.
import type http from 'node:http';
import type { Logger } from 'pino';
import type { HealthCheckTarget } from './health-checks.js';
import { listenHttp, type HttpListener } from './http.js';

export interface ServiceHealthOptions {
  /** Addresses to listen on (kube-proxy: the node IPs nodePortAddresses selects, or 0.0.0.0). */
  hosts: () => readonly string[];
  /** The proxy's own health: a health check fails while the proxy is unhealthy. */
  proxyHealthy: () => boolean;
  log: Logger;
}

interface Open {
  target: HealthCheckTarget;
  listeners: HttpListener[];
}

export class ServiceHealthServers {
  readonly #o: ServiceHealthOptions;
  readonly #open = new Map<string, Open>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: ServiceHealthOptions) {
    this.#o = options;
  }

  /** The Services served now, with the counts they answer. */
  get served(): HealthCheckTarget[] {
    return [...this.#open.values()].map((o) => ({ ...o.target }));
  }

  /** Makes the open servers those of `targets` (by `namespace/name`); updates run one after another. */
  update(targets: ReadonlyMap<string, HealthCheckTarget>): Promise<void> {
    this.#queue = this.#queue.then(() => this.#update(targets));
    return this.#queue;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    await Promise.all([...this.#open.values()].map((o) => closeAll(o.listeners)));
    this.#open.clear();
  }

  async #update(targets: ReadonlyMap<string, HealthCheckTarget>): Promise<void> {
    if (this.#closed) return;
    for (const [key, open] of this.#open) {
      const next = targets.get(key);
      if (next !== undefined && next.port === open.target.port) continue;
      this.#open.delete(key);
      await closeAll(open.listeners);
      this.#o.log.info({ service: key, port: open.target.port }, `health check node port ${open.target.port} of Service ${key} closed`);
    }
    for (const [key, target] of targets) {
      const open = this.#open.get(key);
      if (open !== undefined) {
        open.target = target;
        continue;
      }
      try {
        const listeners = await this.#listen(key, target);
        this.#open.set(key, { target, listeners });
        this.#o.log.info({ service: key, port: target.port, localEndpoints: target.localEndpoints }, `health check node port ${target.port} of Service ${key} opened`);
      } catch (e) {
        this.#o.log.error({ service: key, port: target.port, err: e }, `health check node port of Service ${key}: ${(e as Error).message}; trying again at the next sync`);
      }
    }
  }

  async #listen(key: string, target: HealthCheckTarget): Promise<HttpListener[]> {
    const hosts = this.#o.hosts();
    if (hosts.length === 0) throw new Error('no address to listen on: no node address is in nodePortAddresses');
    const listeners: HttpListener[] = [];
    try {
      for (const host of hosts) listeners.push(await listenHttp(`health check of Service ${key}`, host, target.port, this.#handler(key)));
      return listeners;
    } catch (e) {
      await closeAll(listeners);
      throw e;
    }
  }

  #handler(key: string): http.RequestListener {
    return (_req, res) => {
      const target = this.#open.get(key)?.target;
      if (target === undefined) return void res.writeHead(503).end(); // closing
      const proxyHealthy = this.#o.proxyHealthy();
      const count = target.localEndpoints;
      res.writeHead(count > 0 && proxyHealthy ? 200 : 503, {
        'content-type': 'application/json',
        'x-content-type-options': 'nosniff',
        'x-load-balancing-endpoint-weight': String(count),
      });
      res.end(JSON.stringify({ service: { namespace: target.namespace, name: target.name }, localEndpoints: count, serviceProxyHealthy: proxyHealthy }));
    };
  }
}

function closeAll(listeners: readonly HttpListener[]): Promise<unknown> {
  return Promise.all(listeners.map((l) => l.close()));
}
