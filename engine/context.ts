// What every verb needs: the connection to the kernel and the namespace it
// is bound to, for naming objects in errors (`veth0 in netns node-1`).
import type { NetlinkConnection } from './netlink/connection.js';
import type { Netns } from './netns/netns.js';

export interface VerbContext {
  conn: NetlinkConnection;
  netns: Netns;
}

/** `"veth0" in netns node-1` */
export function describe(ctx: VerbContext, what: string): string {
  return `${what} in netns ${ctx.netns.name}`;
}
