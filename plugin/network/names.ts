// Host-side veth names are derived from the attachment (container id +
// ifname), as Calico does, so DEL and GC find them even when the pod's
// namespace and every other record are gone.
import { createHash } from 'node:crypto';

export const DEFAULT_HOST_VETH_PREFIX = 'fy';

/** `fy` + 13 hex digits of sha256(containerId/ifname): 15 bytes, the most a name may have. */
export function hostVethName(containerId: string, ifname: string, prefix = DEFAULT_HOST_VETH_PREFIX): string {
  const digest = createHash('sha256').update(`${containerId}/${ifname}`).digest('hex');
  return `${prefix}${digest}`.slice(0, 15);
}
