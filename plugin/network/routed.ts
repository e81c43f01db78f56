// Routed mode (the default): L3 point-to-point, as Calico and Cilium do it.
// No bridge: the host end of each veth carries no address; the node has a
// host route (/32, /128) per pod address through it; in the pod, every route
// goes through a link-local gateway that a static neighbor entry resolves to
// the host end's MAC. Static neighbors on both sides mean no ARP/NDP and no
// proxy_arp. This is where the eBPF programs attach.
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';
import type { AttachSpec, Attached } from './types.js';
import { createVeth } from './veth.js';

/** The gateway every pod routes through (Calico uses 169.254.1.1 too). */
export const ROUTED_GATEWAY_V4 = '169.254.1.1';
export const ROUTED_GATEWAY_V6 = 'fe80::1';

const isV6 = (ip: string) => ip.includes(':');
const hostPrefix = (ip: string) => (isV6(ip) ? 128 : 32);
const bare = (cidr: string) => cidr.split('/')[0]!;

/**
 * Creates the veth pair and everything routed mode needs. On failure the
 * host end is deleted, which takes the pod end and every route through it.
 */
export async function attachRouted(node: Handle, pod: Handle, spec: AttachSpec): Promise<Attached> {
  const host = await createVeth(node, pod, spec);
  try {
    await pod.link.setUp('lo');
    const podLink = await pod.link.get(spec.ifname);
    await pod.link.setUp(podLink);
    const ips: Attached['ips'] = [];
    const routes: Attached['routes'] = [];
    const families = new Set<4 | 6>();
    for (const { address } of spec.addresses) {
      const ip = bare(address);
      const family = isV6(ip) ? 6 : 4;
      const gateway = family === 6 ? ROUTED_GATEWAY_V6 : ROUTED_GATEWAY_V4;
      const podCidr = `${ip}/${hostPrefix(ip)}`;
      await pod.addr.add(podLink, podCidr, { noDad: true });
      await node.route.add({ dst: podCidr, dev: host, scope: 'link' });
      await node.neigh.replace({ dev: host, ip, mac: podLink.mac!, state: 'permanent' });
      ips.push({ address: podCidr, gateway, interface: 1 });
      if (!families.has(family)) {
        families.add(family);
        await gatewayInPod(pod, podLink, host, gateway);
      }
    }
    for (const family of families) {
      const gateway = family === 6 ? ROUTED_GATEWAY_V6 : ROUTED_GATEWAY_V4;
      const wanted = spec.routes.filter((r) => (isV6(r.dst) ? 6 : 4) === family);
      for (const r of wanted.length > 0 ? wanted : [{ dst: family === 6 ? '::/0' : '0.0.0.0/0' }]) {
          const gw = r.gw ?? gateway;
        await pod.route.add({ dst: r.dst, family, gw, dev: podLink, onlink: true });
        routes.push({ dst: r.dst, gw });
      }
    }
    return {
      interfaces: [
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

/** The pod reaches its gateway on the link, resolved statically to the host end's MAC. */
async function gatewayInPod(pod: Handle, podLink: Link, host: Link, gateway: string): Promise<void> {
  if (!isV6(gateway)) await pod.route.add({ dst: `${gateway}/32`, dev: podLink, scope: 'link' });
  await pod.neigh.replace({ dev: podLink, ip: gateway, mac: host.mac!, state: 'permanent' });
}

/** What CHECK verifies on the node side in routed mode: a host route per pod address. */
export async function checkRoutedNode(node: Handle, hostVeth: Link, ips: string[]): Promise<string[]> {
  const problems: string[] = [];
  const routes = await node.route.list({ dev: hostVeth, family: 4 }).then(async (v4) => v4.concat(await node.route.list({ dev: hostVeth, family: 6 })));
  for (const ip of ips) {
    const want = `${ip}/${hostPrefix(ip)}`;
    if (!routes.some((r) => r.dst === want)) problems.push(`node has no route ${want} dev ${hostVeth.name}`);
  }
  return problems;
}
