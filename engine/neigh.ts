// Neighbour verbs: `ip neigh …` (ARP for IPv4, NDP for IPv6) over rtnetlink,
// in the handle's namespace.
import { describe, type VerbContext } from './context.js';
import type { LinkRef, LinkVerbs } from './link.js';
import { AttrWriter } from './netlink/attributes.js';
import { decodeNeighbor, encodeNdMsg, nudNumber, type Neighbor } from './netlink/codec/neigh.js';
import * as C from './netlink/constants.js';
import { InvalidArgumentError } from './netlink/errors.js';
import { parseIpField, parseMacField } from './validate.js';

export type { Neighbor, NeighState } from './netlink/codec/neigh.js';

/** Which entry: an address on a device. A Neighbor from list() is one. */
export interface NeighKey {
  dev: LinkRef;
  ip: string;
}

/** An entry to add or replace (`ip neigh add IP lladdr MAC dev DEV nud STATE [router]`). */
export interface NeighSpec extends NeighKey {
  /** The link-layer address; the kernel insists on one for permanent, reachable and stale entries. */
  mac?: string;
  /** Default permanent: never expires, never re-resolved. */
  state?: 'permanent' | 'noarp' | 'reachable' | 'stale';
  /** NTF_ROUTER: the neighbour is an IPv6 router (`router`). */
  router?: boolean;
}

export interface NeighFilter {
  dev?: LinkRef;
  /** Both families when absent. */
  family?: 4 | 6;
}

const SETTABLE = ['permanent', 'noarp', 'reachable', 'stale'];

export class NeighVerbs {
  constructor(
    private readonly ctx: VerbContext,
    private readonly links: LinkVerbs,
  ) {}

  /**
   * Equivalent to: `ip neigh show [dev DEV] [-4|-6] nud all`: every ARP and
   * NDP entry, including failed and noarp ones (ip hides those by default).
   * Proxy entries (`ip neigh show proxy`) are not listed.
   */
  async list(filter: NeighFilter = {}): Promise<Neighbor[]> {
    const op = 'ip neigh show';
    const object = describe(this.ctx, filter.dev === undefined ? 'all devices' : `dev ${label(filter.dev)}`);
    const index = filter.dev === undefined ? undefined : await this.links.indexFor(op, object, filter.dev);
    const family = filter.family === 4 ? C.AF_INET : filter.family === 6 ? C.AF_INET6 : C.AF_UNSPEC;
    const attrs = new AttrWriter();
    if (index !== undefined) attrs.u32(C.NDA_IFINDEX, index); // a dump filter under NETLINK_GET_STRICT_CHK
    const body = Buffer.concat([encodeNdMsg({ family }), attrs.toBuffer()]);
    const replies = await this.ctx.conn.dump(C.RTM_GETNEIGH, body, { op, object });
    const entries = replies
      .filter((m) => m.type === C.RTM_NEWNEIGH)
      .filter((m) => {
        const f = m.payload.readUInt8(0);
        return f === C.AF_INET || f === C.AF_INET6; // the table itself, never another family's
      })
      .map((m) => decodeNeighbor(m.payload))
      .filter((n) => (filter.family === undefined || n.family === filter.family) && (index === undefined || n.dev === index));
    if (entries.length === 0) return entries;
    const names = await this.links.names();
    for (const n of entries) {
      const name = names.get(n.dev);
      if (name !== undefined) n.devName = name;
    }
    return entries;
  }

  /** Equivalent to: `ip neigh add IP lladdr MAC dev DEV nud permanent`. Throws ExistsError when present. */
  add(neigh: NeighSpec): Promise<void> {
    return this.change('ip neigh add', C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_EXCL, neigh);
  }

  /** Equivalent to: `ip neigh replace IP lladdr MAC dev DEV nud permanent`: creates or overwrites. */
  replace(neigh: NeighSpec): Promise<void> {
    return this.change('ip neigh replace', C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_REPLACE, neigh);
  }

  /** Equivalent to: `ip neigh del IP dev DEV`. Throws NotFoundError when absent. */
  delete(neigh: NeighKey): Promise<void> {
    return this.change('ip neigh del', C.RTM_DELNEIGH, 0, { dev: neigh.dev, ip: neigh.ip });
  }

  private async change(op: string, type: number, flags: number, spec: NeighSpec): Promise<void> {
    const object = describe(this.ctx, neighText(spec));
    if (spec.dev === undefined) throw new InvalidArgumentError(op, object, 'dev is required');
    const ip = parseIpField(op, object, 'ip', spec.ip);
    const mac = spec.mac === undefined ? undefined : parseMacField(op, object, 'mac', spec.mac);
    const state = spec.state ?? 'permanent';
    if (!SETTABLE.includes(state)) {
      throw new InvalidArgumentError(op, object, `state must be one of ${SETTABLE.join(', ')}, got "${String(state)}"`);
    }
    const index = await this.links.indexFor(op, object, spec.dev);
    const attrs = new AttrWriter().bytes(C.NDA_DST, ip.bytes);
    if (mac !== undefined) attrs.bytes(C.NDA_LLADDR, mac);
    const header = encodeNdMsg({
      family: ip.family === 4 ? C.AF_INET : C.AF_INET6,
      index,
      state: type === C.RTM_DELNEIGH ? 0 : nudNumber(state),
      flags: spec.router === true ? C.NTF_ROUTER : 0,
    });
    await this.ctx.conn.request(type, flags, Buffer.concat([header, attrs.toBuffer()]), { op, object });
  }
}

function label(dev: LinkRef): string {
  return typeof dev === 'object' ? dev.name : typeof dev === 'number' ? `if${dev}` : dev;
}

/** The entry in ip's words, for errors: `10.0.0.2 lladdr 02:… dev eth0`. */
function neighText(n: NeighSpec): string {
  const parts = [String(n.ip)];
  if (n.mac !== undefined) parts.push('lladdr', n.mac);
  if (n.dev !== undefined) parts.push('dev', label(n.dev));
  return parts.join(' ');
}
