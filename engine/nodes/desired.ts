// What the node's namespace should hold for the node network, worked out
// from this node and the others (no kernel involved; reconcile.ts applies
// it):
//
//   direct  per remote pod CIDR: `ip route replace CIDR via NODE-IP`
//   vxlan   the vxlan device with this node's VTEP address on it, and per
//           remote node (flannel's vxlan backend, without flanneld):
//             `ip route replace CIDR via VTEP dev DEV onlink`
//             `ip neigh replace VTEP lladdr VTEP-MAC dev DEV nud permanent`
//             `bridge fdb replace VTEP-MAC dev DEV dst NODE-IP self permanent`
//   both    `ip route replace blackhole LOCAL-POD-CIDR`: an address of this
//           node's pod CIDR that no pod holds (no /32 host route) is
//           dropped here instead of following the default route out and
//           back (Calico does the same for its blocks).
//
// A remote node that cannot be reached this way (no address of the pod
// CIDR's family, an IPv6 pod CIDR over the IPv4 overlay, a pod CIDR
// overlapping another node's) is left out and named in `problems`; the
// others are still programmed.
import ipaddr from 'ipaddr.js';
import type { ClusterNode, NodeNetworkMode } from './model.js';
import { vtepAddress, vtepMac } from './vtep.js';

export interface DesiredRoute {
  dst: string;
  gw: string;
  /** vxlan mode: out of the vxlan device, the gateway taken as on-link. */
  onlink: boolean;
  /** The remote node it leads to. */
  node: string;
}

export interface DesiredNeighbor {
  ip: string;
  mac: string;
  node: string;
}

export interface DesiredFdb {
  mac: string;
  /** The remote node's address: where frames for `mac` are tunnelled. */
  dst: string;
  node: string;
}

export interface DesiredNodeNetwork {
  mode: NodeNetworkMode;
  /** vxlan mode: this node's IPv4 address, the tunnels' source. */
  localAddress?: string;
  /** vxlan mode: this node's VTEP address (`ADDR/32` on the vxlan device). */
  vtepCidr?: string;
  routes: DesiredRoute[];
  /** This node's own pod CIDRs, routed to nowhere. */
  blackholes: string[];
  neighbors: DesiredNeighbor[];
  fdb: DesiredFdb[];
  problems: string[];
}

const familyOf = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);

/**
 * The state for `self` among `nodes` (which may include self; it is skipped
 * by name). Throws when nothing can be programmed: vxlan mode without an
 * IPv4 address of this node.
 */
export function desiredNodeNetwork(mode: NodeNetworkMode, self: ClusterNode, nodes: readonly ClusterNode[]): DesiredNodeNetwork {
  const d: DesiredNodeNetwork = { mode, routes: [], blackholes: [...self.podCIDRs], neighbors: [], fdb: [], problems: [] };
  if (mode === 'vxlan') {
    const local = self.addresses.find((a) => familyOf(a) === 4);
    if (local === undefined) throw new Error(`node ${self.name} has no IPv4 InternalIP: the VXLAN overlay needs one as its tunnels' source`);
    d.localAddress = local;
    const v4 = self.podCIDRs.find((c) => familyOf(c) === 4);
    if (v4 !== undefined) d.vtepCidr = `${vtepAddress(v4)}/32`;
  }

  // Pod CIDRs are claimed by this node first, then by remote nodes in name order.
  const taken: Array<{ cidr: string; node: string }> = [];
  const claim = (cidr: string, node: string): string | undefined => {
    const other = taken.find((t) => overlaps(t.cidr, cidr));
    if (other !== undefined) return `${cidr} overlaps ${other.cidr} of node ${other.node}`;
    taken.push({ cidr, node });
    return undefined;
  };
  for (const c of self.podCIDRs) claim(c, self.name);

  for (const node of [...nodes].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (node.name === self.name) continue;
    for (const cidr of node.podCIDRs) {
      const clash = claim(cidr, node.name);
      if (clash !== undefined) {
        d.problems.push(`node ${node.name}: pod CIDR ${clash}; not routed`);
        continue;
      }
      const family = familyOf(cidr);
      const address = node.addresses.find((a) => familyOf(a) === family);
      if (mode === 'direct') {
        if (address === undefined) d.problems.push(`node ${node.name}: no IPv${family} InternalIP to route pod CIDR ${cidr} via`);
        else d.routes.push({ dst: cidr, gw: address, onlink: false, node: node.name });
        continue;
      }
      if (family === 6) {
        d.problems.push(`node ${node.name}: pod CIDR ${cidr} is IPv6; the VXLAN overlay carries IPv4 pod CIDRs only`);
        continue;
      }
      if (address === undefined) {
        d.problems.push(`node ${node.name}: no IPv4 InternalIP to tunnel pod CIDR ${cidr} to`);
        continue;
      }
      const vtep = vtepAddress(cidr);
      const mac = vtepMac(address);
      d.routes.push({ dst: cidr, gw: vtep, onlink: true, node: node.name });
      d.neighbors.push({ ip: vtep, mac, node: node.name });
      // One FDB entry per node, however many pod CIDRs it owns.
      if (!d.fdb.some((f) => f.mac === mac)) d.fdb.push({ mac, dst: address, node: node.name });
    }
  }
  return d;
}

/** Whether two CIDRs share an address: they agree on the bits of the shorter prefix. */
function overlaps(a: string, b: string): boolean {
  const [x, xLen] = ipaddr.parseCIDR(a);
  const [y, yLen] = ipaddr.parseCIDR(b);
  if (x.kind() !== y.kind()) return false;
  const xs = x.toByteArray();
  const ys = y.toByteArray();
  for (let bit = 0; bit < Math.min(xLen, yLen); bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((xs[bit >> 3]! & mask) !== (ys[bit >> 3]! & mask)) return false;
  }
  return true;
}
