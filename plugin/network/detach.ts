// Undoing an attachment. Deleting the host end of the veth deletes the pod
// end too, and the kernel drops every route and neighbor entry through
// either, so nothing else needs to be undone. Missing pieces are fine: DEL
// must succeed on what is already gone.
import type { Handle } from '../../engine/handle.js';
import { LinkNotFoundError } from '../../engine/netlink/errors.js';

/** Returns true when there was something to delete. */
export async function detach(node: Handle, hostVeth: string): Promise<boolean> {
  try {
    await node.link.delete(hostVeth);
    return true;
  } catch (e) {
    if (e instanceof LinkNotFoundError) return false;
    throw e;
  }
}
