// Reading the dataplane's pinned maps back as plain data: services with
// their backend slots, backends with the frontends that use them, the
// reverse-NAT table, conntrack entries (listed and flushed by filter) and
// the counters. Everything returned is JSON-ready; engine/cli/ renders it.
// Nothing here writes to a map except flushConntrack().
//
// Both families: the IPv6 maps (services6, backends6, revNat6, conntrack6)
// are read beside the IPv4 ones when given, and listed together (IPv4
// first). Backend ids and rev-NAT indices are one space across families.
// An IPv6 address:port is written [fd00::5]:8080 (addressPort()).
import { isIP } from 'node:net';
import { backendSlots, type BackendsReader } from './backend-slots.js';
import { conntrackEntries, CT_CODECS, type ConntrackMap, type ReadableMap } from './ct-gc.js';
import { addressOrder, compareOrder } from './desired.js';
import { canonicalIp } from './model.js';
import {
  addressPort,
  ANY_ADDRESS,
  backendId as backendIdCodec,
  CT_FLAGS,
  CT_STATE,
  ctStale,
  familyOf,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  revNatIndex as revNatIndexCodec,
  type CtDir,
  type CtFlag,
  type CtProto,
  type CtStateName,
  type Family,
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
  /** An array: its empty (all-zero) slots are no backends, and are not listed. */
  backends: BackendsReader;
  revNat: ReadableMap;
  conntrack: ConntrackMap;
  metrics: MetricsMap;
  /** The IPv6 twins: read beside the IPv4 maps when given. */
  services6?: ReadableMap;
  backends6?: BackendsReader;
  revNat6?: ReadableMap;
  conntrack6?: ConntrackMap;
}

/** Each family's map of one kind that `maps` has (IPv4's always, IPv6's when given), with its family. */
function byFamily<M>(v4: M, v6: M | undefined): Array<[Family, M]> {
  const out: Array<[Family, M]> = [[4, v4]];
  if (v6 !== undefined) out.push([6, v6]);
  return out;
}

// --- services --------------------------------------------------------------------

export interface SlotView {
  slot: number;
  /** null: the slot is missing (count says it should exist). */
  backendId: number | null;
  /** `10.0.0.5:8080` (`[fd00::5]:8080`), or null when the backend is missing. */
  backend: string | null;
  /** What is wrong with this slot, if anything. */
  problem?: string;
}

export interface ServiceView {
  /** `10.96.0.10:80/tcp` (`[fd00::10]:80/tcp`), with `@internal` for the internal scope. */
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

const hostPort = (a: { address: string; port: number }) => addressPort(a.address, a.port);
const frontendName = (k: { address: string; port: number; proto: Proto; scope: Scope }) =>
  `${addressPort(k.address, k.port)}/${k.proto}${k.scope === 'internal' ? '@internal' : ''}`;

const SERVICE_KEY_CODECS = { 4: lb4Key, 6: lb6Key } as const;
const BACKEND_CODECS = { 4: lb4Backend, 6: lb6Backend } as const;
const REV_NAT_CODECS = { 4: lb4ReverseNat, 6: lb6ReverseNat } as const;

/** Both families' backends by id, their maps' used slots (an id is in one of them; should it be in both, IPv4's is shown). */
function readBackends(maps: { backends: BackendsReader; backends6?: BackendsReader | undefined }): Map<number, Lb4Backend> {
  const out = new Map<number, Lb4Backend>();
  for (const [family, map] of byFamily(maps.backends, maps.backends6)) {
    for (const [k, v] of backendSlots(map)) {
      const id = backendIdCodec.decode(k);
      if (!out.has(id)) out.set(id, BACKEND_CODECS[family].decode(v));
    }
  }
  return out;
}

/** Both families' rev-NAT entries by index. */
function readRevNat(maps: { revNat: ReadableMap; revNat6?: ReadableMap | undefined }): Map<number, { address: string; port: number }> {
  const out = new Map<number, { address: string; port: number }>();
  for (const [family, map] of byFamily(maps.revNat, maps.revNat6)) {
    for (const [k, v] of map.entries()) {
      const index = revNatIndexCodec.decode(k);
      if (!out.has(index)) out.set(index, REV_NAT_CODECS[family].decode(v));
    }
  }
  return out;
}

/** Every service entry of both families, decoded. */
function* serviceEntries(maps: { services: ReadableMap; services6?: ReadableMap | undefined }) {
  for (const [family, map] of byFamily(maps.services, maps.services6)) {
    const keyCodec = SERVICE_KEY_CODECS[family];
    for (const [k, v] of map.entries()) yield { key: keyCodec.decode(k), value: lb4Service.decode(v) };
  }
}

/** Compares addresses numerically (IPv4 first), then ports, protocols and scopes: a stable listing order. */
function compareFrontends(a: ServiceView, b: ServiceView): number {
  return compareAddresses(a.address, b.address) || a.port - b.port || a.proto.localeCompare(b.proto) || a.scope.localeCompare(b.scope);
}

function compareAddresses(a: string, b: string): number {
  return compareOrder(addressOrder(a), addressOrder(b));
}

/**
 * Every frontend in the services map with its slots resolved, flagging what
 * the datapath would trip over. Like `ipvsadm -Ln` (or `cilium service list`).
 */
export function listServices(maps: Pick<InspectMaps, 'services' | 'backends' | 'revNat' | 'services6' | 'backends6' | 'revNat6'>): ServiceView[] {
  const backends = readBackends(maps);
  const revNat = readRevNat(maps);
  const frontends = new Map<string, { view: ServiceView; entries: Map<number, number> }>();
  for (const { key, value } of serviceEntries(maps)) {
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
      else if (familyOf(backend.address) !== familyOf(view.address)) s.problem = `backend is IPv${familyOf(backend.address)}, the frontend IPv${familyOf(view.address)}`;
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

/** Every backend (both families) with the frontends that use it and the flows pinned to it. */
export function listEndpoints(maps: Pick<InspectMaps, 'services' | 'backends' | 'conntrack' | 'services6' | 'backends6' | 'conntrack6'>): EndpointView[] {
  const none = { lookup: () => undefined, entries: () => [] };
  const services = listServices({ ...maps, revNat: none, ...(maps.services6 !== undefined && { revNat6: none }) });
  const flows = new Map<number, number>();
  for (const [family, map] of byFamily(maps.conntrack, maps.conntrack6)) {
    const codecs = CT_CODECS[family];
    for (const [k, v] of conntrackEntries(map)) {
      if (codecs.key.decode(k).dir !== 'forward') continue;
      const id = codecs.entry.decode(v).backendId;
      flows.set(id, (flows.get(id) ?? 0) + 1);
    }
  }
  const out: EndpointView[] = [];
  for (const [id, b] of readBackends(maps)) {
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
export function listReverseNat(maps: Pick<InspectMaps, 'services' | 'revNat' | 'services6' | 'revNat6'>): RevNatView[] {
  const users = new Map<number, string[]>();
  for (const { key, value } of serviceEntries(maps)) {
    if (key.slot !== 0) continue;
    const index = value.revNatIndex;
    users.set(index, [...(users.get(index) ?? []), frontendName(key)].sort());
  }
  return [...readRevNat(maps)]
    .map(([index, rev]) => ({ index, address: rev.address, port: rev.port, frontends: users.get(index) ?? [] }))
    .sort((a, b) => a.index - b.index);
}

// --- conntrack -------------------------------------------------------------------

export interface CtFilter {
  /** The client's address (the forward entry's source, the reverse entry's destination), IPv4 or IPv6. */
  src?: string;
  /** The service address the client sent to (the forward entry's destination; for reverse entries, from the rev-NAT table). */
  dst?: string;
  proto?: CtProto;
  /** A backend id, or a backend address (`10.0.0.5`, `10.0.0.5:8080`, `fd00::5`, `[fd00::5]:8080`). */
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
  /** The client of the flow, `10.244.0.5:40000`, `[fd00::5]:40000` (its own address, also for a source-NATed flow). */
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
    if (v !== undefined && isIP(v) === 0) throw new TypeError(`--${field}: not an IPv4 or IPv6 address: ${v}`);
  }
  if (filter.proto !== undefined && filter.proto !== 'tcp' && filter.proto !== 'udp' && filter.proto !== 'icmp') {
    throw new TypeError(`--proto: tcp, udp or icmp, not ${String(filter.proto)}`);
  }
  const b = filter.backend;
  if (typeof b === 'number' && (!Number.isInteger(b) || b < 0 || b > 0xffff_ffff)) throw new TypeError(`--backend: not a backend id: ${b}`);
  if (typeof b === 'string' && splitAddressPort(b) === undefined) throw new TypeError(`--backend: a backend id, address or address:port ([IPv6]:port), not ${b}`);
  return filter;
}

/**
 * `10.0.0.5`, `10.0.0.5:8080`, `fd00::5`, `[fd00::5]:8080` as address (canonical)
 * and port (undefined when not given); undefined when it is none of them.
 */
export function splitAddressPort(text: string): { address: string; port: number | undefined } | undefined {
  let address = text;
  let port: number | undefined;
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([^:]+):(\d{1,5})$/.exec(text);
  if (m) {
    address = m[1]!;
    if (m[2] !== undefined) port = Number(m[2]);
  }
  if (isIP(address) === 0 || (port !== undefined && port > 65535)) return undefined;
  return { address: canonicalIp(address) ?? address, port };
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

/** An address and port as a CtView shows one (addressPort()), kept apart for filters and sorting. */
interface Endpoint {
  address: string;
  port: number;
}

/** A CtView with the addresses its text fields were made of: filters and sorting compare these. */
interface CtRow {
  view: CtView;
  client: Endpoint;
  /** addressOrder() of the client's address. */
  clientOrder: number | string;
  service: Endpoint | undefined;
  /** The backend's, or a gone backend's as the reverse entry's source has it. */
  backend: Endpoint | undefined;
}

function ctRow(family: Family, raw: Buffer, value: Buffer, ctx: CtContext): CtRow {
  const codecs = CT_CODECS[family];
  const key = codecs.key.decode(raw);
  const entry = codecs.entry.decode(value);
  const backend = ctx.backends.get(entry.backendId);
  const rev = ctx.revNat.get(entry.revNatIndex);
  const forward = key.dir === 'forward';
  const flags = (Object.keys(CT_FLAGS) as CtFlag[]).filter((f) => ((entry.flags ?? 0) & CT_FLAGS[f]) !== 0);
  // A source-NATed flow's nat* is, in the forward entry, the node address the
  // client's source became (the reverse entry's destination), and in the
  // reverse entry the client's own address.
  const nat: Endpoint = { address: entry.natAddress ?? ANY_ADDRESS[family], port: entry.natPort ?? 0 };
  const snatted = flags.includes('snat');
  const source: Endpoint = { address: key.saddr, port: key.sport };
  const destination: Endpoint = { address: key.daddr, port: key.dport };
  const client = forward ? source : snatted ? nat : destination;
  const snat = !snatted ? undefined : forward ? nat : destination;
  // A masqueraded flow has no service: what the client sent to is the reply's source.
  const service = forward ? destination : flags.includes('masq') ? source : rev;
  const idle = ctx.now - entry.lastSeenNs;
  const text = (e: Endpoint | undefined) => (e === undefined ? null : hostPort(e));
  const view: CtView = {
    proto: key.proto,
    dir: key.dir,
    saddr: key.saddr,
    sport: key.sport,
    daddr: key.daddr,
    dport: key.dport,
    client: hostPort(client),
    service: text(service),
    backendId: entry.backendId,
    backend: text(backend),
    revNatIndex: entry.revNatIndex,
    state: stateName(entry.state),
    tcpFlags: TCP_FLAG_NAMES.filter(([bit]) => entry.tcpFlags & bit)
      .map(([, n]) => n)
      .join(','),
    flags,
    snat: text(snat),
    idleMs: nsToMs(idle),
    expiresInMs: nsToMs(entry.lastSeenNs + entry.lifetimeNs - ctx.now),
    lifetimeMs: nsToMs(entry.lifetimeNs),
    stale: ctStale(entry, ctx.now),
  };
  return { view, client, clientOrder: addressOrder(client.address), service, backend: backend ?? (forward ? undefined : source) };
}

/** A filter with its addresses canonical, as the maps decode them. */
interface ParsedFilter {
  proto: CtProto | undefined;
  src: string | undefined;
  dst: string | undefined;
  backendId: number | undefined;
  backend: { address: string; port: number | undefined } | undefined;
}

function parseFilter(filter: CtFilter): ParsedFilter {
  validateCtFilter(filter);
  const canonical = (a: string | undefined) => (a === undefined ? undefined : (canonicalIp(a) ?? a));
  const b = filter.backend;
  return {
    proto: filter.proto,
    src: canonical(filter.src),
    dst: canonical(filter.dst),
    backendId: typeof b === 'number' ? b : undefined,
    backend: typeof b === 'string' ? splitAddressPort(b) : undefined,
  };
}

function matches(row: CtRow, filter: ParsedFilter): boolean {
  if (filter.proto !== undefined && row.view.proto !== filter.proto) return false;
  if (filter.src !== undefined && row.client.address !== filter.src) return false;
  if (filter.dst !== undefined && row.service?.address !== filter.dst) return false;
  if (filter.backendId !== undefined && row.view.backendId !== filter.backendId) return false;
  const b = filter.backend;
  if (b !== undefined && (row.backend?.address !== b.address || (b.port !== undefined && row.backend.port !== b.port))) return false;
  return true;
}

/** Lists twins together: by protocol, client (IPv4 first), the flow's service and backend, then forward before reverse. */
function compareFlows(a: CtRow, b: CtRow): number {
  return (
    a.view.proto.localeCompare(b.view.proto) ||
    compareOrder(a.clientOrder, b.clientOrder) ||
    a.client.port - b.client.port ||
    a.view.revNatIndex - b.view.revNatIndex ||
    a.view.backendId - b.view.backendId ||
    a.view.dir.localeCompare(b.view.dir)
  );
}

type CtMaps = Pick<InspectMaps, 'conntrack' | 'backends' | 'revNat' | 'conntrack6' | 'backends6' | 'revNat6'>;

function ctContext(maps: CtMaps, now: bigint): CtContext {
  return { backends: readBackends(maps), revNat: readRevNat(maps), now };
}

/**
 * The conntrack entries of both families matching `filter`, both
 * directions of each flow together. Like `conntrack -L [-s SRC] [-d DST] [-p PROTO]`.
 */
export function listConntrack(maps: CtMaps, filter: CtFilter, now: bigint): CtView[] {
  const parsed = parseFilter(filter);
  // Conntrack before the maps its entries name, as the GC reads them.
  const records = byFamily(maps.conntrack, maps.conntrack6).map(([family, map]) => [family, conntrackEntries(map)] as const);
  const ctx = ctContext(maps, now);
  const rows: CtRow[] = [];
  for (const [family, entries] of records) {
    for (const [k, v] of entries) {
      const row = ctRow(family, k, v, ctx);
      if (matches(row, parsed)) rows.push(row);
    }
  }
  return rows.sort(compareFlows).map((r) => r.view);
}

/**
 * Deletes the conntrack entries of both families matching `filter` (all of
 * them without one); returns how many. Like `conntrack -D [-s SRC] …`
 * (`conntrack -F` unfiltered).
 */
export function flushConntrack(maps: CtMaps, filter: CtFilter, now: bigint): number {
  const parsed = parseFilter(filter);
  const ctx = ctContext(maps, now);
  let deleted = 0;
  for (const [family, map] of byFamily(maps.conntrack, maps.conntrack6)) {
    for (const [k, v] of conntrackEntries(map)) {
      if (matches(ctRow(family, k, v, ctx), parsed) && map.delete(k)) deleted++;
    }
  }
  return deleted;
}

// --- counters --------------------------------------------------------------------

export interface MetricsView {
  counters: Record<string, number>;
  /** The IPv4 conntrack map's fill (ferry_ct4). */
  conntrack: ConntrackFill;
  /** The IPv6 conntrack map's (ferry_ct6), when given. */
  conntrack6?: ConntrackFill;
}

type FillMap = ConntrackMap & { maxEntries: number };

/** The datapath's counters (summed over CPUs) and the conntrack tables' fill. */
export function readMetrics(maps: { metrics: MetricsMap; conntrack: FillMap; conntrack6?: FillMap }): MetricsView {
  const counters = Object.fromEntries(Object.entries(readCounters(maps.metrics)).map(([n, v]) => [n, Number(v)]));
  const view: MetricsView = { counters, conntrack: conntrackFill(maps.conntrack) };
  if (maps.conntrack6 !== undefined) view.conntrack6 = conntrackFill(maps.conntrack6);
  return view;
}
