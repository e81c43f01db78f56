// Route verbs: `ip route …` over rtnetlink, in the handle's namespace.
import { describe, type VerbContext } from './context.js';
import type { LinkRef, LinkVerbs } from './link.js';
import { AttrWriter } from './netlink/attributes.js';
import {
  decodeRoute,
  encodeMultipath,
  encodeRtMsg,
  mergeIpv6Siblings,
  scopeNumber,
  typeNumber,
  type Route,
  type RouteScope,
  type RouteType,
  type RtNextHop,
} from './netlink/codec/route.js';
import * as C from './netlink/constants.js';
import { InvalidArgumentError, NotFoundError } from './netlink/errors.js';
import { checkRange, formatIp, parseCidrField, parseIpField, type Cidr } from './validate.js';

export type { NextHop, Route, RouteScope, RouteType } from './netlink/codec/route.js';

/** One path of a multipath route (`nexthop via GW dev DEV weight W onlink`). */
export interface NextHopSpec {
  gw?: string;
  dev?: LinkRef;
  /** 1..256, default 1. */
  weight?: number;
  onlink?: boolean;
}

/**
 * A route to add, replace or delete. A Route from list() is one too, so
 * `for (const r of await h.route.list({ dev })) await h.route.delete(r)` works.
 */
export interface RouteSpec {
  /** `10.1.0.0/16`, `2001:db8::/64`, or `default`. Host bits must be zero. */
  dst: string;
  /** Needed only for `default` without any address to tell; 4 otherwise, as ip does. */
  family?: 4 | 6;
  gw?: string;
  dev?: LinkRef;
  /** Preferred source address (`src`). */
  src?: string;
  /** Default as ip picks it: link for a unicast route without gateway, host for local, else universe. */
  scope?: RouteScope;
  /** Use the gateway even if no connected route covers it (`onlink`). */
  onlink?: boolean;
  /** Table id; main (254) when absent. */
  table?: number;
  metric?: number;
  /** RTPROT_*; ip's default `boot` (3) when adding. */
  protocol?: number;
  /** Default unicast. */
  type?: RouteType;
  /** Path MTU (`mtu` in RTA_METRICS). */
  mtu?: number;
  multipath?: NextHopSpec[];
}

export interface RouteFilter {
  /** A table id or 'all'; main (254) when absent, as `ip route show`. */
  table?: number | 'all';
  /** Exact destination (`to exact DST`): a CIDR or `default`. */
  dst?: string;
  /** Routes out of this device, including multipath routes with a path through it. */
  dev?: LinkRef;
  /** Both families when absent. */
  family?: 4 | 6;
}

export interface RouteGetOptions {
  /** Source address of the lookup (`from SRC`). */
  src?: string;
  /** Output device to force (`oif DEV`). */
  dev?: LinkRef;
}

const ENOENT = 2;

export class RouteVerbs {
  constructor(
    private readonly ctx: VerbContext,
    private readonly links: LinkVerbs,
  ) {}

  /**
   * Equivalent to: `ip route show [table T|all] [dev DEV] [to exact DST]` for
   * IPv4 and IPv6 (or one family). The kernel is asked to filter by table and
   * device, and the result is filtered here again: older kernels ignore dump
   * filters. Cached exceptions (RTM_F_CLONED) are not routes and are left out.
   */
  async list(filter: RouteFilter = {}): Promise<Route[]> {
    const op = 'ip route show';
    const object = describe(this.ctx, filterText(filter));
    const table = filter.table === 'all' ? undefined : (filter.table ?? C.RT_TABLE_MAIN);
    if (table !== undefined) checkRange(op, object, 'table', table, 1, 0xffffffff);
    const dst = filter.dst === undefined ? undefined : normalizeDst(op, object, filter.dst);
    const oif = filter.dev === undefined ? undefined : await this.links.indexFor(op, object, filter.dev);
    const families = filter.family === undefined ? [4, 6] : [filter.family];

    const routes: Route[] = [];
    for (const family of families) {
      const attrs = new AttrWriter();
      if (table !== undefined) attrs.u32(C.RTA_TABLE, table);
      if (oif !== undefined) attrs.u32(C.RTA_OIF, oif);
      const body = Buffer.concat([encodeRtMsg({ family: family === 4 ? C.AF_INET : C.AF_INET6 }), attrs.toBuffer()]);
      let replies;
      try {
        replies = await this.ctx.conn.dump(C.RTM_GETROUTE, body, { op, object });
      } catch (e) {
        // A family-specific dump of a table that was never created fails with ENOENT: it is empty.
        if (table !== undefined && e instanceof NotFoundError && e.errno === ENOENT) continue;
        throw e;
      }
      for (const m of replies) if (m.type === C.RTM_NEWROUTE) routes.push(decodeRoute(m.payload));
    }

    const matched = mergeIpv6Siblings(routes).filter(
      (r) =>
        (r.flags & C.RTM_F_CLONED) === 0 &&
        (table === undefined || r.table === table) &&
        (dst === undefined || (r.family === dst.family || dst.family === undefined) && r.dst === dst.text) &&
        (oif === undefined || r.dev === oif || (r.multipath ?? []).some((h) => h.dev === oif)),
    );
    return this.name(matched);
  }

  /** Equivalent to: `ip route add DST [via GW] [dev DEV] … [table T] [metric M]`. Throws ExistsError when present. */
  add(route: RouteSpec): Promise<void> {
    return this.change('ip route add', C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_EXCL, route);
  }

  /** Equivalent to: `ip route replace DST …`: creates it, or changes the route with that destination, table and metric. */
  replace(route: RouteSpec): Promise<void> {
    return this.change('ip route replace', C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_REPLACE, route);
  }

  /**
   * Equivalent to: `ip route del DST [via GW] [dev DEV] [table T] [metric M]`.
   * What is given must match; what is left out matches anything. Throws
   * NotFoundError (ESRCH) when no route matches.
   */
  delete(route: RouteSpec): Promise<void> {
    return this.change('ip route del', C.RTM_DELROUTE, 0, route);
  }

  /** Equivalent to: `ip route get ADDR [from SRC] [oif DEV]`: the route the kernel would use. */
  async get(address: string, options: RouteGetOptions = {}): Promise<Route> {
    const op = 'ip route get';
    const object = describe(this.ctx, address);
    const dst = parseIpField(op, object, 'address', address);
    const src = options.src === undefined ? undefined : parseIpField(op, object, 'src', options.src);
    if (src !== undefined && src.family !== dst.family) {
      throw new InvalidArgumentError(op, object, `src: ${options.src} is IPv${src.family} but the address is IPv${dst.family}`);
    }
    const oif = options.dev === undefined ? undefined : await this.links.indexFor(op, object, options.dev);
    const attrs = new AttrWriter().bytes(C.RTA_DST, dst.bytes);
    if (src !== undefined) attrs.bytes(C.RTA_SRC, src.bytes);
    if (oif !== undefined) attrs.u32(C.RTA_OIF, oif);
    const header = encodeRtMsg({ family: dst.family === 4 ? C.AF_INET : C.AF_INET6, dstLen: dst.prefixLen, srcLen: src?.prefixLen ?? 0 });
    const replies = await this.ctx.conn.request(C.RTM_GETROUTE, 0, Buffer.concat([header, attrs.toBuffer()]), { op, object });
    const reply = replies.find((m) => m.type === C.RTM_NEWROUTE);
    if (reply === undefined) throw new NotFoundError(op, object, 3 /* ESRCH */, 'no route in the reply');
    return (await this.name([decodeRoute(reply.payload)]))[0]!;
  }

  private async change(op: string, type: number, flags: number, route: RouteSpec): Promise<void> {
    const object = describe(this.ctx, routeText(route));
    const del = type === C.RTM_DELROUTE;
    const v = validate(op, object, route);

    // Everything is checked before the first request, so bad input sends nothing.
    const oif = route.dev === undefined ? undefined : await this.links.indexFor(op, object, route.dev);
    const hops: RtNextHop[] = [];
    for (const [i, hop] of (route.multipath ?? []).entries()) {
      hops.push({
        ifindex: hop.dev === undefined ? 0 : await this.links.indexFor(op, object, hop.dev),
        gw: v.hopGws[i]?.bytes,
        weight: hop.weight ?? 1,
        flags: hop.onlink === true ? C.RTNH_F_ONLINK : 0,
      });
    }

    const attrs = new AttrWriter();
    if (v.dst !== undefined) attrs.bytes(C.RTA_DST, v.dst.bytes);
    if (route.table !== undefined) attrs.u32(C.RTA_TABLE, route.table);
    if (v.src !== undefined) attrs.bytes(C.RTA_PREFSRC, v.src.bytes);
    if (v.gw !== undefined) attrs.bytes(C.RTA_GATEWAY, v.gw.bytes);
    if (oif !== undefined) attrs.u32(C.RTA_OIF, oif);
    if (route.metric !== undefined) attrs.u32(C.RTA_PRIORITY, route.metric);
    if (route.mtu !== undefined) attrs.nest(C.RTA_METRICS, (m) => m.u32(C.RTAX_MTU, route.mtu!));
    if (hops.length > 0) attrs.bytes(C.RTA_MULTIPATH, encodeMultipath(hops));

    const header = encodeRtMsg({
      family: v.family === 4 ? C.AF_INET : C.AF_INET6,
      dstLen: v.dst?.prefixLen ?? 0,
      // rtm_table has 8 bits; RTA_TABLE above carries the real id.
      table: route.table === undefined ? C.RT_TABLE_MAIN : route.table < 256 ? route.table : C.RT_TABLE_UNSPEC,
      // For a delete, zero protocol/type and scope `nowhere` mean "any", as ip sends them.
      protocol: route.protocol ?? (del ? C.RTPROT_UNSPEC : C.RTPROT_BOOT),
      scope: v.scope ?? (del ? C.RT_SCOPE_NOWHERE : defaultScope(v.type, v.gw !== undefined || hops.some((h) => h.gw !== undefined))),
      type: v.type ?? (del ? C.RTN_UNSPEC : C.RTN_UNICAST),
      flags: route.onlink === true ? C.RTNH_F_ONLINK : 0,
    });
    await this.ctx.conn.request(type, flags, Buffer.concat([header, attrs.toBuffer()]), { op, object });
  }

  /** Fills in device names (one link dump per call). */
  private async name(routes: Route[]): Promise<Route[]> {
    if (!routes.some((r) => r.dev !== undefined || r.multipath !== undefined)) return routes;
    const names = await this.links.names();
    for (const r of routes) {
      const name = r.dev === undefined ? undefined : names.get(r.dev);
      if (name !== undefined) r.devName = name;
      for (const h of r.multipath ?? []) {
        const hopName = h.dev === undefined ? undefined : names.get(h.dev);
        if (hopName !== undefined) h.devName = hopName;
      }
    }
    return routes;
  }
}

interface Validated {
  family: 4 | 6;
  dst?: Cidr;
  gw?: Cidr;
  src?: Cidr;
  hopGws: Array<Cidr | undefined>;
  scope?: number;
  type?: number;
}

/** Checks every field of `route` and works out its family; throws InvalidArgumentError naming the field. */
function validate(op: string, object: string, route: RouteSpec): Validated {
  const fail = (reason: string): never => {
    throw new InvalidArgumentError(op, object, reason);
  };
  if (typeof route.dst !== 'string') fail('dst is required (a CIDR or "default")');
  const dst = isDefault(route.dst) ? undefined : parseCidrField(op, object, 'dst', route.dst);
  if (dst !== undefined) checkHostBits(op, object, dst);
  const gw = route.gw === undefined ? undefined : parseIpField(op, object, 'gw', route.gw);
  const src = route.src === undefined ? undefined : parseIpField(op, object, 'src', route.src);
  const hopGws = (route.multipath ?? []).map((h, i) => (h.gw === undefined ? undefined : parseIpField(op, object, `multipath[${i}].gw`, h.gw)));

  // Every address must be of one family (ferry does not write RTA_VIA).
  const known: Array<[string, 4 | 6]> = [];
  if (route.family !== undefined) {
    if (route.family !== 4 && route.family !== 6) fail(`family must be 4 or 6, got ${String(route.family)}`);
    known.push(['family', route.family]);
  }
  if (dst !== undefined) known.push(['dst', dst.family]);
  if (route.dst === '0.0.0.0/0') known.push(['dst', 4]);
  if (route.dst === '::/0') known.push(['dst', 6]);
  if (gw !== undefined) known.push(['gw', gw.family]);
  if (src !== undefined) known.push(['src', src.family]);
  hopGws.forEach((g, i) => g !== undefined && known.push([`multipath[${i}].gw`, g.family]));
  const family = known[0]?.[1] ?? 4;
  for (const [field, f] of known) {
    if (f !== family) fail(`${field} is IPv${f} but ${known[0]![0]} is IPv${family}`);
  }

  if (route.table !== undefined) checkRange(op, object, 'table', route.table, 1, 0xffffffff);
  if (route.metric !== undefined) checkRange(op, object, 'metric', route.metric, 0, 0xffffffff);
  if (route.protocol !== undefined) checkRange(op, object, 'protocol', route.protocol, 0, 255);
  if (route.mtu !== undefined) checkRange(op, object, 'mtu', route.mtu, 68, 0xffffffff);
  const scope = route.scope === undefined ? undefined : scopeNumber(route.scope);
  if (route.scope !== undefined && (scope === undefined || scope < 0 || scope > 255 || !Number.isInteger(scope))) {
    fail(`scope must be universe, site, link, host, nowhere or 0..255, got ${String(route.scope)}`);
  }
  const type = route.type === undefined ? undefined : typeNumber(route.type);
  if (route.type !== undefined && (type === undefined || type < 0 || type > 255 || !Number.isInteger(type))) {
    fail(`type must be a route type such as unicast, local, blackhole, unreachable, got ${String(route.type)}`);
  }
  if (route.multipath !== undefined) {
    if (route.multipath.length === 0) fail('multipath needs at least one path');
    if (route.gw !== undefined || route.dev !== undefined || route.onlink !== undefined) {
      fail('gw, dev and onlink go in each multipath path, not on a multipath route');
    }
    route.multipath.forEach((h, i) => {
      if (h.weight !== undefined) checkRange(op, object, `multipath[${i}].weight`, h.weight, 1, 256);
    });
  }
  const v: Validated = { family, hopGws };
  if (dst !== undefined) v.dst = dst;
  if (gw !== undefined) v.gw = gw;
  if (src !== undefined) v.src = src;
  if (scope !== undefined) v.scope = scope;
  if (type !== undefined) v.type = type;
  return v;
}

/** `default`, `0.0.0.0/0` and `::/0` all name a default route (decoded routes say `default`). */
export function isDefault(dst: string): boolean {
  return dst === 'default' || dst === '0.0.0.0/0' || dst === '::/0';
}

/** The kernel refuses host bits on IPv4 and silently clears them on IPv6; ferry refuses both. */
function checkHostBits(op: string, object: string, dst: Cidr): void {
  if (!networkBytes(dst).equals(dst.bytes)) {
    throw new InvalidArgumentError(op, object, `dst: ${dst.address}/${dst.prefixLen} has host bits set`);
  }
}

/** The address with every bit past the prefix cleared. */
function networkBytes(c: Cidr): Buffer {
  const masked = Buffer.from(c.bytes);
  for (let bit = c.prefixLen; bit < masked.length * 8; bit++) masked[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return masked;
}

/** As iproute2 picks the scope when none is given. */
function defaultScope(type: number | undefined, hasGateway: boolean): number {
  switch (type ?? C.RTN_UNICAST) {
    case C.RTN_LOCAL:
    case C.RTN_NAT:
      return C.RT_SCOPE_HOST;
    case C.RTN_BROADCAST:
    case C.RTN_MULTICAST:
    case C.RTN_ANYCAST:
      return C.RT_SCOPE_LINK;
    case C.RTN_UNICAST:
    case C.RTN_UNSPEC:
      return hasGateway ? C.RT_SCOPE_UNIVERSE : C.RT_SCOPE_LINK;
    default:
      return C.RT_SCOPE_UNIVERSE;
  }
}

/** A destination as decodeRoute() prints it, for exact matching. */
function normalizeDst(op: string, object: string, text: string): { text: string; family?: 4 | 6 } {
  if (text === 'default') return { text: 'default' };
  if (text === '0.0.0.0/0') return { text: 'default', family: 4 };
  if (text === '::/0') return { text: 'default', family: 6 };
  const c = parseCidrField(op, object, 'dst', text);
  if (c.prefixLen === 0) return { text: 'default', family: c.family };
  return { text: `${formatIp(networkBytes(c))}/${c.prefixLen}`, family: c.family };
}

function devText(dev: LinkRef | undefined): string | undefined {
  if (dev === undefined) return undefined;
  return typeof dev === 'object' ? dev.name : typeof dev === 'number' ? `if${dev}` : dev;
}

/** The route in ip's words, for errors: `blackhole 10.1.0.0/16 via 10.0.0.1 dev eth0 table 100`. */
export function routeText(r: RouteSpec): string {
  const parts: string[] = [];
  if (r.type !== undefined && r.type !== 'unicast') parts.push(String(r.type));
  parts.push(String(r.dst));
  if (r.gw !== undefined) parts.push('via', r.gw);
  const dev = devText(r.dev);
  if (dev !== undefined) parts.push('dev', dev);
  if (r.src !== undefined) parts.push('src', r.src);
  if (r.table !== undefined) parts.push('table', String(r.table));
  if (r.metric !== undefined) parts.push('metric', String(r.metric));
  if (r.onlink === true) parts.push('onlink');
  for (const h of r.multipath ?? []) {
    parts.push('nexthop');
    if (h.gw !== undefined) parts.push('via', h.gw);
    const d = devText(h.dev);
    if (d !== undefined) parts.push('dev', d);
    if (h.weight !== undefined) parts.push('weight', String(h.weight));
    if (h.onlink === true) parts.push('onlink');
  }
  return parts.join(' ');
}

function filterText(f: RouteFilter): string {
  const parts: string[] = [];
  if (f.family !== undefined) parts.push(`-${f.family}`);
  parts.push('table', String(f.table ?? 'main'));
  const dev = devText(f.dev);
  if (dev !== undefined) parts.push('dev', dev);
  if (f.dst !== undefined) parts.push('to exact', f.dst);
  return parts.join(' ');
}
