// Reading the dataplane's pinned maps back as plain data: services with
// their backend slots, backends with the frontends that use them, the
// reverse-NAT table, conntrack entries (listed and flushed by filter) and
// the counters. Everything returned is JSON-ready; engine/cli/ renders it.
// Nothing here writes to a map except flushConntrack().
import { isIPv4 } from 'node:net';
import { conntrackEntries, type ConntrackMap, type ReadableMap } from './ct-gc.js';
import {
  backendId as backendIdCodec,
  CT_FLAGS,
  CT_STATE,
  ct4Key,
  ctEntry,
  ctStale,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  revNatIndex as revNatIndexCodec,
  type CtDir,
  type CtFlag,
  type CtProto,
  type CtStateName,
  type Lb4Backend,
  type Proto,
  type Scope,
} from './layout.js';

export type { MapRole } from './layout.js';
export { DataplaneLayoutError, DataplaneNotFoundError, openPinnedMaps, type PinnedMaps } from './pinned-maps.js';
import { conntrackFill, readCounters, type ConntrackFill, type MetricsMap } from './metrics.js';

// --- the pinned maps -------------------------------------------------------------

export interface InspectMaps {
  services: ReadableMap;
  backends: ReadableMap;
  revNat: ReadableMap;
  conntrack: ConntrackMap;
  metrics: MetricsMap;
}

// --- services --------------------------------------------------------------------

export interface SlotView {
  slot: number;
  /** null: the slot is missing (count says it should exist). */
  backendId: number | null;
  /** `10.0.0.5:8080`, or null when the backend is missing. */
  backend: string | null;
  /** What is wrong with this slot, if anything. */
  problem?: string;
}

export interface ServiceView {
  /** `10.96.0.10:80/tcp`, with `@internal` for the internal scope. */
  frontend: string;
  address: string;
  port: number;
  proto: Proto;
  scope: Scope;
  /** Slot 0's backend count; null when slot 0 is missing. */
  count: number | null;
  revNatIndex: number | null;
  /** `10.96.0.10:80` as the rev-NAT entry says, null when missing. */
  revNat: string | null;
  affinityTimeout: number;
  slots: SlotView[];
  /** Problems of the frontend as a whole. */
  problems: string[];
}

const hostPort = (a: { address: string; port: number }) => `${a.address}:${a.port}`;
const frontendName = (k: { address: string; port: number; proto: Proto; scope: Scope }) =>
  `${k.address}:${k.port}/${k.proto}${k.scope === 'internal' ? '@internal' : ''}`;

function readBackends(map: ReadableMap): Map<number, Lb4Backend> {
  const out = new Map<number, Lb4Backend>();
  for (const [k, v] of map.entries()) out.set(backendIdCodec.decode(k), lb4Backend.decode(v));
  return out;
}

function readRevNat(map: ReadableMap): Map<number, { address: string; port: number }> {
  const out = new Map<number, { address: string; port: number }>();
  for (const [k, v] of map.entries()) out.set(revNatIndexCodec.decode(k), lb4ReverseNat.decode(v));
  return out;
}

/** Compares addresses numerically, then ports, protocols and scopes: a stable listing order. */
function compareFrontends(a: ServiceView, b: ServiceView): number {
  return ipv4Number(a.address) - ipv4Number(b.address) || a.port - b.port || a.proto.localeCompare(b.proto) || a.scope.localeCompare(b.scope);
}

function ipv4Number(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/**
 * Every frontend in the services map with its slots resolved, flagging what
 * the datapath would trip over. Like `ipvsadm -Ln` (or `cilium service list`).
 */
export function listServices(maps: Pick<InspectMaps, 'services' | 'backends' | 'revNat'>): ServiceView[] {
  const backends = readBackends(maps.backends);
  const revNat = readRevNat(maps.revNat);
  const frontends = new Map<string, { view: ServiceView; entries: Map<number, number> }>();
  for (const [k, v] of maps.services.entries()) {
    const key = lb4Key.decode(k);
    const value = lb4Service.decode(v);
    const name = frontendName(key);
    let f = frontends.get(name);
    if (f === undefined) {
      const view: ServiceView = {
        frontend: name,
        address: key.address,
        port: key.port,
        proto: key.proto,
        scope: key.scope,
        count: null,
        revNatIndex: null,
        revNat: null,
        affinityTimeout: 0,
        slots: [],
        problems: [],
      };
      frontends.set(name, (f = { view, entries: new Map() }));
    }
    if (key.slot === 0) {
      f.view.count = value.count;
      f.view.revNatIndex = value.revNatIndex;
      f.view.affinityTimeout = value.affinityTimeout;
    } else f.entries.set(key.slot, value.backendId);
  }

  const out: ServiceView[] = [];
  for (const { view, entries } of frontends.values()) {
    if (view.count === null) view.problems.push('no slot 0: the datapath does not see this frontend');
    if (view.revNatIndex !== null) {
      const rev = revNat.get(view.revNatIndex);
      if (rev === undefined) view.problems.push(`rev-NAT entry ${view.revNatIndex} is missing: replies are not translated`);
      else view.revNat = hostPort(rev);
    }
    const count = view.count ?? 0;
    const slotNumbers = new Set([...entries.keys(), ...Array.from({ length: count }, (_, i) => i + 1)]);
    for (const slot of [...slotNumbers].sort((a, b) => a - b)) {
      const id = entries.get(slot);
      if (id === undefined) {
        view.slots.push({ slot, backendId: null, backend: null, problem: `slot missing (count is ${count})` });
        continue;
      }
      const backend = backends.get(id);
      const s: SlotView = { slot, backendId: id, backend: backend === undefined ? null : hostPort(backend) };
      if (backend === undefined) s.problem = `backend ${id} is missing`;
      else if (backend.proto !== view.proto) s.problem = `backend is ${backend.proto}, the frontend ${view.proto}`;
      if (slot > count) s.problem = `beyond count ${count}: unused${s.problem ? `; ${s.problem}` : ''}`;
      view.slots.push(s);
    }
    out.push(view);
  }
  return out.sort(compareFrontends);
}

// --- endpoints (backends) --------------------------------------------------------

export interface EndpointView {
  id: number;
  address: string;
  port: number;
  proto: Proto;
  /** Frontends with a slot (1..count) naming this backend, e.g. `10.96.0.10:80/tcp`. */
  frontends: string[];
  /** Forward conntrack entries (flows) pinned to this backend. */
  flows: number;
}

/** Every backend with the frontends that use it and the flows pinned to it. */
export function listEndpoints(maps: Pick<InspectMaps, 'services' | 'backends' | 'conntrack'>): EndpointView[] {
  const services = listServices({ ...maps, revNat: { lookup: () => undefined, entries: () => [] } });
  const flows = new Map<number, number>();
  for (const [k, v] of conntrackEntries(maps.conntrack)) {
    if (ct4Key.decode(k).dir !== 'forward') continue;
    const id = ctEntry.decode(v).backendId;
    flows.set(id, (flows.get(id) ?? 0) + 1);
  }
  const out: EndpointView[] = [];
  for (const [id, b] of readBackends(maps.backends)) {
    const frontends = services
      .filter((s) => s.slots.some((slot) => slot.backendId === id && slot.slot <= (s.count ?? 0)))
      .map((s) => s.frontend);
    out.push({ id, address: b.address, port: b.port, proto: b.proto, frontends, flows: flows.get(id) ?? 0 });
  }
  return out.sort((a, b) => a.id - b.id);
}

// --- reverse NAT -----------------------------------------------------------------

export interface RevNatView {
  index: number;
  address: string;
  port: number;
  /** Frontends whose slot 0 names this index. */
  frontends: string[];
}

/** The reverse-NAT table: index → service address, with the frontends that use each index. */
export function listReverseNat(maps: Pick<InspectMaps, 'services' | 'revNat'>): RevNatView[] {
  const users = new Map<number, string[]>();
  for (const [k, v] of maps.services.entries()) {
    const key = lb4Key.decode(k);
    if (key.slot !== 0) continue;
    const index = lb4Service.decode(v).revNatIndex;
    users.set(index, [...(users.get(index) ?? []), frontendName(key)].sort());
  }
  return [...readRevNat(maps.revNat)]
    .map(([index, rev]) => ({ index, address: rev.address, port: rev.port, frontends: users.get(index) ?? [] }))
    .sort((a, b) => a.index - b.index);
}

// --- conntrack -------------------------------------------------------------------

export interface CtFilter {
  /** The client's address (the forward entry's source, the reverse entry's destination). */
  src?: string;
  /** The service address the client sent to (the forward entry's destination; for reverse entries, from the rev-NAT table). */
  dst?: string;
  proto?: CtProto;
  /** A backend id, or a backend address (`10.0.0.5` or `10.0.0.5:8080`). */
  backend?: number | string;
}

export interface CtView {
  proto: CtProto;
  dir: CtDir;
  /** The entry's key: the tuple as from_pod sees the packet. */
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  /** The client of the flow, `10.244.0.5:40000` (its own address, also for a source-NATed flow). */
  client: string;
  /** The service address the client sent to, `10.96.0.10:80` (a masqueraded flow's: its outside peer); null when unknown (rev-NAT entry gone). */
  service: string | null;
  backendId: number;
  /** `10.244.0.7:8080`; null when the backend is gone. */
  backend: string | null;
  revNatIndex: number;
  state: CtStateName | `unknown(${number})`;
  /** TCP flags seen in this direction: `SYN,ACK`. */
  tcpFlags: string;
  /** The flow's CT_FLAGS: `snat`, `redirect`, `masq`, `hairpin`. */
  flags: CtFlag[];
  /** A source-NATed flow (from outside, masqueraded, hairpin): the address:port the client's source became; null otherwise. */
  snat: string | null;
  idleMs: number;
  /** Until the entry goes stale; negative once it is. */
  expiresInMs: number;
  lifetimeMs: number;
  stale: boolean;
}

const TCP_FLAG_NAMES: Array<[number, string]> = [
  [0x02, 'SYN'],
  [0x10, 'ACK'],
  [0x08, 'PSH'],
  [0x01, 'FIN'],
  [0x04, 'RST'],
];

function stateName(state: number): CtView['state'] {
  const name = (Object.keys(CT_STATE) as CtStateName[]).find((n) => CT_STATE[n] === state);
  return name ?? `unknown(${state})`;
}

const nsToMs = (ns: bigint) => Number(ns / 1_000_000n);

/** Checks a filter's values; throws a TypeError naming the bad one. */
export function validateCtFilter(filter: CtFilter): CtFilter {
  for (const field of ['src', 'dst'] as const) {
    const v = filter[field];
    if (v !== undefined && !isIPv4(v)) throw new TypeError(`--${field}: not an IPv4 address: ${v}`);
  }
  if (filter.proto !== undefined && filter.proto !== 'tcp' && filter.proto !== 'udp' && filter.proto !== 'icmp') {
    throw new TypeError(`--proto: tcp, udp or icmp, not ${String(filter.proto)}`);
  }
  const b = filter.backend;
  if (typeof b === 'number' && (!Number.isInteger(b) || b < 0 || b > 0xffff_ffff)) throw new TypeError(`--backend: not a backend id: ${b}`);
  if (typeof b === 'string') {
    const [address = '', port] = b.split(':');
    if (!isIPv4(address) || (port !== undefined && !/^\d{1,5}$/.test(port))) {
      throw new TypeError(`--backend: a backend id or address[:port], not ${b}`);
    }
  }
  return filter;
}

/** `--backend` as typed: digits are an id, anything else an address. */
export function parseBackendFilter(text: string): number | string {
  return /^\d+$/.test(text) ? Number(text) : text;
}

interface CtContext {
  backends: Map<number, Lb4Backend>;
  revNat: Map<number, { address: string; port: number }>;
  now: bigint;
}

function ctView(raw: Buffer, value: Buffer, ctx: CtContext): CtView {
  const key = ct4Key.decode(raw);
  const entry = ctEntry.decode(value);
  const backend = ctx.backends.get(entry.backendId);
  const rev = ctx.revNat.get(entry.revNatIndex);
  const forward = key.dir === 'forward';
  const flags = (Object.keys(CT_FLAGS) as CtFlag[]).filter((f) => ((entry.flags ?? 0) & CT_FLAGS[f]) !== 0);
  // A source-NATed flow's nat* is, in the forward entry, the node address the
  // client's source became (the reverse entry's destination), and in the
  // reverse entry the client's own address.
  const nat = `${entry.natAddress ?? '0.0.0.0'}:${entry.natPort ?? 0}`;
  const snatted = flags.includes('snat');
  const client = forward ? `${key.saddr}:${key.sport}` : snatted ? nat : `${key.daddr}:${key.dport}`;
  const snat = !snatted ? null : forward ? nat : `${key.daddr}:${key.dport}`;
  // A masqueraded flow has no service: what the client sent to is the reply's source.
  const service = forward ? `${key.daddr}:${key.dport}` : flags.includes('masq') ? `${key.saddr}:${key.sport}` : rev === undefined ? null : hostPort(rev);
  const idle = ctx.now - entry.lastSeenNs;
  return {
    proto: key.proto,
    dir: key.dir,
    saddr: key.saddr,
    sport: key.sport,
    daddr: key.daddr,
    dport: key.dport,
    client,
    service,
    backendId: entry.backendId,
    backend: backend === undefined ? null : hostPort(backend),
    revNatIndex: entry.revNatIndex,
    state: stateName(entry.state),
    tcpFlags: TCP_FLAG_NAMES.filter(([bit]) => entry.tcpFlags & bit)
      .map(([, n]) => n)
      .join(','),
    flags,
    snat,
    idleMs: nsToMs(idle),
    expiresInMs: nsToMs(entry.lastSeenNs + entry.lifetimeNs - ctx.now),
    lifetimeMs: nsToMs(entry.lifetimeNs),
    stale: ctStale(entry, ctx.now),
  };
}

function matches(view: CtView, filter: CtFilter): boolean {
  if (filter.proto !== undefined && view.proto !== filter.proto) return false;
  if (filter.src !== undefined && view.client.split(':')[0] !== filter.src) return false;
  if (filter.dst !== undefined && view.service?.split(':')[0] !== filter.dst) return false;
  const b = filter.backend;
  if (typeof b === 'number' && view.backendId !== b) return false;
  if (typeof b === 'string') {
    // A gone backend's address is still in the reverse entry's source.
    const address = view.backend ?? (view.dir === 'reverse' ? `${view.saddr}:${view.sport}` : null);
    if (address === null || !(b.includes(':') ? address === b : address.split(':')[0] === b)) return false;
  }
  return true;
}

/** Lists twins together: by protocol, client, the flow's service and backend, then forward before reverse. */
function compareFlows(a: CtView, b: CtView): number {
  const [ca = '', cp = '0'] = a.client.split(':');
  const [da = '', dp = '0'] = b.client.split(':');
  return (
    a.proto.localeCompare(b.proto) ||
    ipv4Number(ca) - ipv4Number(da) ||
    Number(cp) - Number(dp) ||
    a.revNatIndex - b.revNatIndex ||
    a.backendId - b.backendId ||
    a.dir.localeCompare(b.dir)
  );
}

function ctContext(maps: Pick<InspectMaps, 'backends' | 'revNat'>, now: bigint): CtContext {
  return { backends: readBackends(maps.backends), revNat: readRevNat(maps.revNat), now };
}

/**
 * The conntrack entries matching `filter`, both directions of each flow
 * together. Like `conntrack -L [-s SRC] [-d DST] [-p PROTO]`.
 */
export function listConntrack(
  maps: Pick<InspectMaps, 'conntrack' | 'backends' | 'revNat'>,
  filter: CtFilter = {},
  now: bigint = process.hrtime.bigint(),
): CtView[] {
  validateCtFilter(filter);
  const records = conntrackEntries(maps.conntrack);
  const ctx = ctContext(maps, now);
  return records
    .map(([k, v]) => ctView(k, v, ctx))
    .filter((v) => matches(v, filter))
    .sort(compareFlows);
}

/**
 * Deletes the conntrack entries matching `filter` (all of them without one);
 * returns how many. Like `conntrack -D [-s SRC] …` (`conntrack -F` unfiltered).
 */
export function flushConntrack(
  maps: Pick<InspectMaps, 'conntrack' | 'backends' | 'revNat'>,
  filter: CtFilter = {},
  now: bigint = process.hrtime.bigint(),
): number {
  validateCtFilter(filter);
  const ctx = ctContext(maps, now);
  let deleted = 0;
  for (const [k, v] of conntrackEntries(maps.conntrack)) {
    if (matches(ctView(k, v, ctx), filter) && maps.conntrack.delete(k)) deleted++;
  }
  return deleted;
}

// --- counters --------------------------------------------------------------------

export interface MetricsView {
  counters: Record<string, number>;
  conntrack: ConntrackFill;
}

/** The datapath's counters (summed over CPUs) and the conntrack table's fill. */
export function readMetrics(maps: { metrics: MetricsMap; conntrack: ConntrackMap & { maxEntries: number } }): MetricsView {
  const counters = Object.fromEntries(Object.entries(readCounters(maps.metrics)).map(([n, v]) => [n, Number(v)]));
  return { counters, conntrack: conntrackFill(maps.conntrack) };
}
