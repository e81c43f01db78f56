// struct ifinfomsg (16 bytes) and the IFLA_* attributes ferry reads back.
import { formatIp, formatMac } from '../../validate.js';
import { Attrs } from '../attributes.js';
import * as C from '../constants.js';

export interface IfInfoMsg {
  family?: number;
  type?: number;
  index?: number;
  flags?: number;
  change?: number;
}

export function encodeIfInfoMsg(m: IfInfoMsg): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(m.family ?? C.AF_UNSPEC, 0);
  b.writeUInt16LE(m.type ?? 0, 2);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return b;
}

export interface VxlanInfo {
  vni: number;
  local?: string;
  group?: string;
  port?: number;
  learning: boolean;
  /** Underlay device index (IFLA_VXLAN_LINK). */
  dev?: number;
}

/** A network interface as rtnetlink reports it (`ip -d link show`). */
export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: veth, bridge, vxlan, dummy…; undefined for physical/loopback. */
  kind?: string;
  /** Kind of the port when enslaved (IFLA_INFO_SLAVE_KIND), e.g. "bridge". */
  portKind?: string;
  /** For a bridge port: hairpin mode (IFLA_BRPORT_MODE). */
  hairpin?: boolean;
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** IF_OPER_*: up, down, lowerlayerdown, unknown… */
  operState: string;
  mtu: number;
  mac?: string;
  /** Index of the master device (bridge) or undefined. */
  master?: number;
  /** IFLA_LINK: for a veth, the peer's index (in the peer's namespace). */
  parent?: number;
  /** For a veth whose peer is in another namespace: that namespace's nsid as seen from here. */
  linkNetnsId?: number;
  txqlen?: number;
  vxlan?: VxlanInfo;
}

const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

export function decodeLink(payload: Buffer): Link {
  const attrs = Attrs.parse(payload, 16);
  const flags = payload.readUInt32LE(8);
  const info = attrs.nested(C.IFLA_LINKINFO);
  const kind = info?.string(C.IFLA_INFO_KIND);
  const link: Link = {
    index: payload.readInt32LE(4),
    name: attrs.string(C.IFLA_IFNAME) ?? '',
    flags,
    up: (flags & C.IFF_UP) !== 0,
    operState: OPER_STATES[attrs.u8(C.IFLA_OPERSTATE) ?? 0] ?? 'unknown',
    mtu: attrs.u32(C.IFLA_MTU) ?? 0,
  };
  if (kind !== undefined) link.kind = kind;
  const portKind = info?.string(C.IFLA_INFO_SLAVE_KIND);
  if (portKind !== undefined) link.portKind = portKind;
  const hairpin = portKind === 'bridge' ? info?.nested(C.IFLA_INFO_SLAVE_DATA)?.u8(C.IFLA_BRPORT_MODE) : undefined;
  if (hairpin !== undefined) link.hairpin = hairpin !== 0;
  const mac = formatMac(attrs.get(C.IFLA_ADDRESS));
  if (mac !== undefined) link.mac = mac;
  const master = attrs.u32(C.IFLA_MASTER);
  if (master !== undefined && master !== 0) link.master = master;
  const nsid = attrs.s32(C.IFLA_LINK_NETNSID);
  if (nsid !== undefined) link.linkNetnsId = nsid;
  // Devices without a parent report their own index as IFLA_LINK; a veth's peer
  // in another namespace may have the same number, which the nsid tells apart.
  const parent = attrs.u32(C.IFLA_LINK);
  if (parent !== undefined && (parent !== link.index || nsid !== undefined)) link.parent = parent;
  const txqlen = attrs.u32(C.IFLA_TXQLEN);
  if (txqlen !== undefined) link.txqlen = txqlen;
  if (kind === 'vxlan') {
    const data = info?.nested(C.IFLA_INFO_DATA);
    if (data !== undefined) link.vxlan = decodeVxlan(data);
  }
  return link;
}

function decodeVxlan(data: Attrs): VxlanInfo {
  const v: VxlanInfo = { vni: data.u32(C.IFLA_VXLAN_ID) ?? 0, learning: (data.u8(C.IFLA_VXLAN_LEARNING) ?? 0) !== 0 };
  const local = formatIp(data.get(C.IFLA_VXLAN_LOCAL) ?? data.get(C.IFLA_VXLAN_LOCAL6));
  if (local !== undefined) v.local = local;
  const group = formatIp(data.get(C.IFLA_VXLAN_GROUP) ?? data.get(C.IFLA_VXLAN_GROUP6));
  if (group !== undefined) v.group = group;
  const port = data.be16(C.IFLA_VXLAN_PORT);
  if (port !== undefined) v.port = port;
  const dev = data.u32(C.IFLA_VXLAN_LINK);
  if (dev !== undefined && dev !== 0) v.dev = dev;
  return v;
}
