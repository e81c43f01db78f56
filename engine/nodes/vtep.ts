// A node's VXLAN tunnel endpoint as every other node addresses it. flannel
// publishes each node's VTEP MAC in a Node annotation; ferry derives it from
// the node's IPv4 address instead, so a node can program every remote VTEP
// from the Node objects alone — with or without an API server (the file
// source has no one to publish to) — and a restarted node keeps its MAC.
import ipaddr from 'ipaddr.js';

/**
 * 0x66 0x79 ("fy"): 0x66 has the locally-administered bit set and the
 * multicast bit clear, so the MACs are unicast and never collide with a
 * vendor's (burned-in) address.
 */
const VTEP_MAC_PREFIX = [0x66, 0x79];

/** The VTEP MAC of the node at IPv4 address `nodeIp`: 66:79 + the address's four bytes (10.0.0.7 → 66:79:0a:00:00:07). */
export function vtepMac(nodeIp: string): string {
  if (!ipaddr.IPv4.isValidFourPartDecimal(nodeIp)) throw new TypeError(`VTEP MAC: ${nodeIp} is not an IPv4 address`);
  return [...VTEP_MAC_PREFIX, ...ipaddr.IPv4.parse(nodeIp).toByteArray()].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * The VTEP address of a node on the overlay: its IPv4 pod CIDR's network
 * address (10.244.2.0/24 → 10.244.2.0), as flannel picks it. The node puts
 * it on its vxlan device (so its own traffic to remote pods leaves with an
 * address the remote routes back through the overlay); the others route
 * that pod CIDR through it.
 */
export function vtepAddress(podCidr: string): string {
  return ipaddr.IPv4.networkAddressFromCIDR(podCidr).toString();
}
