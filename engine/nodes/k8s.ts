// v1 Node objects (from the API server or a manifest file, also inside a
// List) to the node network's ClusterNodes: metadata.name, spec.podCIDRs
// (or the older single spec.podCIDR) and the InternalIP entries of
// status.addresses. Other kinds are not ours and are skipped. A Node with a
// malformed field is left out and reported, naming the field; a Node
// without pod CIDRs (not assigned yet) or without an InternalIP is kept:
// nothing is routed to it until it has both.
import ipaddr from 'ipaddr.js';
import type { SourcedObject } from '../dataplane/k8s.js';
import type { ClusterNode } from './model.js';

export interface NodeProblem {
  /** The Node's name ('?' when it has none). */
  node: string;
  /** Where it came from: a file name, `file#3`, `api`. */
  source: string;
  message: string;
}

export interface NodesRead {
  /** Sorted by name. */
  nodes: ClusterNode[];
  problems: NodeProblem[];
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

export function nodesFromObjects(objects: Iterable<SourcedObject>): NodesRead {
  const byName = new Map<string, ClusterNode>();
  const problems: NodeProblem[] = [];
  const visit = (source: string, value: unknown) => {
    const o = obj(value);
    const kind = o.kind;
    if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(o.items)) {
      o.items.forEach((item, i) => visit(`${source}.items[${i}]`, item));
      return;
    }
    if (kind !== 'Node' || o.apiVersion !== 'v1') return;
    const name = obj(o.metadata).name;
    const fail = (message: string) => problems.push({ node: typeof name === 'string' && name !== '' ? name : '?', source, message });
    if (typeof name !== 'string' || name === '') return fail('metadata.name: required');
    if (byName.has(name)) return fail('defined twice; the first one is used');
    const parsed = parseNode(name, o);
    if (typeof parsed === 'string') return fail(parsed);
    byName.set(name, parsed);
  };
  for (const { source, object } of objects) visit(source, object);
  return { nodes: [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1)), problems };
}

/** The ClusterNode, or what is wrong with the object. */
function parseNode(name: string, o: Obj): ClusterNode | string {
  const spec = obj(o.spec);
  const cidrs = Array.isArray(spec.podCIDRs) ? spec.podCIDRs : spec.podCIDR !== undefined && spec.podCIDR !== '' ? [spec.podCIDR] : [];
  const podCIDRs: string[] = [];
  for (const [i, c] of cidrs.entries()) {
    const problem = cidrProblem(c);
    if (problem !== undefined) return `spec.podCIDRs[${i}]: ${problem}`;
    podCIDRs.push(normalCidr(c as string));
  }
  const entries = obj(o.status).addresses;
  const addresses: string[] = [];
  for (const [i, a] of (Array.isArray(entries) ? entries : []).entries()) {
    const { type, address } = obj(a);
    if (type !== 'InternalIP') continue;
    if (typeof address !== 'string' || !(ipaddr.IPv4.isValidFourPartDecimal(address) || ipaddr.IPv6.isValid(address))) {
      return `status.addresses[${i}].address: ${JSON.stringify(address)} is not an IP address`;
    }
    addresses.push(ipaddr.parse(address).toString());
  }
  return { name, addresses, podCIDRs };
}

function cidrProblem(c: unknown): string | undefined {
  if (typeof c !== 'string' || !(ipaddr.IPv4.isValidCIDRFourPartDecimal(c) || ipaddr.IPv6.isValidCIDR(c))) return `${JSON.stringify(c)} is not a CIDR`;
  const [addr, len] = ipaddr.parseCIDR(c);
  const network = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(c) : ipaddr.IPv6.networkAddressFromCIDR(c);
  if (network.toString() !== addr.toString()) return `${c} has host bits set (the network is ${network.toString()}/${len})`;
  return undefined;
}

/** Canonical text (IPv6 compressed), as the kernel's route dumps print it. */
function normalCidr(c: string): string {
  const [addr, len] = ipaddr.parseCIDR(c);
  return `${addr.toString()}/${len}`;
}
