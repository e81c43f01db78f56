// struct rtmsg (12 bytes), the RTA_* attributes ferry writes and reads, and
// RTA_MULTIPATH's list of struct rtnexthop.
import { formatIp } from '../../validate.js';
import { align4, AttrWriter, Attrs } from '../attributes.js';
import * as C from '../constants.js';

export interface RtMsg {
  family: number;
  dstLen?: number;
  srcLen?: number;
  tos?: number;
  /** rtm_table is 8 bits; larger ids go in RTA_TABLE and this holds RT_TABLE_UNSPEC. */
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  flags?: number;
}

export function encodeRtMsg(m: RtMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.srcLen ?? 0, 2);
  b.writeUInt8(m.tos ?? 0, 3);
  b.writeUInt8(m.table ?? C.RT_TABLE_UNSPEC, 4);
  b.writeUInt8(m.protocol ?? C.RTPROT_UNSPEC, 5);
  b.writeUInt8(m.scope ?? C.RT_SCOPE_UNIVERSE, 6);
  b.writeUInt8(m.type ?? C.RTN_UNSPEC, 7);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  return b;
}

// Names as `ip route` prints them; unknown numbers are kept as numbers.
const SCOPES = new Map<number, string>([
  [C.RT_SCOPE_UNIVERSE, 'universe'],
  [C.RT_SCOPE_SITE, 'site'],
  [C.RT_SCOPE_LINK, 'link'],
  [C.RT_SCOPE_HOST, 'host'],
  [C.RT_SCOPE_NOWHERE, 'nowhere'],
]);
const TYPES = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'];

export type RouteScope = 'universe' | 'site' | 'link' | 'host' | 'nowhere' | number;
export type RouteType =
  | 'unspec'
  | 'unicast'
  | 'local'
  | 'broadcast'
  | 'anycast'
  | 'multicast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'throw'
  | 'nat'
  | 'xresolve'
  | number;

/** RT_SCOPE_* for a name or number; undefined for an unknown name. */
export function scopeNumber(scope: RouteScope): number | undefined {
  if (typeof scope === 'number') return scope;
  for (const [n, name] of SCOPES) if (name === scope) return n;
  return undefined;
}

/** RTN_* for a name or number; undefined for an unknown name. */
export function typeNumber(type: RouteType): number | undefined {
  if (typeof type === 'number') return type;
  const n = TYPES.indexOf(type);
  return n === -1 ? undefined : n;
}

function scopeName(n: number): RouteScope {
  return (SCOPES.get(n) as RouteScope | undefined) ?? n;
}

function typeName(n: number): RouteType {
  return (TYPES[n] as RouteType | undefined) ?? n;
}

/** One path of a multipath route, as written into RTA_MULTIPATH. */
export interface RtNextHop {
  ifindex: number;
  /** Gateway bytes (4 or 16), same family as the route. */
  gw?: Buffer;
  /** 1..256; the wire holds weight - 1. */
  weight: number;
  /** RTNH_F_* (RTNH_F_ONLINK). */
  flags: number;
}

/** The payload of RTA_MULTIPATH: back-to-back rtnexthop records, each followed by its own attributes. */
export function encodeMultipath(hops: RtNextHop[]): Buffer {
  const parts: Buffer[] = [];
  for (const hop of hops) {
    const attrs = new AttrWriter();
    if (hop.gw !== undefined) attrs.bytes(C.RTA_GATEWAY, hop.gw);
    const body = attrs.toBuffer();
    const head = Buffer.alloc(C.RTNH_HDRLEN);
    head.writeUInt16LE(C.RTNH_HDRLEN + body.length, 0);
    head.writeUInt8(hop.flags, 2);
    head.writeUInt8(hop.weight - 1, 3);
    head.writeInt32LE(hop.ifindex, 4);
    parts.push(head, body);
  }
  return Buffer.concat(parts);
}

/** A path of a decoded multipath route. */
export interface NextHop {
  /** Output device index (absent when the kernel reports 0). A LinkRef, so a hop can be handed back. */
  dev?: number;
  /** Its name, filled in by the verbs when the link could be looked up. */
  devName?: string;
  gw?: string;
  weight: number;
  onlink?: boolean;
  /** RTNH_F_* as reported (dead, linkdown…). */
  flags: number;
}

/** A route as rtnetlink reports it (`ip route show table all`). */
export interface Route {
  family: 4 | 6;
  /** `10.1.0.0/16`, `2001:db8::/64`, or `default` for 0.0.0.0/0 and ::/0. */
  dst: string;
  /** Routing table id (RTA_TABLE, which holds ids > 255). */
  table: number;
  /** RTPROT_*: 2 kernel, 3 boot (ip's default), 4 static, 9 ra… */
  protocol: number;
  scope: RouteScope;
  type: RouteType;
  /** RTA_PRIORITY; 0 when absent (IPv6 routes always carry one, 1024 by default). */
  metric: number;
  /** Output device index of a single-path route. A LinkRef, so the route can be handed back to delete(). */
  dev?: number;
  /** Its name, filled in by the verbs when the link could be looked up. */
  devName?: string;
  gw?: string;
  /** Preferred source address (RTA_PREFSRC, `src` in ip). */
  src?: string;
  onlink?: boolean;
  /** RTAX_MTU from RTA_METRICS. */
  mtu?: number;
  /** Paths of an ECMP route (RTA_MULTIPATH). */
  multipath?: NextHop[];
  /** rtm_flags plus, for a single-path route, its RTNH_F_* bits. */
  flags: number;
}

export function decodeRoute(payload: Buffer): Route {
  const family = payload.readUInt8(0) === C.AF_INET6 ? 6 : 4;
  const dstLen = payload.readUInt8(1);
  const flags = payload.readUInt32LE(8);
  const attrs = Attrs.parse(payload, 12);
  const dst = formatIp(attrs.get(C.RTA_DST));
  const r: Route = {
    family,
    dst: dstLen === 0 ? 'default' : `${dst ?? (family === 4 ? '0.0.0.0' : '::')}/${dstLen}`,
    table: attrs.u32(C.RTA_TABLE) ?? payload.readUInt8(4),
    protocol: payload.readUInt8(5),
    scope: scopeName(payload.readUInt8(6)),
    type: typeName(payload.readUInt8(7)),
    metric: attrs.u32(C.RTA_PRIORITY) ?? 0,
    flags,
  };
  const oif = attrs.u32(C.RTA_OIF);
  if (oif !== undefined && oif !== 0) r.dev = oif;
  const gw = formatIp(attrs.get(C.RTA_GATEWAY)) ?? decodeVia(attrs.get(C.RTA_VIA));
  if (gw !== undefined) r.gw = gw;
  const src = formatIp(attrs.get(C.RTA_PREFSRC));
  if (src !== undefined) r.src = src;
  if ((flags & C.RTNH_F_ONLINK) !== 0) r.onlink = true;
  const mtu = attrs.nested(C.RTA_METRICS)?.u32(C.RTAX_MTU);
  if (mtu !== undefined) r.mtu = mtu;
  const mp = attrs.get(C.RTA_MULTIPATH);
  if (mp !== undefined) r.multipath = decodeMultipath(mp);
  return r;
}

/** struct rtvia: a gateway of another family (an IPv4 route via an IPv6 neighbour). */
function decodeVia(v: Buffer | undefined): string | undefined {
  return v === undefined || v.length < 2 ? undefined : formatIp(v.subarray(2));
}

function decodeMultipath(buf: Buffer): NextHop[] {
  const hops: NextHop[] = [];
  let pos = 0;
  while (pos + C.RTNH_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(pos);
    if (len < C.RTNH_HDRLEN || pos + len > buf.length) break; // truncated: stop rather than misread
    const flags = buf.readUInt8(pos + 2);
    const hop: NextHop = { weight: buf.readUInt8(pos + 3) + 1, flags };
    const ifindex = buf.readInt32LE(pos + 4);
    if (ifindex !== 0) hop.dev = ifindex;
    const attrs = Attrs.parse(buf, pos + C.RTNH_HDRLEN, pos + len);
    const gw = formatIp(attrs.get(C.RTA_GATEWAY)) ?? decodeVia(attrs.get(C.RTA_VIA));
    if (gw !== undefined) hop.gw = gw;
    if ((flags & C.RTNH_F_ONLINK) !== 0) hop.onlink = true;
    hops.push(hop);
    pos += align4(len);
  }
  return hops;
}

/**
 * Folds IPv6 ECMP siblings listed as separate routes into one multipath
 * route. Kernels since 4.11 dump siblings as one message with RTA_MULTIPATH,
 * but older ones (and RTM_NEWROUTE notifications) list one route per path.
 * Only what the kernel itself would have made siblings is merged: unicast
 * routes with a gateway and no nexthop object, not learnt from router
 * advertisements, in the same table with the same destination and metric.
 * Routes that already carry RTA_MULTIPATH come from a kernel that groups
 * siblings, so they are left alone.
 */
export function mergeIpv6Siblings(routes: Route[]): Route[] {
  const out: Route[] = [];
  const groups = new Map<string, Route>();
  for (const r of routes) {
    const qualifies =
      r.family === 6 && r.type === 'unicast' && r.gw !== undefined && r.multipath === undefined && r.protocol !== C.RTPROT_RA;
    if (!qualifies) {
      out.push(r);
      continue;
    }
    const key = `${r.table} ${r.dst} ${r.metric}`;
    const first = groups.get(key);
    if (first === undefined) {
      groups.set(key, r);
      out.push(r);
      continue;
    }
    if (first.multipath === undefined) {
      first.multipath = [nextHopOf(first)];
      delete first.gw;
      delete first.dev;
      delete first.devName;
      delete first.onlink;
      first.flags &= ~0xff; // the per-path RTNH_F_* bits now live on the hop
    }
    first.multipath.push(nextHopOf(r));
  }
  return out;
}

function nextHopOf(r: Route): NextHop {
  // Separate sibling messages carry no weight; the kernel treats them as 1.
  const hop: NextHop = { weight: 1, flags: r.flags & 0xff };
  if (r.dev !== undefined) hop.dev = r.dev;
  if (r.devName !== undefined) hop.devName = r.devName;
  if (r.gw !== undefined) hop.gw = r.gw;
  if (r.onlink === true) hop.onlink = true;
  return hop;
}
