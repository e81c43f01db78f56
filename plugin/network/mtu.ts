// The MTU of a pod's veth pair: the config's `mtu` when given; in vxlan
// mode (`vxlanDevice`) the vxlan device's, which the node daemon set to the
// uplink's minus the encapsulation, so a pod's full-size packet still fits
// once tunnelled; 1500 otherwise.
import type { Handle } from '../../engine/handle.js';
import { tryAgainLater, type NetConf } from '../cni/index.js';

export const DEFAULT_MTU = 1500;

export async function podMtu(node: Handle, conf: Pick<NetConf, 'mtu' | 'vxlanDevice'>): Promise<number> {
  if (conf.mtu !== undefined) return conf.mtu;
  if (conf.vxlanDevice === undefined) return DEFAULT_MTU;
  const device = await node.link.find(conf.vxlanDevice);
  if (device === undefined) {
    // The daemon makes it once it knows the nodes: the runtime retries ADD.
    throw tryAgainLater(`vxlanDevice "${conf.vxlanDevice}" is not in the node's namespace (yet): ferry daemon --node-network vxlan creates it`);
  }
  return device.mtu;
}
