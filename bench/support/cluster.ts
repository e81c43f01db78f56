// Synthetic clusters for the scale benches: N ClusterIP Services of one TCP
// port each (80 → 8080, port name "http"), each with K endpoints, in the
// three forms the benches feed: ferry's model (for desiredState and the
// Reconciler), Kubernetes objects (for the daemon's file and API sources),
// and kube-proxy's view (for the iptables ruleset). Addresses are taken in
// order from ranges nothing else in the benches uses: ClusterIPs from
// 10.100.0.0/14, endpoints from 10.128.0.0/9 (never contacted: no traffic
// goes to filler Services).
import type { Endpoint, Service } from '../../engine/dataplane/model.js';
import type { KubeService } from '../dataplane/kube-proxy.js';

export const SERVICE_PORT = 80;
export const TARGET_PORT = 8080;
const PORT_NAME = 'http';
export const NAMESPACE = 'bench';
/** kube-proxy's --cluster-cidr for the iptables rules. */
export const CLUSTER_CIDR = '10.244.0.0/16';

const CLUSTER_IP_BASE = ipv4ToInt('10.100.0.0');
const CLUSTER_IP_SPAN = 1 << 18;
const ENDPOINT_BASE = ipv4ToInt('10.128.0.0');
const ENDPOINT_SPAN = 1 << 23;

export interface BenchService {
  name: string;
  clusterIp: string;
  /** Endpoint addresses; each serves TARGET_PORT. */
  endpoints: string[];
}

export function ipv4ToInt(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function intToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * `count` filler Services with `endpoints` endpoints each, named svc-0…;
 * Service i's endpoints are the i-th run of addresses, so none is shared.
 */
export function fillerServices(count: number, endpoints: number): BenchService[] {
  if (count >= CLUSTER_IP_SPAN - 1) throw new RangeError(`at most ${CLUSTER_IP_SPAN - 2} filler Services`);
  if (count * endpoints >= ENDPOINT_SPAN - 1) throw new RangeError(`at most ${ENDPOINT_SPAN - 2} filler endpoints`);
  const out: BenchService[] = [];
  for (let i = 0; i < count; i++) {
    const eps: string[] = [];
    for (let k = 0; k < endpoints; k++) eps.push(intToIpv4(ENDPOINT_BASE + 1 + i * endpoints + k));
    out.push({ name: `svc-${i}`, clusterIp: intToIpv4(CLUSTER_IP_BASE + 1 + i), endpoints: eps });
  }
  return out;
}

/** `s` with its last endpoint replaced by `address` (a pod restarted elsewhere). */
export function replaceLastEndpoint(s: BenchService, address: string): BenchService {
  return { ...s, endpoints: [...s.endpoints.slice(0, -1), address] };
}

/** A model Service as parseService() would return it (built directly: 100k zod parses are slow setup). */
function modelService(s: BenchService): Service {
  return {
    namespace: NAMESPACE,
    name: s.name,
    type: 'ClusterIP',
    clusterIPs: [s.clusterIp],
    externalIPs: [],
    loadBalancerIPs: [],
    ports: [{ name: PORT_NAME, protocol: 'TCP', port: SERVICE_PORT, targetPort: TARGET_PORT }],
    sessionAffinity: 'None',
    affinityTimeoutSeconds: 10_800,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    headless: false,
  };
}

/** Model endpoints as parseEndpoints() would return them for one slice. */
export function modelEndpoints(addresses: readonly string[]): Endpoint[] {
  return addresses.map((a) => ({
    addresses: [a],
    ports: [{ name: PORT_NAME, port: TARGET_PORT, protocol: 'TCP' }],
    ready: true,
    serving: true,
    terminating: false,
  }));
}

/** desiredState()'s inputs for `services`. */
export function modelCluster(services: readonly BenchService[]): { services: Service[]; endpoints: Map<string, Endpoint[]> } {
  return {
    services: services.map(modelService),
    endpoints: new Map(services.map((s) => [`${NAMESPACE}/${s.name}`, modelEndpoints(s.endpoints)])),
  };
}

/** The v1 Service object, as the API server stores it. */
export function serviceObject(s: BenchService): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: NAMESPACE },
    spec: {
      type: 'ClusterIP',
      clusterIP: s.clusterIp,
      clusterIPs: [s.clusterIp],
      ports: [{ name: PORT_NAME, protocol: 'TCP', port: SERVICE_PORT, targetPort: TARGET_PORT }],
    },
  };
}

/** The Service's one discovery.k8s.io/v1 EndpointSlice with `addresses`. */
export function sliceObject(s: BenchService, addresses: readonly string[] = s.endpoints): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${s.name}-a`, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': s.name } },
    addressType: 'IPv4',
    ports: [{ name: PORT_NAME, port: TARGET_PORT, protocol: 'TCP' }],
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  };
}

/** The Service as kube-proxy's iptables rules see it. */
export function kubeService(s: BenchService, endpoints: readonly string[] = s.endpoints): KubeService {
  return {
    namespace: NAMESPACE,
    name: s.name,
    portName: PORT_NAME,
    clusterIp: s.clusterIp,
    port: SERVICE_PORT,
    protocol: 'tcp',
    endpoints: endpoints.map((a) => `${a}:${TARGET_PORT}`),
    clusterCidr: CLUSTER_CIDR,
  };
}
