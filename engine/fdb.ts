// Bridge FDB verbs: `bridge fdb …` over rtnetlink (AF_BRIDGE neighbour
// messages), in the handle's namespace. The same verbs program a bridge's
// forwarding table (`master`) and a vxlan device's remote VTEPs (`self`).
import { describe, type VerbContext } from './context.js';
import type { LinkRef, LinkVerbs } from './link.js';
import { AttrWriter } from './netlink/attributes.js';
import { decodeFdbEntry, encodeNdMsg, type FdbEntry } from './netlink/codec/neigh.js';
import * as C from './netlink/constants.js';
import { InvalidArgumentError } from './netlink/errors.js';
import { checkRange, parseIpField, parseMacField } from './validate.js';

export type { FdbEntry, FdbState } from './netlink/codec/neigh.js';

/** Which entry (or, for vxlan, which remote of an entry). An FdbEntry from list() is one. */
export interface FdbKey {
  dev: LinkRef;
  mac: string;
  /** Remote VTEP IP of a vxlan entry; deleting with it removes only that remote. */
  dst?: string;
  /** VXLAN network identifier of the remote, 0..2^24-1; the device's own by default. */
  vni?: number;
  /** UDP port of the remote; the device's own by default. */
  port?: number;
  /** The entry is in the device's own table (`self`). */
  self?: boolean;
  /** The entry is in the master bridge's table (`master`). Neither flag: self, as bridge(8) does. */
  master?: boolean;
  /** 1..4094 on a VLAN-filtering bridge. */
  vlan?: number;
}

/** An entry to add: `bridge fdb add MAC dev DEV [dst IP] [vni N] [port P] [self|master] [permanent]`. */
export interface FdbSpec extends FdbKey {
  /**
   * Default true: `permanent` (on a bridge: a local address, delivered to the
   * host). false: `static` (forwarded to dev, never aged out).
   */
  permanent?: boolean;
}

export interface FdbFilter {
  /** Entries of this port or device (`brport DEV`). */
  dev?: LinkRef;
  /** Entries of this bridge and its ports (`br BRIDGE`). */
  master?: LinkRef;
}

export class FdbVerbs {
  constructor(
    private readonly ctx: VerbContext,
    private readonly links: LinkVerbs,
  ) {}

  /**
   * Equivalent to: `bridge fdb show [br BRIDGE] [brport DEV]`. Besides bridge
   * and vxlan entries this lists each device's unicast and multicast address
   * lists (`self permanent`), as bridge(8) does.
   */
  async list(filter: FdbFilter = {}): Promise<FdbEntry[]> {
    const op = 'bridge fdb show';
    const what: string[] = [];
    if (filter.master !== undefined) what.push(`br ${label(filter.master)}`);
    if (filter.dev !== undefined) what.push(`brport ${label(filter.dev)}`);
    const object = describe(this.ctx, what.length === 0 ? 'all devices' : what.join(' '));
    const port = filter.dev === undefined ? undefined : await this.links.indexFor(op, object, filter.dev);
    const bridge = filter.master === undefined ? undefined : await this.links.indexFor(op, object, filter.master);
    const attrs = new AttrWriter();
    if (port !== undefined) attrs.u32(C.NDA_IFINDEX, port);
    if (bridge !== undefined) attrs.u32(C.NDA_MASTER, bridge);
    const body = Buffer.concat([encodeNdMsg({ family: C.AF_BRIDGE }), attrs.toBuffer()]);
    const replies = await this.ctx.conn.dump(C.RTM_GETNEIGH, body, { op, object });
    const decoded = replies
      .filter((m) => m.type === C.RTM_NEWNEIGH && m.payload.readUInt8(0) === C.AF_BRIDGE)
      .map((m) => decodeFdbEntry(m.payload));
    if (decoded.length === 0) return decoded;
    const links = new Map((await this.links.list()).map((l) => [l.index, l]));
    // As the kernel filters: a port's own entries, or the bridge's, its ports' and the bridge device's own.
    const entries = decoded.filter(
      (e) =>
        (port === undefined || e.dev === port) &&
        (bridge === undefined || e.bridge === bridge || e.dev === bridge || links.get(e.dev)?.master === bridge),
    );
    for (const e of entries) {
      const name = links.get(e.dev)?.name;
      if (name !== undefined) e.devName = name;
      const bridgeName = e.bridge === undefined ? undefined : links.get(e.bridge)?.name;
      if (bridgeName !== undefined) e.bridgeName = bridgeName;
    }
    return entries;
  }

  /** Equivalent to: `bridge fdb add MAC dev DEV [dst IP] [self|master] [permanent]`. Throws ExistsError when present. */
  add(entry: FdbSpec): Promise<void> {
    return this.change('bridge fdb add', C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_EXCL, entry);
  }

  /**
   * Equivalent to: `bridge fdb append MAC dev DEV dst IP self permanent`: adds
   * one more remote to a vxlan entry; with the all-zero MAC, a VTEP that gets
   * every broadcast, unknown-unicast and multicast frame (head-end replication).
   */
  append(entry: FdbSpec): Promise<void> {
    return this.change('bridge fdb append', C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_APPEND, entry);
  }

  /** Equivalent to: `bridge fdb replace MAC dev DEV …`: creates or overwrites. */
  replace(entry: FdbSpec): Promise<void> {
    return this.change('bridge fdb replace', C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_REPLACE, entry);
  }

  /** Equivalent to: `bridge fdb del MAC dev DEV [dst IP] [self|master]`. Throws NotFoundError when absent. */
  delete(entry: FdbKey): Promise<void> {
    return this.change('bridge fdb del', C.RTM_DELNEIGH, 0, entry);
  }

  private async change(op: string, type: number, flags: number, spec: FdbSpec): Promise<void> {
    const object = describe(this.ctx, fdbText(spec));
    if (spec.dev === undefined) throw new InvalidArgumentError(op, object, 'dev is required');
    const mac = parseMacField(op, object, 'mac', spec.mac);
    const dst = spec.dst === undefined ? undefined : parseIpField(op, object, 'dst', spec.dst);
    if (spec.vni !== undefined) checkRange(op, object, 'vni', spec.vni, 0, 0xffffff);
    if (spec.port !== undefined) checkRange(op, object, 'port', spec.port, 1, 65535);
    if (spec.vlan !== undefined) checkRange(op, object, 'vlan', spec.vlan, 1, 4094);
    const index = await this.links.indexFor(op, object, spec.dev);

    const attrs = new AttrWriter().bytes(C.NDA_LLADDR, mac);
    if (dst !== undefined) attrs.bytes(C.NDA_DST, dst.bytes);
    if (spec.vlan !== undefined) attrs.u16(C.NDA_VLAN, spec.vlan);
    if (spec.port !== undefined) attrs.be16(C.NDA_PORT, spec.port);
    if (spec.vni !== undefined) attrs.u32(C.NDA_VNI, spec.vni);
    let ntf = (spec.self === true ? C.NTF_SELF : 0) | (spec.master === true ? C.NTF_MASTER : 0);
    if (ntf === 0) ntf = C.NTF_SELF;
    // As bridge(8): NUD_NOARP always, plus PERMANENT (a local entry) or
    // REACHABLE (static). vxlan refuses an entry with neither of those two.
    const nud = C.NUD_NOARP | (spec.permanent === false ? C.NUD_REACHABLE : C.NUD_PERMANENT);
    const header = encodeNdMsg({ family: C.AF_BRIDGE, index, state: nud, flags: ntf });
    await this.ctx.conn.request(type, flags, Buffer.concat([header, attrs.toBuffer()]), { op, object });
  }
}

function label(dev: LinkRef): string {
  return typeof dev === 'object' ? dev.name : typeof dev === 'number' ? `if${dev}` : dev;
}

/** The entry in bridge(8)'s words, for errors: `00:00:00:00:00:00 dev vx0 dst 192.0.2.2 self`. */
function fdbText(e: FdbSpec): string {
  const parts = [String(e.mac)];
  if (e.dev !== undefined) parts.push('dev', label(e.dev));
  if (e.dst !== undefined) parts.push('dst', e.dst);
  if (e.vni !== undefined) parts.push('vni', String(e.vni));
  if (e.port !== undefined) parts.push('port', String(e.port));
  if (e.vlan !== undefined) parts.push('vlan', String(e.vlan));
  if (e.self === true) parts.push('self');
  if (e.master === true) parts.push('master');
  return parts.join(' ');
}
