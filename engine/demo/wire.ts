// Wires a pod namespace to a node namespace the way ferry's routed mode does
// (Calico/Cilium style, no bridge): a veth pair, the pod's addresses as host
// routes (/32, /128) on the node, and a default route in the pod to a
// link-local gateway that resolves through a static neighbor entry to the
// node side of the veth. Static neighbors both ways mean no ARP/NDP is needed.
import type { Handle } from '../handle.js';

/** The link-local gateway every pod routes through (as Calico uses 169.254.1.1). */
export const GATEWAY_V4 = '169.254.1.1';
export const GATEWAY_V6 = 'fe80::1';

export interface PodWiring {
  /** Host-side veth name in the node namespace. */
  hostVeth: string;
  /** Interface name inside the pod. */
  podIf: string;
  /** Pod addresses without prefix, e.g. ['10.244.0.10', 'fd00:10:244::a']. */
  ips: string[];
  mtu?: number;
}

export interface WiredPod extends PodWiring {
  hostMac: string;
  podMac: string;
}

export async function wireRoutedPod(node: Handle, pod: Handle, w: PodWiring): Promise<WiredPod> {
  await pod.link.setUp('lo');
  const host = await node.link.add({ kind: 'veth', name: w.hostVeth, mtu: w.mtu ?? 1500, peer: { name: w.podIf, netns: pod.netns }, up: true });
  try {
    const podLink = await pod.link.get(w.podIf);
    await pod.link.setUp(podLink);
    for (const ip of w.ips) {
      const v6 = ip.includes(':');
      const gateway = v6 ? GATEWAY_V6 : GATEWAY_V4;
      await pod.addr.add(podLink, `${ip}/${v6 ? 128 : 32}`, { noDad: true });
      // The gateway is reachable on the link, then the default route goes through it.
      if (!v6) await pod.route.add({ dst: `${gateway}/32`, dev: podLink, scope: 'link' });
      await pod.route.add({ dst: 'default', family: v6 ? 6 : 4, gw: gateway, dev: podLink, onlink: true });
      await pod.neigh.add({ dev: podLink, ip: gateway, mac: host.mac!, state: 'permanent' });
      await node.route.add({ dst: `${ip}/${v6 ? 128 : 32}`, dev: host, scope: 'link' });
      await node.neigh.add({ dev: host, ip, mac: podLink.mac!, state: 'permanent' });
    }
    return { ...w, hostMac: host.mac!, podMac: podLink.mac! };
  } catch (e) {
    // Nothing half-wired: removing the host end removes the pod end and every route through it.
    await node.link.delete(host).catch(() => undefined);
    throw e;
  }
}
