// Which Services this node answers load balancers' health checks for, and
// what it answers, as kube-proxy decides: every LoadBalancer Service with
// externalTrafficPolicy Local gets an HTTP server on its
// spec.healthCheckNodePort (the API server allocates one for exactly those),
// reporting how many of its endpoints are on this node and ready —
// terminating ones do not count, and an endpoint with several ports counts
// once.
import type { ClusterState } from '../../engine/dataplane/k8s.js';
import { serviceKey } from '../../engine/dataplane/model.js';

export interface HealthCheckTarget {
  namespace: string;
  name: string;
  port: number;
  localEndpoints: number;
}

export interface HealthCheckPlan {
  /** By `namespace/name`. */
  targets: Map<string, HealthCheckTarget>;
  /** `namespace/name` of each Service that needs a health check but has no port for it. */
  missingPort: string[];
}

export function healthCheckPlan(state: Pick<ClusterState, 'services' | 'endpoints'>, nodeName: string): HealthCheckPlan {
  const plan: HealthCheckPlan = { targets: new Map(), missingPort: [] };
  for (const service of state.services) {
    if (service.type !== 'LoadBalancer' || service.externalTrafficPolicy !== 'Local') continue;
    const key = serviceKey(service);
    if (service.healthCheckNodePort === undefined) {
      plan.missingPort.push(key);
      continue;
    }
    const local = (state.endpoints.get(key) ?? []).filter((e) => e.ready && e.nodeName === nodeName);
    plan.targets.set(key, {
      namespace: service.namespace,
      name: service.name,
      port: service.healthCheckNodePort,
      localEndpoints: new Set(local.map((e) => e.addresses[0])).size,
    });
  }
  return plan;
}
