// What the load-balancing maps should hold for a set of Services and their
// endpoints, as kube-proxy would program it: one frontend per (IP, port,
// protocol), each with the backends kube-proxy would pick for it. The result
// names backends and frontends by address ("10.0.0.5:8080/tcp"), not by id:
// the Reconciler binds ids, so that this stays a pure function of its input.
import type { Proto, Scope } from './layout.js';
import { isIPv4, serviceKey, type Endpoint, type LoadBalancing, type EndpointsByService, type Service, type ServicePort, type TrafficPolicy } from './model.js';

/**
 * The address NodePort frontends are keyed by when desiredState() is not
 * told the node's addresses: a placeholder no program matches (from_uplink
 * and from_pod look frontends up by the packet's destination). Give
 * DesiredOptions.nodeAddresses to have NodePorts served.
 */
export const NODE_PORT_ADDRESS = '0.0.0.0';

export type FrontendKind = 'clusterIP' | 'externalIP' | 'loadBalancer' | 'nodePort';

export interface BackendAddress {
  address: string;
  port: number;
  proto: Proto;
}

export interface DesiredFrontend {
  address: string;
  port: number;
  proto: Proto;
  /**
   * 'external' is the entry every lookup finds first. 'internal' exists only
   * beside an external-policy-Local frontend: the backends for traffic from
   * inside the cluster, which kube-proxy sends to every endpoint.
   */
  scope: Scope;
  kind: FrontendKind;
  /** `namespace/name` of the Service. */
  service: string;
  /** The Service port's name ('' for an unnamed one). */
  portName: string;
  /** Backend keys (see backendKey), in a canonical order. */
  backends: string[];
  /** Local: the backends are this node's endpoints only. */
  trafficPolicy: TrafficPolicy;
  /** Seconds of ClientIP affinity; 0 without. */
  affinityTimeout: number;
  /** 'maglev': new flows pick their backend from a Maglev table; absent: at random. */
  loadBalancing?: LoadBalancing;
}

export interface Skipped {
  /** `namespace/name` */
  service: string;
  /** What was left out: `port dns/SCTP`, `clusterIP fd00::10`, `endpoint fd00::5`, `the Service`. */
  what: string;
  reason: string;
}

export interface DesiredState {
  /** By frontendKey(). */
  frontends: Map<string, DesiredFrontend>;
  /**
   * Every backend some frontend uses, by backendKey(), and every other
   * serving endpoint of a programmed port (a terminating pod while ready
   * ones are left): new flows never pick those, but flows already pinned to
   * them keep them, as kube-proxy's conntrack keeps a terminating pod's
   * connections until the pod is gone.
   */
  backends: Map<string, BackendAddress>;
  /** What the maps cannot express (yet), with the reason. */
  skipped: Skipped[];
}

export interface DesiredOptions {
  /** This node's name, for traffic policy Local. */
  nodeName: string;
  /** Compute NodePort frontends; default true. */
  nodePorts?: boolean;
  /**
   * This node's IPv4 addresses: a NodePort is a frontend at each of them
   * (IPv6 ones are left out, as IPv6 is not handled yet). Omitted: at
   * NODE_PORT_ADDRESS only, which no packet matches.
   */
  nodeAddresses?: readonly string[];
}

/** `10.0.0.5:8080/tcp` — the identity a backend id is bound to. */
export function backendKey(b: BackendAddress): string {
  return `${b.address}:${b.port}/${b.proto}`;
}

/** `10.96.0.10:53/udp`, with `@internal` for the internal scope. */
export function frontendKey(f: { address: string; port: number; proto: Proto; scope: Scope }): string {
  return `${f.address}:${f.port}/${f.proto}${f.scope === 'internal' ? '@internal' : ''}`;
}

/** `10.96.0.10:53/udp` — the identity a rev-NAT index is bound to (shared by both scopes). */
export function revNatKey(f: { address: string; port: number; proto: Proto }): string {
  return `${f.address}:${f.port}/${f.proto}`;
}

/**
 * The frontends and backends for `services`. Services are taken in
 * namespace/name order, so when two claim one frontend the winner does not
 * depend on the input's order; the loser's frontend is reported in `skipped`.
 */
export function desiredState(
  services: Iterable<Service>,
  endpointsByService: EndpointsByService,
  options: DesiredOptions,
): DesiredState {
  const state: DesiredState = { frontends: new Map(), backends: new Map(), skipped: [] };
  const sorted = [...services].sort((a, b) => compareStrings(serviceKey(a), serviceKey(b)));
  const nodePortAddresses = options.nodeAddresses === undefined ? [NODE_PORT_ADDRESS] : [...new Set(options.nodeAddresses.filter(isIPv4))];
  for (const service of sorted) addService(state, service, endpointsByService.get(serviceKey(service)) ?? [], options, nodePortAddresses);
  return state;
}

function addService(
  state: DesiredState,
  service: Service,
  endpoints: readonly Endpoint[],
  options: DesiredOptions,
  nodePortAddresses: readonly string[],
): void {
  const name = serviceKey(service);
  const skip = (what: string, reason: string) => state.skipped.push({ service: name, what, reason });
  if (service.type === 'ExternalName' || service.headless) {
    skip('the Service', `${service.type === 'ExternalName' ? 'ExternalName' : 'headless'} Services are DNS only`);
    return;
  }

  const v6 = endpoints.filter((e) => !isIPv4(e.addresses[0]!));
  if (v6.length > 0) skip(`endpoint${v6.length > 1 ? 's' : ''} ${v6.map((e) => e.addresses[0]).join(', ')}`, 'IPv6 is not handled yet');
  const v4 = endpoints.filter((e) => isIPv4(e.addresses[0]!));

  const frontendIps: Array<{ address: string; kind: FrontendKind }> = [
    ...service.clusterIPs.map((address) => ({ address, kind: 'clusterIP' as const })),
    ...service.externalIPs.map((address) => ({ address, kind: 'externalIP' as const })),
    ...service.loadBalancerIPs.map((address) => ({ address, kind: 'loadBalancer' as const })),
  ];
  for (const { address, kind } of frontendIps) {
    if (!isIPv4(address)) skip(`${kind} ${address}`, 'IPv6 is not handled yet');
  }
  const v4Frontends = frontendIps.filter((f) => isIPv4(f.address));
  const nodePorts = (options.nodePorts ?? true) && (service.type === 'NodePort' || service.type === 'LoadBalancer');

  for (const port of service.ports) {
    const portName = port.name ?? '';
    if (port.protocol === 'SCTP') {
      skip(`port ${portName || port.port}/SCTP`, 'SCTP is not handled yet');
      continue;
    }
    const proto: Proto = port.protocol === 'TCP' ? 'tcp' : 'udp';
    const backends = portBackends(port, v4, proto);
    const choose = (policy: TrafficPolicy) => chooseBackends(backends, policy, options.nodeName);
    const cluster = choose('Cluster');
    const internal = service.internalTrafficPolicy === 'Local' ? choose('Local') : cluster;
    const external = service.externalTrafficPolicy === 'Local' ? choose('Local') : cluster;

    const frontends: Array<{ address: string; port: number; kind: FrontendKind }> = v4Frontends.map((f) => ({ ...f, port: port.port }));
    if (nodePorts && port.nodePort !== undefined) {
      for (const address of nodePortAddresses) frontends.push({ address, port: port.nodePort, kind: 'nodePort' });
    }

    const affinityTimeout = service.sessionAffinity === 'ClientIP' ? service.affinityTimeoutSeconds : 0;
    for (const f of frontends) {
      const isExternal = f.kind !== 'clusterIP';
      const policy = isExternal ? service.externalTrafficPolicy : service.internalTrafficPolicy;
      const base = {
        address: f.address,
        port: f.port,
        proto,
        kind: f.kind,
        service: name,
        portName,
        affinityTimeout,
        ...(service.loadBalancing === 'maglev' && { loadBalancing: 'maglev' as const }),
      };
      const entries: DesiredFrontend[] = [
        { ...base, scope: 'external', backends: isExternal ? external : internal, trafficPolicy: policy },
      ];
      // kube-proxy sends pods' (and the node's own) traffic for an external
      // destination of an external-policy-Local Service to every endpoint:
      // that is the internal scope, for a datapath that tells the two apart.
      if (isExternal && policy === 'Local') entries.push({ ...base, scope: 'internal', backends: cluster, trafficPolicy: 'Cluster' });

      const owner = state.frontends.get(frontendKey(entries[0]!));
      if (owner !== undefined) {
        skip(`${f.kind} ${revNatKey({ ...f, proto })}`, `already the frontend of ${owner.service}${owner.portName ? ` port ${owner.portName}` : ''}`);
        continue;
      }
      for (const entry of entries) state.frontends.set(frontendKey(entry), entry);
      // Every backend chosen above is ready or serving.
      for (const c of backends.candidates) {
        if ((c.endpoint.ready || c.endpoint.serving) && !state.backends.has(c.key)) state.backends.set(c.key, c.address);
      }
    }
  }
}

interface Candidate {
  key: string;
  address: BackendAddress;
  endpoint: Endpoint;
  /** For the canonical order: the IPv4 address as a number. */
  order: number;
}

interface PortBackends {
  candidates: Candidate[];
  byKey: Map<string, Candidate>;
}

/**
 * Each endpoint with the port it serves `port` on, in canonical order, one
 * per address:port (a later duplicate, e.g. from two slices, is dropped).
 */
function portBackends(port: ServicePort, endpoints: readonly Endpoint[], proto: Proto): PortBackends {
  const byKey = new Map<string, Candidate>();
  for (const endpoint of endpoints) {
    const target = targetPort(port, endpoint);
    if (target === undefined) continue;
    const address = { address: endpoint.addresses[0]!, port: target, proto };
    const key = backendKey(address);
    if (!byKey.has(key)) byKey.set(key, { key, address, endpoint, order: ipv4Number(address.address) });
  }
  const candidates = [...byKey.values()].sort((a, b) => a.order - b.order || a.address.port - b.address.port);
  return { candidates, byKey };
}

/**
 * The port `endpoint` serves the Service port on. As in an EndpointSlice, an
 * endpoint port named like the Service port carries the resolved target
 * port; otherwise a named targetPort is looked up among the endpoint's ports
 * (named like the pod's container ports) and a numeric one is used as it is.
 * Undefined when a named targetPort is not on the endpoint: not a backend.
 */
function targetPort(port: ServicePort, endpoint: Endpoint): number | undefined {
  const name = port.name ?? '';
  const sameProtocol = endpoint.ports.filter((p) => p.protocol === port.protocol);
  const bySlice = sameProtocol.find((p) => (p.name ?? '') === name);
  if (bySlice !== undefined) return bySlice.port;
  if (typeof port.targetPort === 'number') return port.targetPort;
  return sameProtocol.find((p) => p.name === port.targetPort)?.port;
}

/**
 * kube-proxy's choice (CategorizeEndpoints): the ready endpoints; when there
 * are none, the ones that are serving while terminating. Policy Local keeps
 * only this node's endpoints, and falls back the same way among them.
 */
function chooseBackends(backends: PortBackends, policy: TrafficPolicy, nodeName: string): string[] {
  const eligible = policy === 'Local' ? backends.candidates.filter((c) => c.endpoint.nodeName === nodeName) : backends.candidates;
  const ready = eligible.filter((c) => c.endpoint.ready);
  const chosen = ready.length > 0 ? ready : eligible.filter((c) => c.endpoint.serving && c.endpoint.terminating);
  return chosen.map((c) => c.key);
}

function ipv4Number(address: string): number {
  let n = 0;
  for (const part of address.split('.')) n = n * 256 + Number(part);
  return n;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
