// CHECK: compares what the kernel has with what ADD reported (prevResult)
// and names every difference, on the pod side and on the node side.
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';
import { isDefault } from '../../engine/route.js';
import { checkRoutedNode } from './routed.js';
import type { Attached } from './types.js';

export interface CheckSpec {
  ifname: string;
  hostVeth: string;
  mode: 'routed' | 'bridge';
  bridge?: string;
}


export async function checkAttachment(node: Handle, pod: Handle, spec: CheckSpec, expected: Attached): Promise<string[]> {
  const problems: string[] = [];
  const podLink = await pod.link.find(spec.ifname);
  const hostLink = await node.link.find(spec.hostVeth);
  if (podLink === undefined) problems.push(`interface ${spec.ifname} is missing in netns ${pod.netns.name}`);
  if (hostLink === undefined) problems.push(`host veth ${spec.hostVeth} is missing in the node namespace`);
  if (podLink !== undefined) problems.push(...(await checkPod(pod, podLink, expected)));
  if (hostLink !== undefined) problems.push(...(await checkNode(node, hostLink, spec, expected)));
  return problems;
}

async function checkPod(pod: Handle, link: Link, expected: Attached): Promise<string[]> {
  const problems: string[] = [];
  const where = `${link.name} in netns ${pod.netns.name}`;
  const reported = expected.interfaces.find((i) => i.name === link.name && i.sandbox !== undefined);
  if (reported !== undefined && reported.mac.toLowerCase() !== link.mac) {
    problems.push(`${where} has MAC ${link.mac}, the result says ${reported.mac}`);
  }
  if (!link.up) problems.push(`${where} is down`);
  const have = new Set((await pod.addr.list({ dev: link })).map((a) => a.cidr));
  for (const ip of expected.ips) {
    if (!have.has(ip.address)) problems.push(`${where} lacks address ${ip.address}`);
  }
  const routes = [...(await pod.route.list({ family: 4 })), ...(await pod.route.list({ family: 6 }))];
  for (const r of expected.routes) {
    const dst = isDefault(r.dst) ? 'default' : r.dst;
    const found = routes.some((x) => x.dst === dst && (r.gw === undefined || x.gw === r.gw || x.multipath?.some((p) => p.gw === r.gw)));
    if (!found) problems.push(`netns ${pod.netns.name} has no route ${r.dst}${r.gw ? ` via ${r.gw}` : ''}`);
  }
  return problems;
}

async function checkNode(node: Handle, host: Link, spec: CheckSpec, expected: Attached): Promise<string[]> {
  const problems: string[] = [];
  if (!host.up) problems.push(`host veth ${host.name} is down`);
  if (spec.mode === 'routed') {
    problems.push(...(await checkRoutedNode(node, host, expected.ips.map((i) => i.address.split('/')[0]!))));
  } else {
    const bridge = spec.bridge === undefined ? undefined : await node.link.find(spec.bridge);
    if (bridge === undefined) problems.push(`bridge ${spec.bridge} is missing in the node namespace`);
    else if (host.master !== bridge.index) problems.push(`host veth ${host.name} is not a port of bridge ${bridge.name}`);
  }
  return problems;
}
