// Traffic control verbs: `tc filter show` over rtnetlink, in the handle's
// namespace. Only what ferry needs: seeing the cls_bpf filters that its
// programs are attached by on kernels without tcx (engine/bpf/attach.ts
// attaches them; tcx links are not tc objects and are not listed here).
import { describe, type VerbContext } from './context.js';
import type { LinkRef, LinkVerbs } from './link.js';
import { decodeTcFilter, encodeTcMsg, type TcFilter } from './netlink/codec/tc.js';
import * as C from './netlink/constants.js';

export type { TcFilter } from './netlink/codec/tc.js';

export class TcVerbs {
  constructor(
    private readonly ctx: VerbContext,
    private readonly links: LinkVerbs,
  ) {}

  /**
   * Equivalent to: `tc filter show dev DEV ingress` (or `egress`): the
   * filters at that hook of the device's clsact qdisc; none without one.
   */
  async filters(dev: LinkRef, hook: 'ingress' | 'egress'): Promise<TcFilter[]> {
    const op = 'tc filter show';
    const object = describe(this.ctx, `dev ${typeof dev === 'object' ? dev.name : typeof dev === 'number' ? `if${dev}` : dev} ${hook}`);
    const ifindex = await this.links.indexFor(op, object, dev);
    const parent = hook === 'ingress' ? C.TC_H_CLSACT_INGRESS : C.TC_H_CLSACT_EGRESS;
    const replies = await this.ctx.conn.dump(C.RTM_GETTFILTER, encodeTcMsg({ family: C.AF_UNSPEC, ifindex, parent }), { op, object });
    // The kernel lists a filter's chain and priority once without a handle (the "filter protocol all pref 1 bpf chain 0" line): skip those.
    return replies
      .filter((m) => m.type === C.RTM_NEWTFILTER)
      .map((m) => decodeTcFilter(m.payload))
      .filter((f) => f.dev === ifindex && f.handle !== 0);
  }
}
