// What the kube-proxy replacement shows of itself, wired to its syncs:
// /healthz and /livez (healthz.ts) on the healthz bind address, /metrics
// (metrics.ts) on the metrics bind address, and the health check node port
// servers (service-health.ts). An empty address turns that server off.
import type { Logger } from 'pino';
import type { MetricsSnapshot } from '../../engine/dataplane/metrics.js';
import { parseListenAddress } from './config.js';
import { healthCheckPlan } from './health-checks.js';
import { healthzHandler, ProxyHealth } from './healthz.js';
import { listenHttp, type HttpListener } from './http.js';
import { DaemonMetrics } from './metrics.js';
import { ServiceHealthServers } from './service-health.js';
import type { SyncHooks } from './services.js';

export interface ProxyStatusOptions {
  /** HOST:PORT of /healthz and /livez; undefined: not served. */
  healthzBindAddress?: string | undefined;
  /** HOST:PORT of /metrics; undefined: not served. */
  metricsBindAddress?: string | undefined;
  /** Healthz fails when a change waited 2 × this for a sync (kube-proxy's rule). */
  syncPeriodMs: number;
  nodeName: string;
  readMetrics: () => Promise<MetricsSnapshot>;
  /** False while this node is being deleted. */
  nodeEligible: () => boolean;
  /** Where health check node ports listen. */
  healthCheckHosts: () => readonly string[];
  log: Logger;
}

export interface ProxyStatus {
  /** For ServiceSync. */
  hooks: SyncHooks;
  close(): Promise<void>;
}

export async function startProxyStatus(o: ProxyStatusOptions): Promise<ProxyStatus> {
  const { log } = o;
  const health = new ProxyHealth({ timeoutMs: 2 * o.syncPeriodMs });
  const metrics = new DaemonMetrics(o.readMetrics);
  const serviceHealth = new ServiceHealthServers({ hosts: o.healthCheckHosts, proxyHealthy: () => health.status().healthy, log });
  const listeners: HttpListener[] = [];
  const close = async () => {
    await Promise.all([...listeners.splice(0).map((l) => l.close()), serviceHealth.close()]);
  };
  try {
    for (const [what, address, handler] of [
      ['healthz', o.healthzBindAddress, healthzHandler(health, o.nodeEligible)],
      ['metrics', o.metricsBindAddress, metrics.handler()],
    ] as const) {
      if (address === undefined) continue;
      const { host, port } = parseListenAddress(address);
      const listener = await listenHttp(`${what} server`, host, port, handler);
      listeners.push(listener);
      log.info({ address, port: listener.port }, `serving ${what === 'healthz' ? '/healthz and /livez' : '/metrics'} on ${address}`);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return {
    close,
    hooks: {
      queued: () => health.queued(),
      synced: (report, state) => {
        health.updated();
        metrics.observeSync(report);
        const plan = healthCheckPlan(state, o.nodeName);
        for (const key of plan.missingPort) log.error({ service: key }, `Service ${key} is LoadBalancer with externalTrafficPolicy Local but has no spec.healthCheckNodePort: no health check served`);
        void serviceHealth.update(plan.targets);
      },
      failed: () => metrics.syncFailed(),
    },
  };
}
