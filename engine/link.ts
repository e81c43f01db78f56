// Link verbs: `ip link …` over rtnetlink, in the handle's namespace.
import { describe, type VerbContext } from './context.js';
import { AttrWriter } from './netlink/attributes.js';
import { decodeLink, encodeIfInfoMsg, type Link } from './netlink/codec/link.js';
import * as C from './netlink/constants.js';
import { InvalidArgumentError, LinkNotFoundError } from './netlink/errors.js';
import { subscribe, type Subscription } from './netlink/events.js';
import type { Netns } from './netns/netns.js';
import { checkLinkName, checkRange, parseIp, parseMac } from './validate.js';

export type { Link } from './netlink/codec/link.js';

/** A link by name, by index, or as returned by a previous call. */
export type LinkRef = string | number | Link;

interface CommonSpec {
  name: string;
  mtu?: number;
  mac?: string;
  txqlen?: number;
  /** Bring it up in the same request (`ip link add … up`). */
  up?: boolean;
  /** Enslave to this bridge in the same request (`ip link add … master br0`). */
  master?: LinkRef;
}

export interface VethSpec extends CommonSpec {
  kind: 'veth';
  /** The other end; created directly in `netns` when given (`peer name X netns Y`). */
  peer: { name: string; netns?: Netns; mac?: string; mtu?: number };
}

export interface BridgeSpec extends CommonSpec {
  kind: 'bridge';
  stp?: boolean;
  vlanFiltering?: boolean;
}

export interface VxlanSpec extends CommonSpec {
  kind: 'vxlan';
  /** VXLAN network identifier, 0..2^24-1. */
  vni: number;
  /** Source address of encapsulated packets. */
  local?: string;
  /** UDP destination port; the kernel default is 8472 when absent (use 4789 for IANA). */
  port?: number;
  /** Learn remote VTEPs from traffic; off by default, as flannel runs it (FDB is programmed). */
  learning?: boolean;
  /** Underlay device. */
  dev?: LinkRef;
}

export interface DummySpec extends CommonSpec {
  kind: 'dummy';
}

export type LinkSpec = VethSpec | BridgeSpec | VxlanSpec | DummySpec;

export interface LinkEvent {
  /** `new` for an added or changed link, `delete` for a removed one (as `ip monitor link`). */
  action: 'new' | 'delete';
  link: Link;
}

export class LinkVerbs {
  constructor(private readonly ctx: VerbContext) {}

  /** Equivalent to: `ip -d link show`. */
  async list(): Promise<Link[]> {
    const body = Buffer.concat([encodeIfInfoMsg({}), new AttrWriter().u32(C.IFLA_EXT_MASK, C.RTEXT_FILTER_SKIP_STATS).toBuffer()]);
    const replies = await this.ctx.conn.dump(C.RTM_GETLINK, body, { op: 'ip link show', object: `netns ${this.ctx.netns.name}` });
    return replies.filter((m) => m.type === C.RTM_NEWLINK).map((m) => decodeLink(m.payload));
  }

  /** Equivalent to: `ip -d link show dev NAME` (or by index). Throws LinkNotFoundError. */
  async get(ref: LinkRef): Promise<Link> {
    if (typeof ref === 'object') ref = ref.index;
    const attrs = new AttrWriter().u32(C.IFLA_EXT_MASK, C.RTEXT_FILTER_SKIP_STATS);
    if (typeof ref === 'string') {
      checkLinkName('ip link show', ref);
      attrs.string(C.IFLA_IFNAME, ref);
    }
    const body = Buffer.concat([encodeIfInfoMsg({ index: typeof ref === 'number' ? ref : 0 }), attrs.toBuffer()]);
    const replies = await this.ctx.conn.request(C.RTM_GETLINK, 0, body, { op: 'ip link show', object: this.name(ref) });
    const reply = replies.find((m) => m.type === C.RTM_NEWLINK);
    if (reply === undefined) throw new LinkNotFoundError('ip link show', this.name(ref), 19 /* ENODEV */);
    return decodeLink(reply.payload);
  }

  /** Like get() but undefined when the link does not exist. */
  async find(ref: LinkRef): Promise<Link | undefined> {
    try {
      return await this.get(ref);
    } catch (e) {
      if (e instanceof LinkNotFoundError) return undefined;
      throw e;
    }
  }

  /**
   * Equivalent to: `ip link add NAME [mtu M] [address MAC] [master BR] [up] type KIND …`.
   * One atomic request: either everything is created or nothing is.
   */
  async add(spec: LinkSpec): Promise<Link> {
    const op = `ip link add type ${spec.kind}`;
    checkLinkName(op, spec.name);
    // Names of other links are resolved first so the request itself stays atomic.
    const master = spec.master === undefined ? undefined : await this.indexOf(spec.master);
    const underlay = spec.kind === 'vxlan' && spec.dev !== undefined ? await this.indexOf(spec.dev) : undefined;
    const attrs = new AttrWriter();
    this.commonAttrs(op, spec, master, attrs);
    attrs.nest(C.IFLA_LINKINFO, (info) => {
      info.string(C.IFLA_INFO_KIND, spec.kind);
      this.kindData(op, spec, underlay, info);
    });
    const up = spec.up === true ? C.IFF_UP : 0;
    const body = Buffer.concat([encodeIfInfoMsg({ flags: up, change: up }), attrs.toBuffer()]);
    await this.ctx.conn.request(C.RTM_NEWLINK, C.NLM_F_CREATE | C.NLM_F_EXCL, body, { op, object: this.name(spec.name) });
    return this.get(spec.name);
  }

  /** Equivalent to: `ip link set dev NAME up`. */
  setUp(ref: LinkRef): Promise<void> {
    return this.set(ref, 'up', { flags: C.IFF_UP, change: C.IFF_UP });
  }

  /** Equivalent to: `ip link set dev NAME down`. */
  setDown(ref: LinkRef): Promise<void> {
    return this.set(ref, 'down', { flags: 0, change: C.IFF_UP });
  }

  /** Equivalent to: `ip link set dev NAME mtu MTU`. */
  setMtu(ref: LinkRef, mtu: number): Promise<void> {
    checkRange('ip link set mtu', this.name(ref), 'mtu', mtu, 68, 65535);
    return this.set(ref, `mtu ${mtu}`, {}, (a) => a.u32(C.IFLA_MTU, mtu));
  }

  /** Equivalent to: `ip link set dev NAME address MAC`. */
  setMac(ref: LinkRef, mac: string): Promise<void> {
    const bytes = parseMac('ip link set address', this.name(ref), mac);
    return this.set(ref, `address ${mac}`, {}, (a) => a.bytes(C.IFLA_ADDRESS, bytes));
  }

  /** Equivalent to: `ip link set dev NAME master BRIDGE`, or `nomaster` when `master` is null. */
  async setMaster(ref: LinkRef, master: LinkRef | null): Promise<void> {
    const index = master === null ? 0 : await this.indexOf(master);
    return this.set(ref, master === null ? 'nomaster' : `master ${this.label(master)}`, {}, (a) => a.u32(C.IFLA_MASTER, index));
  }

  /** Equivalent to: `ip link set dev NAME promisc on|off`. */
  setPromisc(ref: LinkRef, on: boolean): Promise<void> {
    return this.set(ref, `promisc ${on ? 'on' : 'off'}`, { flags: on ? C.IFF_PROMISC : 0, change: C.IFF_PROMISC });
  }

  /** Equivalent to: `ip link set dev NAME type bridge_slave hairpin on|off` (the link must be a bridge port). */
  setHairpin(ref: LinkRef, on: boolean): Promise<void> {
    return this.set(ref, `type bridge_slave hairpin ${on ? 'on' : 'off'}`, {}, (a) =>
      a.nest(C.IFLA_LINKINFO, (info) => {
        info.string(C.IFLA_INFO_SLAVE_KIND, 'bridge');
        info.nest(C.IFLA_INFO_SLAVE_DATA, (data) => data.u8(C.IFLA_BRPORT_MODE, on ? 1 : 0));
      }),
    );
  }

  /** Equivalent to: `ip link set dev NAME netns NS`. The link then lives in (and is named in) `netns`. */
  setNetns(ref: LinkRef, netns: Netns): Promise<void> {
    return this.set(ref, `netns ${netns.name}`, {}, (a) => a.u32(C.IFLA_NET_NS_FD, netns.fd));
  }

  /** Equivalent to: `ip link set dev NAME name NEWNAME`. */
  async setName(ref: LinkRef, newName: string): Promise<void> {
    checkLinkName('ip link set name', newName);
    const index = await this.indexOf(ref);
    return this.set(index, `name ${newName}`, {}, (a) => a.string(C.IFLA_IFNAME, newName));
  }

  /** Equivalent to: `ip link del dev NAME`. Deleting one end of a veth deletes both. */
  async delete(ref: LinkRef): Promise<void> {
    const body = await this.target('ip link del', ref);
    await this.ctx.conn.request(C.RTM_DELLINK, 0, body, { op: 'ip link del', object: this.name(ref) });
  }

  /** Equivalent to: `ip monitor link`. Call close() on the result to stop. */
  subscribe(onEvent: (e: LinkEvent) => void, onError: (e: Error) => void): Promise<Subscription> {
    return subscribe(
      this.ctx.netns,
      [C.RTNLGRP_LINK],
      (msg) => {
        if (msg.type === C.RTM_NEWLINK || msg.type === C.RTM_DELLINK) {
          onEvent({ action: msg.type === C.RTM_NEWLINK ? 'new' : 'delete', link: decodeLink(msg.payload) });
        }
      },
      onError,
    );
  }

  /** Resolves a reference to an ifindex (by asking the kernel for names). */
  async indexOf(ref: LinkRef): Promise<number> {
    if (typeof ref === 'number') return ref;
    if (typeof ref === 'object') return ref.index;
    return (await this.get(ref)).index;
  }

  /**
   * Like indexOf(), for a link named inside another request: a missing link is
   * reported as a failure of `op object` (`ip route add 10.0.0.0/8 dev eth9 …`),
   * keeping the errno, so the caller's error names what was being done.
   */
  async indexFor(op: string, object: string, ref: LinkRef): Promise<number> {
    try {
      return await this.indexOf(ref);
    } catch (e) {
      if (e instanceof LinkNotFoundError) throw new LinkNotFoundError(op, object, e.errno, e.extack);
      throw e;
    }
  }

  /** Index → name of every link, to name the devices in other objects (routes, neighbours). */
  async names(): Promise<Map<number, string>> {
    return new Map((await this.list()).map((l) => [l.index, l.name]));
  }

  private async set(
    ref: LinkRef,
    what: string,
    flags: { flags?: number; change?: number },
    attrs?: (a: AttrWriter) => void,
  ): Promise<void> {
    const op = `ip link set ${what}`;
    const target = await this.target(op, ref, flags);
    const w = new AttrWriter();
    attrs?.(w);
    await this.ctx.conn.request(C.RTM_NEWLINK, 0, Buffer.concat([target, w.toBuffer()]), { op, object: this.name(ref) });
  }

  /** ifinfomsg (+ IFLA_IFNAME when addressed by name) that selects `ref`. */
  private async target(op: string, ref: LinkRef, flags: { flags?: number; change?: number } = {}): Promise<Buffer> {
    if (typeof ref === 'object') ref = ref.index;
    if (typeof ref === 'number') return encodeIfInfoMsg({ index: ref, ...flags });
    checkLinkName(op, ref);
    return Buffer.concat([encodeIfInfoMsg(flags), new AttrWriter().string(C.IFLA_IFNAME, ref).toBuffer()]);
  }

  private commonAttrs(op: string, spec: LinkSpec, master: number | undefined, a: AttrWriter): void {
    const object = this.name(spec.name);
    a.string(C.IFLA_IFNAME, spec.name);
    if (spec.mtu !== undefined) {
      checkRange(op, object, 'mtu', spec.mtu, 68, 65535);
      a.u32(C.IFLA_MTU, spec.mtu);
    }
    if (spec.mac !== undefined) a.bytes(C.IFLA_ADDRESS, parseMac(op, object, spec.mac));
    if (spec.txqlen !== undefined) a.u32(C.IFLA_TXQLEN, spec.txqlen);
    if (master !== undefined) a.u32(C.IFLA_MASTER, master);
  }

  private kindData(op: string, spec: LinkSpec, underlay: number | undefined, info: AttrWriter): void {
    const object = this.name(spec.name);
    switch (spec.kind) {
      case 'veth': {
        const peer = spec.peer;
        checkLinkName(op, peer.name);
        // VETH_INFO_PEER holds a whole ifinfomsg + attributes for the other end.
        const p = new AttrWriter().string(C.IFLA_IFNAME, peer.name);
        if (peer.netns !== undefined) p.u32(C.IFLA_NET_NS_FD, peer.netns.fd);
        if (peer.mac !== undefined) p.bytes(C.IFLA_ADDRESS, parseMac(op, `peer "${peer.name}"`, peer.mac));
        const mtu = peer.mtu ?? spec.mtu;
        if (mtu !== undefined) p.u32(C.IFLA_MTU, mtu);
        const peerMsg = Buffer.concat([encodeIfInfoMsg({}), p.toBuffer()]);
        info.nest(C.IFLA_INFO_DATA, (data) => data.bytes(C.VETH_INFO_PEER, peerMsg));
        return;
      }
      case 'bridge':
        info.nest(C.IFLA_INFO_DATA, (data) => {
          if (spec.stp !== undefined) data.u32(C.IFLA_BR_STP_STATE, spec.stp ? 1 : 0);
          if (spec.vlanFiltering !== undefined) data.u8(C.IFLA_BR_VLAN_FILTERING, spec.vlanFiltering ? 1 : 0);
        });
        return;
      case 'vxlan': {
        checkRange(op, object, 'vni', spec.vni, 0, 0xffffff);
        if (spec.port !== undefined) checkRange(op, object, 'port', spec.port, 1, 65535);
        const local = spec.local === undefined ? undefined : parseIp(op, object, spec.local);
        info.nest(C.IFLA_INFO_DATA, (data) => {
          data.u32(C.IFLA_VXLAN_ID, spec.vni);
          if (local !== undefined) data.bytes(local.family === 4 ? C.IFLA_VXLAN_LOCAL : C.IFLA_VXLAN_LOCAL6, local.bytes);
          if (spec.port !== undefined) data.be16(C.IFLA_VXLAN_PORT, spec.port);
          data.u8(C.IFLA_VXLAN_LEARNING, spec.learning === true ? 1 : 0);
          if (underlay !== undefined) data.u32(C.IFLA_VXLAN_LINK, underlay);
        });
        return;
      }
      case 'dummy':
        return;
      default:
        throw new InvalidArgumentError(op, object, `unsupported link kind "${(spec as { kind: string }).kind}"`);
    }
  }

  private label(ref: LinkRef): string {
    return typeof ref === 'object' ? ref.name : String(ref);
  }

  private name(ref: LinkRef): string {
    const what = typeof ref === 'number' ? `link index ${ref}` : `link "${this.label(ref)}"`;
    return describe(this.ctx, what);
  }
}
