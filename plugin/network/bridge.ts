// Bridge mode: L2, as the reference bridge plugin does when flannel delegates
// to it. Every pod's host-side veth is a port of one bridge; with isGateway
// the bridge holds each range's gateway address, and with isDefaultGateway
// the pod's default route goes through it.
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';
import { ExistsError } from '../../engine/netlink/errors.js';
import { BridgeConflictError } from './errors.js';
import type { AttachSpec, Attached } from './types.js';
import { createVeth } from './veth.js';

export interface BridgeOptions {
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  hairpinMode: boolean;
  promiscMode: boolean;
}

const isV6 = (ip: string) => ip.includes(':');

/** The bridge, created on first use and brought up; existing settings are kept. */
export async function ensureBridge(node: Handle, opts: BridgeOptions, mtu: number): Promise<Link> {
  let bridge = await node.link.find(opts.bridge);
  if (bridge === undefined) {
    try {
      // Created down, so its link-local address never goes through DAD (below); brought up after.
      bridge = await node.link.add({ kind: 'bridge', name: opts.bridge, mtu });
      await withoutDad(node, opts.bridge);
    } catch (e) {
      // Another ADD made it between our look and our create.
      if (!(e instanceof ExistsError)) throw e;
      bridge = await node.link.get(opts.bridge);
    }
  }
  if (bridge.kind !== 'bridge') throw new BridgeConflictError(opts.bridge, bridge.kind ?? 'device');
  if (!bridge.up) await node.link.setUp(bridge);
  if (opts.promiscMode) await node.link.setPromisc(bridge, true);
  return bridge;
}

/**
 * Turns off IPv6 duplicate address detection on the bridge. While the DAD of
 * its link-local address runs (1-2 s after it comes up), the node sends no
 * neighbor solicitation from the bridge for a packet whose source is not the
 * bridge's own (traffic it forwards, or DNATs from another local address):
 * such traffic to a pod's IPv6 address would wait. Best effort: a node
 * without IPv6 has nothing to turn off.
 * Equivalent to: `sysctl -w net.ipv6.conf.BRIDGE.accept_dad=0`.
 */
async function withoutDad(node: Handle, bridge: string): Promise<void> {
  await node.netns.sysctlSet(`net/ipv6/conf/${bridge}/accept_dad`, 0).catch(() => undefined);
}

export async function attachBridge(node: Handle, pod: Handle, spec: AttachSpec, opts: BridgeOptions): Promise<Attached> {
  const bridge = await ensureBridge(node, opts, spec.mtu);
  if (opts.isGateway) {
    for (const { address, gateway } of spec.addresses) {
      if (gateway === undefined) continue;
      // The gateway with the range's prefix, so the node routes the subnet to the bridge.
      await node.addr.replace(bridge, `${gateway}/${address.split('/')[1]}`, { noDad: true });
    }
  }
  const host = await createVeth(node, pod, spec, bridge);
  try {
    if (opts.hairpinMode) await node.link.setHairpin(host, true);
    await pod.link.setUp('lo');
    const podLink = await pod.link.get(spec.ifname);
    await pod.link.setUp(podLink);
    const ips: Attached['ips'] = [];
    const routes: Attached['routes'] = [];
    for (const { address, gateway } of spec.addresses) {
      await pod.addr.add(podLink, address, { noDad: true });
      ips.push({ address, ...(gateway ? { gateway } : {}), interface: 2 });
    }
    const gatewayOf = (family: 4 | 6) => spec.addresses.find((a) => a.gateway !== undefined && isV6(a.address) === (family === 6))?.gateway;
    const wanted = [...spec.routes];
    if (opts.isDefaultGateway) {
      for (const family of [4, 6] as const) {
        if (gatewayOf(family) !== undefined) wanted.push({ dst: family === 6 ? '::/0' : '0.0.0.0/0', gw: gatewayOf(family)! });
      }
    }
    for (const r of wanted) {
      const family = isV6(r.dst) ? 6 : 4;
      const gw = r.gw ?? gatewayOf(family);
      if (routes.some((x) => x.dst === r.dst)) continue;
      await pod.route.add({ dst: r.dst, family, dev: podLink, ...(gw ? { gw } : {}) });
      routes.push({ dst: r.dst, ...(gw ? { gw } : {}) });
    }
    return {
      interfaces: [
        { name: bridge.name, mac: bridge.mac! },
        { name: host.name, mac: host.mac! },
        { name: podLink.name, mac: podLink.mac!, mtu: podLink.mtu, sandbox: pod.netns.path },
      ],
      ips,
      routes,
    };
  } catch (e) {
    await node.link.delete(host).catch(() => undefined);
    throw e;
  }
}
