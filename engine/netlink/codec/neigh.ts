// struct ndmsg (12 bytes) and NDA_* attributes. The same message carries
// ARP/NDP entries (AF_INET/AF_INET6) and bridge/vxlan FDB entries (AF_BRIDGE).
import { formatIp, formatMac } from '../../validate.js';
import { Attrs } from '../attributes.js';
import * as C from '../constants.js';

export interface NdMsg {
  family: number;
  index?: number;
  /** NUD_* */
  state?: number;
  /** NTF_* */
  flags?: number;
  type?: number;
}

export function encodeNdMsg(m: NdMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(m.family, 0);
  // bytes 1-3: ndm_pad1, ndm_pad2 (the kernel's strict checks want them zero)
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt16LE(m.state ?? 0, 8);
  b.writeUInt8(m.flags ?? 0, 10);
  b.writeUInt8(m.type ?? 0, 11);
  return b;
}

export type NeighState = 'none' | 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'noarp' | 'permanent';

const NUD_NAMES: ReadonlyArray<readonly [number, NeighState]> = [
  [C.NUD_INCOMPLETE, 'incomplete'],
  [C.NUD_REACHABLE, 'reachable'],
  [C.NUD_STALE, 'stale'],
  [C.NUD_DELAY, 'delay'],
  [C.NUD_PROBE, 'probe'],
  [C.NUD_FAILED, 'failed'],
  [C.NUD_NOARP, 'noarp'],
  [C.NUD_PERMANENT, 'permanent'],
];

/** NUD_* for a state name; undefined for an unknown name. */
export function nudNumber(state: NeighState): number | undefined {
  if (state === 'none') return C.NUD_NONE;
  return NUD_NAMES.find(([, name]) => name === state)?.[0];
}

/** An ARP (IPv4) or NDP (IPv6) entry (`ip neigh show`). */
export interface Neighbor {
  family: 4 | 6;
  /** The device's index: a LinkRef, so an entry can be handed back to delete(). */
  dev: number;
  /** Its name, filled in by the verbs when the link could be looked up. */
  devName?: string;
  ip: string;
  /** Absent while unresolved (incomplete, failed). */
  mac?: string;
  /** The NUD state's name; the most significant bit when several are set. */
  state: NeighState;
  /** The raw NUD_* bits. */
  nud: number;
  /** NTF_ROUTER: the neighbour is an IPv6 router. */
  router: boolean;
  /** NTF_* */
  flags: number;
}

function stateName(nud: number): NeighState {
  for (let i = NUD_NAMES.length - 1; i >= 0; i--) {
    const [bit, name] = NUD_NAMES[i]!;
    if ((nud & bit) !== 0) return name;
  }
  return 'none';
}

export function decodeNeighbor(payload: Buffer): Neighbor {
  const attrs = Attrs.parse(payload, 12);
  const nud = payload.readUInt16LE(8);
  const flags = payload.readUInt8(10);
  const n: Neighbor = {
    family: payload.readUInt8(0) === C.AF_INET6 ? 6 : 4,
    dev: payload.readInt32LE(4),
    ip: formatIp(attrs.get(C.NDA_DST)) ?? '',
    state: stateName(nud),
    nud,
    router: (flags & C.NTF_ROUTER) !== 0,
    flags,
  };
  const mac = formatMac(attrs.get(C.NDA_LLADDR));
  if (mac !== undefined) n.mac = mac;
  return n;
}

/** How `bridge fdb show` names an entry's state. */
export type FdbState = 'permanent' | 'static' | 'stale' | 'dynamic';

/** A forwarding database entry of a bridge port or a vxlan device (`bridge fdb show`). */
export interface FdbEntry {
  mac: string;
  /** Index of the port (or vxlan device) the entry points to: a LinkRef, so an entry can be handed back to delete(). */
  dev: number;
  /** Its name, filled in by the verbs when the link could be looked up. */
  devName?: string;
  /** Index of the bridge whose table holds the entry (NDA_MASTER). */
  bridge?: number;
  bridgeName?: string;
  /** NTF_SELF: the entry is in the device's own table (vxlan remotes, a NIC's unicast list). */
  self: boolean;
  /**
   * The entry is in a bridge's table: NTF_MASTER, or NDA_MASTER present (the
   * bridge reports its entries with the attribute and no flag).
   */
  master: boolean;
  /** NUD_PERMANENT: for a bridge, a local address delivered to the host. */
  permanent: boolean;
  state: FdbState;
  /** Remote VTEP of a vxlan entry (NDA_DST). */
  dst?: string;
  vni?: number;
  port?: number;
  vlan?: number;
  /** NTF_EXT_LEARNED: put there by a driver or control plane, not learnt from traffic. */
  extLearned: boolean;
  /** The raw NUD_* and NTF_* bits. */
  nud: number;
  flags: number;
}

export function decodeFdbEntry(payload: Buffer): FdbEntry {
  const attrs = Attrs.parse(payload, 12);
  const nud = payload.readUInt16LE(8);
  const flags = payload.readUInt8(10);
  const e: FdbEntry = {
    mac: formatMac(attrs.get(C.NDA_LLADDR)) ?? '',
    dev: payload.readInt32LE(4),
    self: (flags & C.NTF_SELF) !== 0,
    master: (flags & C.NTF_MASTER) !== 0 || (attrs.u32(C.NDA_MASTER) ?? 0) !== 0,
    permanent: (nud & C.NUD_PERMANENT) !== 0,
    state: (nud & C.NUD_PERMANENT) !== 0 ? 'permanent' : (nud & C.NUD_NOARP) !== 0 ? 'static' : (nud & C.NUD_STALE) !== 0 ? 'stale' : 'dynamic',
    extLearned: (flags & C.NTF_EXT_LEARNED) !== 0,
    nud,
    flags,
  };
  const bridge = attrs.u32(C.NDA_MASTER);
  if (bridge !== undefined && bridge !== 0) e.bridge = bridge;
  const dst = formatIp(attrs.get(C.NDA_DST));
  if (dst !== undefined) e.dst = dst;
  const vni = attrs.u32(C.NDA_VNI);
  if (vni !== undefined) e.vni = vni;
  const port = attrs.be16(C.NDA_PORT);
  if (port !== undefined) e.port = port;
  const vlan = attrs.u16(C.NDA_VLAN);
  if (vlan !== undefined) e.vlan = vlan;
  return e;
}
