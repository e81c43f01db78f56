// Serving Services to clients outside the node, and masquerading pods'
// traffic to outside the cluster: the pinned from_uplink program attached at
// tcx ingress of the node's uplink and to_uplink at its egress, and the node
// configuration they read (MAPS.nodeConfig: the address and source ports
// flows from outside are SNATed to under externalTrafficPolicy Cluster and
// pods' flows to outside are masqueraded to, the IPv6 address IPv6 flows
// are SNATed and masqueraded to, and the cluster's pod CIDRs of both
// families).
//
// NodePort frontends must be in the services maps once per node address:
// pass the node's addresses, both families', to desiredState()
// (DesiredOptions.nodeAddresses); uplinkAddresses() reads them.
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { unpinPath, type TcMode } from '../bpf/index.js';
import type { Handle } from '../handle.js';
import { IFA_F_DADFAILED } from '../netlink/constants.js';
import { attachPinnedProgram } from './attach.js';
import { ANY_ADDRESS, clusterCidrsByFamily, nodeConfig, nodeConfigKey, type NodeConfig } from './layout.js';
import type { Dataplane } from './loader.js';
import { fromUplinkPin, toUplinkPin, uplinkEgressLinkPin, uplinkLinkPin } from './paths.js';

/**
 * SNAT source ports by default: above Linux's ephemeral range (32768–60999)
 * and the NodePort range (30000–32767), so that the node's own connections
 * never use a port a SNATed flow holds (lib/snat4.h). The ports are per
 * backend address:port: each backend can take this many flows from outside.
 */
export const DEFAULT_SNAT_PORTS: Readonly<{ min: number; max: number }> = Object.freeze({ min: 61000, max: 65535 });

/**
 * The cluster's pod CIDRs by default, one per family: the usual
 * 10.244.0.0/16 (flannel's, kubeadm's examples) and fd00:10:244::/56 (kind's
 * IPv6 pod subnet, 10.244.0.0/16's twin), which hold the demo's pod ranges
 * 10.244.0.0/24 and fd00:10:244::/64.
 */
export const DEFAULT_CLUSTER_CIDRS: readonly string[] = Object.freeze(['10.244.0.0/16', 'fd00:10:244::/56']);

/**
 * kube-proxy's clusterCIDR ("10.244.0.0/16"; comma-separated for dual
 * stack, "10.244.0.0/16,fd00:10:244::/56") as attachUplink() takes it:
 * CIDRs of either family, mixed, at most NODE_CLUSTER_CIDRS_MAX of each.
 * Throws naming a CIDR that is not one, has host bits set, or is one too
 * many of its family.
 */
export function parseClusterCidrs(text: string): string[] {
  const cidrs = text.split(',').map((c) => c.trim()).filter((c) => c !== '');
  const bad = cidrs.find((c) => !ipaddr.isValidCIDR(c));
  if (bad !== undefined) throw new TypeError(`"${bad}" is not a CIDR like 10.244.0.0/16 or fd00:10:244::/56`);
  // The rest (host bits, how many of each family), as writeNodeConfig()'s encoder will.
  clusterCidrsByFamily(cidrs);
  return cidrs;
}

export interface UplinkOptions {
  /** The node address SNATed and masqueraded flows leave with; default: the uplink's first global IPv4 address. */
  snatAddress?: string;
  /**
   * The node address IPv6 flows from outside to Cluster-policy frontends
   * are SNATed to, and pods' IPv6 flows to outside the cluster masqueraded
   * to; default: the uplink's first global IPv6 address, '::' (none: those
   * flows are dropped) when it has none.
   */
  snatAddress6?: string;
  /** Their source ports, inclusive; default DEFAULT_SNAT_PORTS. */
  snatPorts?: { min: number; max: number };
  /**
   * The cluster's pod CIDRs, IPv4 and IPv6 mixed (at most
   * NODE_CLUSTER_CIDRS_MAX of each family): traffic from them to none of
   * them (of its family) leaving through the uplink is masqueraded; default
   * DEFAULT_CLUSTER_CIDRS; [] masquerades nothing, and a family without
   * CIDRs is not masqueraded.
   */
  clusterCidrs?: readonly string[];
  /** tcx (default: auto, tcx where the kernel has it). */
  mode?: TcMode;
}

export interface UplinkAttachment {
  ifname: string;
  ifindex: number;
  /** The configuration written to MAPS.nodeConfig. */
  config: NodeConfig;
  mode: 'tcx' | 'tc';
  /** The families the node now forwards: IPv4 always, IPv6 when the uplink has a global IPv6 address. */
  forwarding: Array<4 | 6>;
  /** Set when the uplink's accept_ra was raised from 1 to 2, so that it keeps taking router advertisements while forwarding. */
  acceptRaRaised?: true;
}

/** The part of a BPF map writeNodeConfig() needs (BpfMap has it). */
export interface NodeConfigMap {
  update(key: Buffer, value: Buffer): void;
  lookup(key: Buffer): Buffer | undefined;
}

/** Checks `config` and writes it as the only entry of MAPS.nodeConfig (a bad cluster CIDR is named by the encoder). */
export function writeNodeConfig(map: NodeConfigMap, config: NodeConfig): void {
  if (!isIPv4(config.snatAddress)) throw new TypeError(`node config: snatAddress must be an IPv4 address, got ${String(config.snatAddress)}`);
  if (config.snatAddress6 !== undefined && !isIPv6(config.snatAddress6)) {
    throw new TypeError(`node config: snatAddress6 must be an IPv6 address ('::' for none), got ${String(config.snatAddress6)}`);
  }
  const { snatPortMin: min, snatPortMax: max } = config;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
    throw new RangeError(`node config: SNAT ports must be a range within 1-65535, got ${min}-${max}`);
  }
  map.update(nodeConfigKey.encode(0), nodeConfig.encode(config));
}

/** What MAPS.nodeConfig holds (all zero before writeNodeConfig()). */
export function readNodeConfig(map: NodeConfigMap): NodeConfig {
  const value = map.lookup(nodeConfigKey.encode(0));
  if (value === undefined) throw new Error(`node config map has no entry 0: not ferry's layout`);
  return nodeConfig.decode(value);
}

/**
 * The uplink's global addresses (scope global: not link-local or host),
 * IPv4 then IPv6, in the kernel's order: the node addresses NodePorts are
 * served at, the first of each family the SNAT addresses. An IPv6 address
 * whose duplicate address detection failed is not the node's; a tentative
 * one (DAD under way) is, once DAD passes.
 *
 * Equivalent to: `ip -4 addr show dev IFNAME scope global; ip -6 addr show dev IFNAME scope global`.
 */
export async function uplinkAddresses(node: Handle, ifname: string): Promise<{ 4: string[]; 6: string[] }> {
  const link = await node.link.get(ifname);
  const global = async (family: 4 | 6) =>
    (await node.addr.list({ dev: link, family })).filter((a) => a.scope === 0 && (a.flags & IFA_F_DADFAILED) === 0).map((a) => a.address);
  return { 4: await global(4), 6: await global(6) };
}

/**
 * Attaches from_uplink and to_uplink (pinned by loadDataplane()) at tcx
 * ingress and egress of the uplink `ifname` in the node's namespace and pins
 * the links, after writing the node configuration, and turns forwarding on
 * in the node: IPv4, and IPv6 when the uplink has a global IPv6 address. The
 * configuration is node-wide: with several uplinks, the last call's is used.
 *
 * Equivalent to: `bpftool map update pinned PINROOT/ferry_node_cfg key 0 …;
 * bpftool net attach tcx_ingress pinned PINROOT/from_uplink dev IFNAME;
 * bpftool net attach tcx_egress pinned PINROOT/to_uplink dev IFNAME;
 * sysctl net.ipv4.ip_forward=1` and, with IPv6, `sysctl
 * net.ipv6.conf.IFNAME.accept_ra=2` (only if it was 1) and
 * `net.ipv6.conf.all.forwarding=1`.
 */
export async function attachUplink(dp: Dataplane, node: Handle, ifname: string, options: UplinkOptions = {}): Promise<UplinkAttachment> {
  const link = await node.link.get(ifname);
  const addresses = options.snatAddress === undefined || options.snatAddress6 === undefined ? await uplinkAddresses(node, ifname) : { 4: [], 6: [] };
  const snatAddress = options.snatAddress ?? addresses[4][0];
  if (snatAddress === undefined) {
    throw new Error(`attach from_uplink to ${ifname} in netns ${node.netns.name}: the uplink has no global IPv4 address to SNAT to; give snatAddress`);
  }
  const snatAddress6 = options.snatAddress6 ?? addresses[6][0] ?? ANY_ADDRESS[6];
  const ports = options.snatPorts ?? DEFAULT_SNAT_PORTS;
  const config: NodeConfig = {
    snatAddress,
    snatPortMin: ports.min,
    snatPortMax: ports.max,
    clusterCidrs: [...(options.clusterCidrs ?? DEFAULT_CLUSTER_CIDRS)],
    snatAddress6,
  };
  writeNodeConfig(dp.maps.nodeConfig, config);

  const attach = (programPin: string, linkPin: string, direction: 'ingress' | 'egress') =>
    attachPinnedProgram({ netns: node.netns, ifindex: link.index, programPin, linkPin, direction, ...(options.mode ? { mode: options.mode } : {}) });
  const mode = await attach(fromUplinkPin(dp.pinRoot), uplinkLinkPin(dp.pinRoot, ifname), 'ingress');
  await attach(toUplinkPin(dp.pinRoot), uplinkEgressLinkPin(dp.pinRoot, ifname), 'egress');
  // A NodePort's flow to another node's backend goes back out of the uplink:
  // the node forwards (as kube-proxy requires), pods of its own or not.
  await node.netns.sysctlSet('net.ipv4.ip_forward', 1);
  if (snatAddress6 === ANY_ADDRESS[6]) return { ifname, ifindex: link.index, config, mode, forwarding: [4] };
  const acceptRaRaised = await forwardIpv6(node, ifname);
  return { ifname, ifindex: link.index, config, mode, forwarding: [4, 6], ...(acceptRaRaised && { acceptRaRaised }) };
}

/**
 * Turns IPv6 forwarding on in the node. A forwarding interface whose
 * accept_ra is 1 ignores router advertisements, and an uplink that got its
 * default route from them would lose it when that route expires: such an
 * uplink is set to 2 (take them while forwarding) first. Returns whether it was.
 */
async function forwardIpv6(node: Handle, ifname: string): Promise<boolean> {
  const acceptRa = `net/ipv6/conf/${ifname}/accept_ra`;
  const raise = (await node.netns.sysctlGet(acceptRa)) === '1';
  if (raise) await node.netns.sysctlSet(acceptRa, 2);
  await node.netns.sysctlSet('net.ipv6.conf.all.forwarding', 1);
  return raise;
}

/**
 * Removes the pins of the uplink's links: the pins are their only
 * references, so the kernel detaches from_uplink and to_uplink. Nothing
 * pinned: nothing to do (returns false).
 */
export function detachUplink(pinRoot: string, ifname: string): boolean {
  const egress = unpinPath(uplinkEgressLinkPin(pinRoot, ifname));
  return unpinPath(uplinkLinkPin(pinRoot, ifname)) || egress;
}
