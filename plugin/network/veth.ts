// The veth pair every attachment starts with: the host end in the node
// namespace, the pod end created directly inside the pod's.
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';
import { ExistsError } from '../../engine/netlink/errors.js';
import { PodInterfaceExistsError } from './errors.js';
import type { AttachSpec } from './types.js';

/**
 * Equivalent to: `ip link add HOSTVETH [master BRIDGE] mtu MTU up type veth
 * peer name IFNAME netns POD [address MAC]`. A pod that already has a link
 * named IFNAME fails with PodInterfaceExistsError (the kernel's EEXIST would
 * name only the host end). The caller has removed any earlier host end of
 * this attachment, so an EEXIST is about the pod's side unless found otherwise.
 */
export async function createVeth(node: Handle, pod: Handle, spec: AttachSpec, master?: Link): Promise<Link> {
  try {
    return await node.link.add({
      kind: 'veth',
      name: spec.hostVeth,
      mtu: spec.mtu,
      ...(master ? { master } : {}),
      peer: { name: spec.ifname, netns: pod.netns, ...(spec.mac ? { mac: spec.mac } : {}) },
      up: true,
    });
  } catch (e) {
    if (e instanceof ExistsError && (await pod.link.find(spec.ifname)) !== undefined) {
      throw new PodInterfaceExistsError(spec.ifname, pod.netns.name, { cause: e });
    }
    throw e;
  }
}
