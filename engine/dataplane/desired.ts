// What the load-balancing maps should hold for a set of Services and their
// endpoints, as kube-proxy would program it: one frontend per (IP, port,
// protocol), each with the backends kube-proxy would pick for it. The result
// names backends and frontends by address ("10.0.0.5:8080/tcp"), not by id:
// the Reconciler binds ids, so that this stays a pure function of its input.
//
// Dual stack is kube-proxy's too: a Service is served in the families of
// its cluster IPs (spec.ipFamilies), and a frontend of one family gets the
// endpoints of that family only (the EndpointSlices of its addressType).
import { flat } from './flat-string.js';
import { addressPort, ANY_ADDRESS, familyOf, type Family, type Proto, type Scope } from './layout.js';
import { canonicalIp, serviceKey, type Endpoint, type LoadBalancing, type EndpointsByService, type Service, type ServicePort, type TrafficPolicy } from './model.js';

/**
 * The address NodePort frontends are keyed by when desiredState() is not
 * told the node's addresses: a placeholder no program matches (from_uplink
 * and from_pod look frontends up by the packet's destination); an IPv6
 * Service's is '::'. Give DesiredOptions.nodeAddresses to have NodePorts
 * served.
 */
export const NODE_PORT_ADDRESS = ANY_ADDRESS[4];

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
  /** Backend keys (see backendKey), in a canonical order; all of the frontend's family. */
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
  /**
   * Set by DesiredStates.update(): this is the state it returned last time,
   * changed in place, and these are the frontend and backend keys that may
   * differ since. A Reconciler that applied it last time diffs only them.
   */
  changes?: { frontends: ReadonlySet<string>; backends: ReadonlySet<string> };
}

export interface DesiredOptions {
  /** This node's name, for traffic policy Local. */
  nodeName: string;
  /** Compute NodePort frontends; default true. */
  nodePorts?: boolean;
  /**
   * This node's addresses, IPv4 and IPv6: a NodePort is a frontend at each
   * of them of a family the Service has. Omitted: at NODE_PORT_ADDRESS
   * (IPv6: '::') only, which no packet matches.
   */
  nodeAddresses?: readonly string[];
}

/**
 * `10.0.0.5:8080/tcp`, `fd00::5:8080/tcp` — the identity a backend id is
 * bound to. An IPv6 address is not bracketed: the port follows the last
 * colon, so the key is still one backend's (addressPort() is for people).
 */
export function backendKey(b: BackendAddress): string {
  return flat(`${b.address}:${b.port}/${b.proto}`);
}

/** `10.96.0.10:53/udp`, with `@internal` for the internal scope. */
export function frontendKey(f: { address: string; port: number; proto: Proto; scope: Scope }): string {
  return flat(`${f.address}:${f.port}/${f.proto}${f.scope === 'internal' ? '@internal' : ''}`);
}

/** `10.96.0.10:53/udp`, `fd00::10:53/udp` — the identity a rev-NAT index is bound to (shared by both scopes). */
export function revNatKey(f: { address: string; port: number; proto: Proto }): string {
  return flat(`${f.address}:${f.port}/${f.proto}`);
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
  return new DesiredStates().compute(services, endpointsByService, options);
}

/** One Service's frontends: the external entry, and an internal one beside an external-policy-Local frontend. */
interface FrontendGroup {
  entries: DesiredFrontend[];
  /** frontendKey() of each entry. */
  keys: string[];
  /** The backends it brings: every ready or serving endpoint of the port (see servicePart()). */
  backends: GroupBackends;
}

/** Backend keys and their addresses, at the same index (two arrays: a pair per backend costs more). */
interface GroupBackends {
  keys: string[];
  addresses: BackendAddress[];
}

/** What one Service contributes, before frontends are given to their owners. */
interface ServicePart {
  groups: FrontendGroup[];
  skipped: readonly Skipped[];
}

/** A part's `skipped` when nothing is: one list for all (a daemon keeps a part per Service). */
const NOTHING_SKIPPED: readonly Skipped[] = Object.freeze([]);

const NO_ENDPOINTS: readonly Endpoint[] = Object.freeze([]);

/**
 * desiredState() for a cluster that changes a little at a time (a daemon's
 * syncs): a Service given as the very same objects as last time — the
 * Service and its endpoint list — gets back the same frontend and backend
 * objects without their being computed again, which also lets the
 * Reconciler pass over them as unchanged. The result equals desiredState()'s.
 */
export class DesiredStates {
  /** What each Service gave last time, with the objects it was computed from. */
  readonly #parts = new Map<string, { service: Service; endpoints: readonly Endpoint[]; part: ServicePart }>();
  #options = '';
  /** Service keys in namespace/name order, as last sorted. */
  #order: string[] = [];
  /** The state last returned, and its backends' uses (see Uses); none after a conflict. */
  #last: { state: DesiredState; uses: Uses } | undefined;

  compute(services: Iterable<Service>, endpointsByService: EndpointsByService, options: DesiredOptions): DesiredState {
    const optionsKey = this.#optionsKey(options);
    if (optionsKey !== this.#options) this.#parts.clear();
    this.#options = optionsKey;
    const nodePortAddresses = nodePortAddressesOf(options);
    const state: DesiredState = { frontends: new Map(), backends: new Map(), skipped: [] };
    const partOf = (key: string, service: Service, keep: boolean): ServicePart => {
      const endpoints = endpointsByService.get(key) ?? NO_ENDPOINTS;
      const last = this.#parts.get(key);
      if (last !== undefined && last.service === service && last.endpoints === endpoints) return last.part;
      const part = servicePart(service, endpoints, options, nodePortAddresses);
      if (keep) this.#parts.set(key, { service, endpoints, part });
      return part;
    };

    const list = [...services].map((service) => ({ key: serviceKey(service), service }));
    const byKey = new Map(list.map(({ key, service }) => [key, service]));
    this.#last = undefined;
    if (byKey.size !== list.length) {
      // Two Services of one name (no source sends that): a stable sort, nothing kept.
      this.#parts.clear();
      this.#order = [];
      for (const { key, service } of list.sort((a, b) => compareStrings(a.key, b.key))) addPart(state, key, partOf(key, service, false));
      return state;
    }
    if (this.#order.length !== byKey.size || !this.#order.every((key) => byKey.has(key))) this.#order = [...byKey.keys()].sort(compareStrings);
    for (const key of this.#parts.keys()) if (!byKey.has(key)) this.#parts.delete(key);
    const uses: Uses = new Map();
    let conflicts = false;
    for (const key of this.#order) {
      const part = partOf(key, byKey.get(key)!, true);
      conflicts ||= addPart(state, key, part, uses) < part.groups.length;
    }
    if (!conflicts) this.#last = { state, uses };
    return state;
  }

  /**
   * compute() after a change to the Services `changed` only (by key: the
   * Service now, undefined when it is gone), given the same options and
   * the endpoints of each. Changes the state compute() or update()
   * returned last time in place, noting in its `changes` what may differ;
   * its `skipped` is the changed Services' only. Undefined when that
   * cannot be done (no state to change, other options, a frontend two
   * Services claim): compute() then. Every state returned must be applied
   * before the next update(), as `changes` only tells what changed since.
   */
  update(changed: ReadonlyMap<string, Service | undefined>, endpointsByService: EndpointsByService, options: DesiredOptions): DesiredState | undefined {
    const last = this.#last;
    if (last === undefined || this.#optionsKey(options) !== this.#options) return undefined;
    const nodePortAddresses = nodePortAddressesOf(options);
    const parts = new Map<string, { service: Service; endpoints: readonly Endpoint[]; part: ServicePart } | undefined>();
    const claimed = new Set<string>();
    for (const [key, service] of changed) {
      if (service === undefined) {
        parts.set(key, undefined);
        continue;
      }
      const endpoints = endpointsByService.get(key) ?? NO_ENDPOINTS;
      const part = servicePart(service, endpoints, options, nodePortAddresses);
      for (const group of part.groups) {
        const owner = last.state.frontends.get(group.keys[0]!);
        // Claimed by another Service, changed or not: compute() tells who wins.
        if (claimed.has(group.keys[0]!) || (owner !== undefined && !changed.has(owner.service))) return undefined;
        claimed.add(group.keys[0]!);
      }
      parts.set(key, { service, endpoints, part });
    }
    const { state, uses } = last;
    const frontends = new Set<string>();
    const backends = new Set<string>();
    state.skipped = [];
    // Every changed Service's frontends go before any comes back: one may
    // move from a Service to another changed after it.
    for (const key of parts.keys()) {
      for (const group of this.#parts.get(key)?.part.groups ?? []) {
        for (const k of group.keys) {
          state.frontends.delete(k);
          frontends.add(k);
        }
        for (const b of group.backends.keys) {
          backends.add(b);
          const more = uses.get(b);
          if (more === undefined) state.backends.delete(b);
          else if (more > 1) uses.set(b, more - 1);
          else uses.delete(b);
        }
      }
    }
    for (const [key, next] of parts) {
      if (next === undefined) {
        this.#parts.delete(key);
        continue;
      }
      this.#parts.set(key, next);
      addPart(state, key, next.part, uses);
      for (const group of next.part.groups) {
        for (const k of group.keys) frontends.add(k);
        for (const b of group.backends.keys) backends.add(b);
      }
    }
    state.changes = { frontends, backends };
    return state;
  }

  #optionsKey(options: DesiredOptions): string {
    return JSON.stringify([options.nodeName, options.nodePorts ?? true, options.nodeAddresses ?? null]);
  }
}

/**
 * How many frontend groups use each backend of a state, beyond the first:
 * a backend of the state that is not here is used by one. (Most are: a
 * count for every backend was a map as big as the state's.)
 */
type Uses = Map<string, number>;

/**
 * Gives `part`'s frontends to the Service `key`, or reports those another
 * Service (earlier in order) owns; returns how many frontend groups it got.
 * The backends of those groups are counted in `uses`.
 */
function addPart(state: DesiredState, key: string, part: ServicePart, uses?: Uses): number {
  let added = 0;
  if (part.skipped.length > 0) state.skipped.push(...part.skipped);
  for (const group of part.groups) {
    const owner = state.frontends.get(group.keys[0]!);
    if (owner !== undefined) {
      const first = group.entries[0]!;
      const what = `${first.kind} ${addressPort(first.address, first.port)}/${first.proto}`;
      state.skipped.push({ service: key, what, reason: `already the frontend of ${owner.service}${owner.portName ? ` port ${owner.portName}` : ''}` });
      continue;
    }
    group.entries.forEach((entry, i) => state.frontends.set(group.keys[i]!, entry));
    const { keys, addresses } = group.backends;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (!state.backends.has(k)) state.backends.set(k, addresses[i]!);
      else if (uses !== undefined) uses.set(k, (uses.get(k) ?? 0) + 1);
    }
    added++;
  }
  return added;
}

/** Where NodePorts are served: the node's addresses (canonical, once each), or the placeholders. */
function nodePortAddressesOf(options: DesiredOptions): string[] {
  if (options.nodeAddresses === undefined) return [ANY_ADDRESS[4], ANY_ADDRESS[6]];
  const out = new Set<string>();
  for (const text of options.nodeAddresses) {
    const address = canonicalIp(text);
    if (address !== undefined) out.add(address);
  }
  return [...out];
}

/** A Service's endpoints by family (the addressType of the slices they came from). */
type EndpointsByFamily = Record<Family, readonly Endpoint[]>;

/** `endpoints` split by family; a list of one family is used as it is. */
function byFamily(endpoints: readonly Endpoint[]): EndpointsByFamily {
  let v6 = 0;
  for (const e of endpoints) if (familyOf(e.addresses[0]!) === 6) v6++;
  if (v6 === 0) return { 4: endpoints, 6: NO_ENDPOINTS };
  if (v6 === endpoints.length) return { 4: NO_ENDPOINTS, 6: endpoints };
  return { 4: endpoints.filter((e) => familyOf(e.addresses[0]!) === 4), 6: endpoints.filter((e) => familyOf(e.addresses[0]!) === 6) };
}

/** A set of families as bits: FAMILY_BIT[4] | FAMILY_BIT[6] is both. */
const FAMILY_BIT: Readonly<Record<Family, number>> = { 4: 1, 6: 2 };

/**
 * The families a Service is served in (FAMILY_BIT bits): those of its
 * cluster IPs, as kube-proxy's proxier of each family takes only the
 * Services with a cluster IP of its family. A Service without any (written
 * by hand: the API server gives every one that is not headless) is served
 * in both.
 */
function serviceFamilies(service: Service): number {
  let bits = 0;
  for (const address of service.clusterIPs) bits |= FAMILY_BIT[familyOf(address)];
  return bits === 0 ? FAMILY_BIT[4] | FAMILY_BIT[6] : bits;
}

function servicePart(service: Service, endpoints: readonly Endpoint[], options: DesiredOptions, nodePortAddresses: readonly string[]): ServicePart {
  const name = serviceKey(service);
  const skipped: Skipped[] = [];
  const part: ServicePart = { groups: [], skipped };
  const skip = (what: string, reason: string) => skipped.push({ service: name, what, reason });
  if (service.type === 'ExternalName' || service.headless) {
    skip('the Service', `${service.type === 'ExternalName' ? 'ExternalName' : 'headless'} Services are DNS only`);
    return part;
  }

  const families = serviceFamilies(service);
  const served = (family: Family) => (families & FAMILY_BIT[family]) !== 0;
  const noClusterIP = (family: Family) => `the Service has no IPv${family} cluster IP (spec.ipFamilies)`;
  const eps = byFamily(endpoints);
  for (const family of [4, 6] as const) {
    const list = eps[family];
    if (list.length > 0 && !served(family)) skip(`endpoint${list.length > 1 ? 's' : ''} ${list.map((e) => e.addresses[0]).join(', ')}`, noClusterIP(family));
  }

  const frontendIps: Array<{ address: string; kind: FrontendKind }> = service.clusterIPs.map((address) => ({ address, kind: 'clusterIP' as const }));
  for (const [kind, addresses] of [['externalIP', service.externalIPs], ['loadBalancer', service.loadBalancerIPs]] as const) {
    for (const address of addresses) {
      if (served(familyOf(address))) frontendIps.push({ address, kind });
      else skip(`${kind} ${address}`, noClusterIP(familyOf(address)));
    }
  }
  const nodePorts = (options.nodePorts ?? true) && (service.type === 'NodePort' || service.type === 'LoadBalancer');
  const nodeAddresses = nodePorts ? nodePortAddresses.filter((a) => served(familyOf(a))) : [];

  for (const port of service.ports) {
    const portName = port.name ?? '';
    if (port.protocol === 'SCTP') {
      skip(`port ${portName || port.port}/SCTP`, 'SCTP is not handled yet');
      continue;
    }
    const proto: Proto = port.protocol === 'TCP' ? 'tcp' : 'udp';
    const frontends: Array<{ address: string; port: number; kind: FrontendKind }> = frontendIps.map((f) => ({ ...f, port: port.port }));
    if (port.nodePort !== undefined) {
      for (const address of nodeAddresses) frontends.push({ address, port: port.nodePort, kind: 'nodePort' });
    }
    // Each family's backends, worked out once for its frontends of this port.
    const chosen: Partial<Record<Family, FamilyBackends>> = {};
    const backendsOf = (family: Family) => (chosen[family] ??= familyBackends(service, port, eps[family], proto, options.nodeName));

    const affinityTimeout = service.sessionAffinity === 'ClientIP' ? service.affinityTimeoutSeconds : 0;
    for (const f of frontends) {
      const isExternal = f.kind !== 'clusterIP';
      const policy = isExternal ? service.externalTrafficPolicy : service.internalTrafficPolicy;
      const { cluster, internal, external, serving } = backendsOf(familyOf(f.address));
      // A literal, not a spread base: V8 gives each object built by spreading a shape of its own.
      const entry = (scope: Scope, backends: string[], trafficPolicy: TrafficPolicy): DesiredFrontend => {
        const frontend: DesiredFrontend = { address: f.address, port: f.port, proto, scope, kind: f.kind, service: name, portName, backends, trafficPolicy, affinityTimeout };
        if (service.loadBalancing === 'maglev') frontend.loadBalancing = 'maglev';
        return frontend;
      };
      const first = entry('external', isExternal ? external : internal, policy);
      // kube-proxy sends pods' (and the node's own) traffic for an external
      // destination of an external-policy-Local Service to every endpoint:
      // that is the internal scope, for a datapath that tells the two apart.
      const entries = isExternal && policy === 'Local' ? [first, entry('internal', cluster, 'Cluster')] : [first];
      part.groups.push({ entries, keys: entries.map(frontendKey), backends: serving });
    }
  }
  // Kept as long as the Service is: an array of its own length (see fitted()).
  part.groups = fitted(part.groups);
  if (skipped.length === 0) part.skipped = NOTHING_SKIPPED;
  return part;
}

/**
 * `list` in an array of its own length. One grown by push() has room for
 * 17 elements from its first one on: for the lists a daemon keeps per
 * Service, of one or ten elements, that room was megabytes at 10k Services.
 */
function fitted<T>(list: T[]): T[] {
  return list.length === 0 ? list : list.slice();
}

/** One family's backends of one Service port, as each traffic policy picks them. */
interface FamilyBackends {
  cluster: string[];
  internal: string[];
  external: string[];
  /** Every ready or serving endpoint: the backends a frontend group brings. */
  serving: GroupBackends;
}

function familyBackends(service: Service, port: ServicePort, endpoints: readonly Endpoint[], proto: Proto, nodeName: string): FamilyBackends {
  const backends = portBackends(port, endpoints, proto);
  const choose = (policy: TrafficPolicy) => chooseBackends(backends, policy, nodeName);
  const cluster = choose('Cluster');
  const internal = service.internalTrafficPolicy === 'Local' ? choose('Local') : cluster;
  const external = service.externalTrafficPolicy === 'Local' ? choose('Local') : cluster;
  // Every backend chosen above is ready or serving; the serving ones not
  // chosen (terminating) stay backends for the flows already pinned to them.
  const kept = backends.candidates.filter((c) => c.endpoint.ready || c.endpoint.serving);
  // Usually every endpoint is ready: then the keys are the cluster backends' (one list for both).
  const keys = kept.length === cluster.length && cluster.every((k, i) => kept[i]!.key === k) ? cluster : kept.map((c) => c.key);
  const serving: GroupBackends = { keys, addresses: kept.map((c) => c.address) };
  return { cluster, internal, external, serving };
}

interface Candidate {
  key: string;
  address: BackendAddress;
  endpoint: Endpoint;
  /** For the canonical order: an IPv4 address as a number, an IPv6 one as fixed-width hex. */
  order: number | string;
}

interface PortBackends {
  candidates: Candidate[];
}

/**
 * Each endpoint with the port it serves `port` on, in canonical order, one
 * per address:port (a later duplicate, e.g. from two slices, is dropped).
 */
function portBackends(port: ServicePort, endpoints: readonly Endpoint[], proto: Proto): PortBackends {
  const all: Candidate[] = [];
  for (const endpoint of endpoints) {
    const target = targetPort(port, endpoint);
    if (target === undefined) continue;
    const address = { address: endpoint.addresses[0]!, port: target, proto };
    all.push({ key: backendKey(address), address, endpoint, order: addressOrder(address.address) });
  }
  // Sorted (a stable sort), one address:port's candidates are next to each
  // other in the order given: the first is kept. (No Map per port: a
  // daemon's first sync made 10k of them, all garbage.)
  all.sort((a, b) => compareOrder(a.order, b.order) || a.address.port - b.address.port);
  const candidates = all.filter((c, i) => i === 0 || c.key !== all[i - 1]!.key);
  return { candidates };
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
  // Loops, not filter(): this runs for every endpoint of every port.
  for (const p of endpoint.ports) if (p.protocol === port.protocol && (p.name ?? '') === name) return p.port;
  if (typeof port.targetPort === 'number') return port.targetPort;
  for (const p of endpoint.ports) if (p.protocol === port.protocol && p.name === port.targetPort) return p.port;
  return undefined;
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

/**
 * A canonical address (model.ts) as something that sorts like the address:
 * IPv4 as a number, IPv6 as its 32 hex digits (one string compare, no
 * parse). Every IPv4 address sorts before every IPv6 one.
 */
export function addressOrder(address: string): number | string {
  if (!address.includes(':')) {
    // Digit by digit: no split() (this runs for every endpoint of every port).
    let n = 0;
    let part = 0;
    for (let i = 0; i < address.length; i++) {
      const c = address.charCodeAt(i);
      if (c === 0x2e) {
        n = n * 256 + part;
        part = 0;
      } else part = part * 10 + (c - 0x30);
    }
    return n * 256 + part;
  }
  const expand = (groups: string) => (groups === '' ? [] : groups.split(':'));
  const cut = address.indexOf('::');
  let head = expand(cut < 0 ? address : address.slice(0, cut));
  let tail = cut < 0 ? [] : expand(address.slice(cut + 2));
  // An IPv4 tail (::ffff:10.0.0.1) as the two groups it is.
  const last = (tail.length > 0 ? tail : head).at(-1) ?? '';
  if (last.includes('.')) {
    const n = Number(addressOrder(last));
    const groups = [(n >>> 16).toString(16), (n & 0xffff).toString(16)];
    if (tail.length > 0) tail = [...tail.slice(0, -1), ...groups];
    else head = [...head.slice(0, -1), ...groups];
  }
  const zeros = new Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0');
  return [...head, ...zeros, ...tail].map((g) => g.padStart(4, '0')).join('');
}

/** Numbers before strings (IPv4 before IPv6), each in its own order. */
export function compareOrder(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
