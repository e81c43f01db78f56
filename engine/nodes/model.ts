// The node network: how pods on one node reach pods on the others. Every
// node owns pod CIDRs (the Node object's spec.podCIDRs) and is reached at
// its InternalIP; a node's namespace then needs, per remote node, either a
// plain route to its pod CIDRs via its address (`direct`, flannel's host-gw,
// Calico without encapsulation: the nodes must share an L2 segment) or the
// same through a VXLAN overlay (`vxlan`, flannel's vxlan backend).
import { checkLinkName } from '../validate.js';

/** A node as the node network sees it. */
export interface ClusterNode {
  name: string;
  /** Its InternalIP addresses, in the Node object's order. */
  addresses: string[];
  /** The pod CIDRs it owns (network addresses), empty until the controller assigns one. */
  podCIDRs: string[];
}

export type NodeNetworkMode = 'direct' | 'vxlan';

export interface VxlanSettings {
  /** The vxlan device's name in the node's namespace. */
  device: string;
  /** VXLAN network identifier, 0..2^24-1. */
  vni: number;
  /** UDP port, on both ends. */
  port: number;
}

export interface NodeNetworkSettings {
  mode: NodeNetworkMode;
  /** vxlan mode only. */
  vxlan: VxlanSettings;
}

/**
 * flannel's defaults: VNI 1 and the Linux kernel's VXLAN port 8472 (IANA's
 * is 4789). The name is ferry's own; the CNI config's `vxlanDevice` names
 * the same device, whose MTU pods get.
 */
export const DEFAULT_VXLAN: Readonly<VxlanSettings> = Object.freeze({ device: 'ferry.vxlan', vni: 1, port: 8472 });

/** VXLAN over IPv4 adds 50 bytes: outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8. */
export const VXLAN_OVERHEAD = 50;

/** Throws naming the first setting that is out of range. */
export function checkNodeNetworkSettings(s: NodeNetworkSettings): void {
  if (s.mode !== 'direct' && s.mode !== 'vxlan') throw new TypeError(`node network mode must be direct or vxlan, got ${String(s.mode)}`);
  const { device, vni, port } = s.vxlan;
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw new TypeError(`VXLAN VNI must be an integer in 0..16777215, got ${vni}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`VXLAN port must be an integer in 1..65535, got ${port}`);
  checkLinkName('node network: vxlan device', device);
}
