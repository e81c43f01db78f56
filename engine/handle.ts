// A Handle is bound to one network namespace; everything done through it
// happens there (vishvananda/netlink's NewHandleAt). Close it when done.
import { AddrVerbs } from './addr.js';
import type { VerbContext } from './context.js';
import { FdbVerbs } from './fdb.js';
import { LinkVerbs } from './link.js';
import { NeighVerbs } from './neigh.js';
import { NetlinkConnection } from './netlink/connection.js';
import { Netns } from './netns/netns.js';
import { RouteVerbs } from './route.js';
import { TcVerbs } from './tc.js';

export class Handle {
  /** `ip link …` */
  readonly link: LinkVerbs;
  /** `ip addr …` */
  readonly addr: AddrVerbs;
  /** `ip route …` */
  readonly route: RouteVerbs;
  /** `ip neigh …` */
  readonly neigh: NeighVerbs;
  /** `bridge fdb …` */
  readonly fdb: FdbVerbs;
  /** `tc filter show` */
  readonly tc: TcVerbs;

  private constructor(
    private readonly ctx: VerbContext,
    private readonly ownsNetns: boolean,
  ) {
    this.link = new LinkVerbs(ctx);
    this.addr = new AddrVerbs(ctx, this.link);
    this.route = new RouteVerbs(ctx, this.link);
    this.neigh = new NeighVerbs(ctx, this.link);
    this.fdb = new FdbVerbs(ctx, this.link);
    this.tc = new TcVerbs(ctx, this.link);
  }

  /**
   * Opens a handle in a namespace given by `ip netns` name, nsfs path or an
   * open Netns (which stays the caller's to close). Without an argument:
   * the namespace ferry itself runs in.
   */
  static async open(ns?: Netns | string): Promise<Handle> {
    const owns = !(ns instanceof Netns);
    const netns = ns instanceof Netns ? ns : ns === undefined ? Netns.current() : Netns.open(ns);
    try {
      const conn = await NetlinkConnection.open(netns);
      return new Handle({ conn, netns }, owns);
    } catch (e) {
      if (owns) netns.close();
      throw e;
    }
  }

  get netns(): Netns {
    return this.ctx.netns;
  }

  close(): void {
    this.ctx.conn.close();
    if (this.ownsNetns) this.ctx.netns.close();
  }
}
