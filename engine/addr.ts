// Address verbs: `ip addr …` over rtnetlink, in the handle's namespace.
import { describe, type VerbContext } from './context.js';
import type { LinkRef, LinkVerbs } from './link.js';
import { AttrWriter } from './netlink/attributes.js';
import { decodeAddress, encodeIfAddrMsg, type Address } from './netlink/codec/addr.js';
import * as C from './netlink/constants.js';
import { parseCidr, parseIp } from './validate.js';

export type { Address } from './netlink/codec/addr.js';

export interface AddrOptions {
  /** Skip duplicate address detection (IPv6): usable at once, as CNI plugins need. */
  noDad?: boolean;
  /** Point-to-point peer (`peer ADDR`). */
  peer?: string;
  label?: string;
  /** RT_SCOPE_*; the kernel picks universe by default. */
  scope?: number;
}

export interface AddrFilter {
  dev?: LinkRef;
  family?: 4 | 6;
}

export class AddrVerbs {
  constructor(
    private readonly ctx: VerbContext,
    private readonly links: LinkVerbs,
  ) {}

  /** Equivalent to: `ip addr show [dev DEV] [-4|-6]`. */
  async list(filter: AddrFilter = {}): Promise<Address[]> {
    const index = filter.dev === undefined ? 0 : await this.links.indexOf(filter.dev);
    const family = filter.family === undefined ? C.AF_UNSPEC : filter.family === 4 ? C.AF_INET : C.AF_INET6;
    // With NETLINK_GET_STRICT_CHK the kernel filters by ifa_index itself.
    const body = encodeIfAddrMsg({ family, prefixLen: 0, index });
    const replies = await this.ctx.conn.dump(C.RTM_GETADDR, body, { op: 'ip addr show', object: `netns ${this.ctx.netns.name}` });
    return replies
      .filter((m) => m.type === C.RTM_NEWADDR)
      .map((m) => decodeAddress(m.payload))
      .filter((a) => index === 0 || a.index === index);
  }

  /** Equivalent to: `ip addr add CIDR dev DEV`. Throws ExistsError when already present. */
  add(dev: LinkRef, cidr: string, options: AddrOptions = {}): Promise<void> {
    return this.change('ip addr add', C.NLM_F_CREATE | C.NLM_F_EXCL, dev, cidr, options);
  }

  /** Equivalent to: `ip addr replace CIDR dev DEV`. */
  replace(dev: LinkRef, cidr: string, options: AddrOptions = {}): Promise<void> {
    return this.change('ip addr replace', C.NLM_F_CREATE | C.NLM_F_REPLACE, dev, cidr, options);
  }

  /** Equivalent to: `ip addr del CIDR dev DEV`. Throws NotFoundError when absent. */
  delete(dev: LinkRef, cidr: string): Promise<void> {
    return this.change('ip addr del', 0, dev, cidr, {});
  }

  private async change(op: string, flags: number, dev: LinkRef, cidr: string, options: AddrOptions): Promise<void> {
    const object = describe(this.ctx, `address ${cidr} on link "${typeof dev === 'object' ? dev.name : dev}"`);
    const addr = parseCidr(op, object, cidr);
    const peer = options.peer === undefined ? undefined : parseIp(op, object, options.peer);
    const index = await this.links.indexFor(op, object, dev);
    const family = addr.family === 4 ? C.AF_INET : C.AF_INET6;
    const ifaFlags = options.noDad === true ? C.IFA_F_NODAD : 0;
    const attrs = new AttrWriter();
    if (addr.family === 4) {
      attrs.bytes(C.IFA_LOCAL, addr.bytes).bytes(C.IFA_ADDRESS, peer?.bytes ?? addr.bytes);
    } else {
      if (peer !== undefined) attrs.bytes(C.IFA_LOCAL, addr.bytes);
      attrs.bytes(C.IFA_ADDRESS, peer?.bytes ?? addr.bytes);
    }
    if (options.label !== undefined) attrs.string(C.IFA_LABEL, options.label);
    if (ifaFlags !== 0) attrs.u32(C.IFA_FLAGS, ifaFlags);
    const type = op === 'ip addr del' ? C.RTM_DELADDR : C.RTM_NEWADDR;
    const header = encodeIfAddrMsg({ family, prefixLen: addr.prefixLen, flags: ifaFlags, scope: options.scope ?? 0, index });
    await this.ctx.conn.request(type, flags, Buffer.concat([header, attrs.toBuffer()]), { op, object });
  }
}
