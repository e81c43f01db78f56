// The iptables rules kube-proxy's iptables mode writes for one ClusterIP
// Service with its endpoints (kube-proxy 1.28 layout: KUBE-SERVICES →
// KUBE-SVC-<hash> → KUBE-SEP-<hash> → DNAT, the masquerade mark and the
// KUBE-FORWARD conntrack rules of the filter table), loaded with
// iptables-restore inside a node netns. Chain names are kube-proxy's own:
// "KUBE-SVC-" + base32(sha256(servicePortName + protocol))[:16], and
// "KUBE-SEP-" + base32(sha256(servicePortName + protocol + endpoint))[:16].
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { netnsPath } from '../support/netns.js';

export type IptablesBackend = 'nft' | 'legacy';

export interface KubeService {
  namespace: string;
  name: string;
  portName: string;
  clusterIp: string;
  port: number;
  protocol: 'tcp' | 'udp';
  /** "10.244.2.3:5201" */
  endpoints: string[];
  /** kube-proxy's --cluster-cidr: traffic from outside it to the ClusterIP is masqueraded. */
  clusterCidr: string;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (Go's base32.StdEncoding), padding included. */
export function base32(data: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}

const hash16 = (text: string): string => base32(createHash('sha256').update(text).digest()).slice(0, 16);

/** kube-proxy's ServicePortName.String(): "namespace/name:port" ("namespace/name" for an unnamed port). */
export const servicePortName = (s: KubeService): string => `${s.namespace}/${s.name}${s.portName ? `:${s.portName}` : ''}`;
export const svcChain = (s: KubeService): string => `KUBE-SVC-${hash16(servicePortName(s) + s.protocol)}`;
export const sepChain = (s: KubeService, endpoint: string): string => `KUBE-SEP-${hash16(servicePortName(s) + s.protocol + endpoint)}`;

/** The filter table kube-proxy keeps (no per-Service rules for ClusterIPs). */
const FILTER_TABLE = [
  '*filter',
  ':KUBE-EXTERNAL-SERVICES - [0:0]',
  ':KUBE-FORWARD - [0:0]',
  ':KUBE-NODEPORTS - [0:0]',
  ':KUBE-PROXY-FIREWALL - [0:0]',
  ':KUBE-SERVICES - [0:0]',
  '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
  '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally visible service portals" -j KUBE-EXTERNAL-SERVICES',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally visible service portals" -j KUBE-EXTERNAL-SERVICES',
  '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
  '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
  '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  'COMMIT',
];

const NODEPORTS_RULE =
  '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS';

/** The Service's rule in KUBE-SERVICES. */
function servicesRule(s: KubeService): string {
  return `-A KUBE-SERVICES ${clusterIpMatch(s)} -j ${svcChain(s)}`;
}

function clusterIpMatch(s: KubeService): string {
  return `-d ${s.clusterIp}/32 -p ${s.protocol} -m comment --comment "${servicePortName(s)} cluster IP" -m ${s.protocol} --dport ${s.port}`;
}

/** The Service's own chains (KUBE-SVC-…, one KUBE-SEP-… per endpoint): their declarations and their rules. */
function serviceChains(s: KubeService): { chains: string[]; rules: string[] } {
  const spn = servicePortName(s);
  const svc = svcChain(s);
  const chains = [`:${svc} - [0:0]`, ...s.endpoints.map((ep) => `:${sepChain(s, ep)} - [0:0]`)];
  const rules = [`-A ${svc} ! -s ${s.clusterCidr} ${clusterIpMatch(s)} -j KUBE-MARK-MASQ`];
  s.endpoints.forEach((ep, i) => {
    const left = s.endpoints.length - i;
    // kube-proxy spreads over n endpoints with statistic rules of probability 1/n, 1/(n-1), …, the last unconditional.
    const random = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(11)}` : '';
    rules.push(`-A ${svc} -m comment --comment "${spn} -> ${ep}"${random} -j ${sepChain(s, ep)}`);
  });
  for (const ep of s.endpoints) {
    const sep = sepChain(s, ep);
    const host = ep.slice(0, ep.lastIndexOf(':'));
    rules.push(`-A ${sep} -s ${host}/32 -m comment --comment ${spn} -j KUBE-MARK-MASQ`);
    rules.push(`-A ${sep} -p ${s.protocol} -m comment --comment ${spn} -m ${s.protocol} -j DNAT --to-destination ${ep}`);
  }
  return { chains, rules };
}

/** An iptables-restore input with the filter and nat rules kube-proxy keeps for `services`, KUBE-SERVICES in their order. */
export function kubeProxyRules(services: readonly KubeService[]): string {
  const nat = [
    '*nat',
    ':KUBE-MARK-MASQ - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-SERVICES - [0:0]',
  ];
  const perService = services.map(serviceChains);
  for (const p of perService) nat.push(...p.chains);
  nat.push(
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  );
  services.forEach((s, i) => nat.push(servicesRule(s), ...perService[i]!.rules));
  nat.push(NODEPORTS_RULE, 'COMMIT');
  return `${[...FILTER_TABLE, ...nat].join('\n')}\n`;
}

/**
 * The `iptables-restore --noflush` input of kube-proxy's minimized sync
 * (MinimizeIPTablesRestore, the default since 1.27) after one Service
 * changed from `before` to `after`: KUBE-SERVICES in full (kube-proxy
 * rewrites it every sync), the changed Service's chains, and the endpoint
 * chains it no longer uses deleted. (The filter table's few fixed rules
 * are left out.)
 */
export function kubeProxyServiceUpdate(services: readonly KubeService[], before: KubeService, after: KubeService): string {
  const changed = serviceChains(after);
  const kept = new Set(after.endpoints);
  const gone = before.endpoints.filter((ep) => !kept.has(ep)).map((ep) => sepChain(before, ep));
  const nat = [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ...changed.chains,
    // A chain is deleted only when empty: declaring it flushes it first (as kube-proxy does).
    ...gone.map((chain) => `:${chain} - [0:0]`),
    ...services.map(servicesRule),
    NODEPORTS_RULE,
    ...changed.rules,
    ...gone.map((chain) => `-X ${chain}`),
    'COMMIT',
  ];
  return `${nat.join('\n')}\n`;
}

const tool = (backend: IptablesBackend, name: 'iptables' | 'iptables-restore' | 'iptables-save'): string =>
  name.replace('iptables', `iptables-${backend}`);

/**
 * Equivalent to: `ip netns exec NODE iptables-restore --noflush --counters < rules`
 * (network namespace only, via nsenter); with `noflush: false` the tables in
 * `rules` replace the ones there. Returns the wall time of the process, in ms.
 */
export function restoreInNetns(node: string, backend: IptablesBackend, rules: string, options: { noflush?: boolean } = {}): number {
  const t0 = performance.now();
  execFileSync('nsenter', [`--net=${netnsPath(node)}`, '--', tool(backend, 'iptables-restore'), '-w', ...(options.noflush === false ? [] : ['--noflush']), '--counters'], {
    input: rules,
    stdio: ['pipe', 'ignore', 'pipe'],
    maxBuffer: 1 << 30,
  });
  return performance.now() - t0;
}

/**
 * What kube-proxy does after an update removes UDP endpoints: it deletes
 * the conntrack entries of flows to the ClusterIP that were NATed to them
 * (`conntrack -D -p udp --orig-dst VIP --reply-src ENDPOINT`), so that a
 * client reusing a source port is not sent to a gone endpoint. Returns the
 * number of entries deleted.
 */
export function clearUdpConntrack(node: string, clusterIp: string, endpointIp: string): number {
  const args = ['-D', '-p', 'udp', '--orig-dst', clusterIp, '--reply-src', endpointIp];
  const run = spawnSync('nsenter', [`--net=${netnsPath(node)}`, '--', 'conntrack', ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = run.stderr ?? '';
  // conntrack exits 1 when nothing matched; that is not a failure here.
  if (run.status !== 0 && !/\b0 flow entries have been deleted/.test(stderr)) {
    throw new Error(`conntrack ${args.join(' ')} in netns ${node}: ${stderr.trim() || run.error?.message || `exit ${run.status}`}`);
  }
  return Number(/(\d+) flow entries have been deleted/.exec(stderr)?.[1] ?? 0);
}

/** `iptables-save -c -t nat` inside the node netns. */
export function saveNat(node: string, backend: IptablesBackend): string {
  return execFileSync('nsenter', [`--net=${netnsPath(node)}`, '--', tool(backend, 'iptables-save'), '-c', '-t', 'nat'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 30,
  });
}

/** Packets (= new connections: only a flow's first packet traverses nat) that hit the DNAT rule of each endpoint chain. */
export function dnatCounts(saved: string, s: KubeService): Map<string, number> {
  const out = new Map<string, number>();
  for (const ep of s.endpoints) {
    const sep = sepChain(s, ep);
    const line = saved.split('\n').find((l) => l.includes(`-A ${sep} `) && l.includes('-j DNAT'));
    const m = line?.match(/^\[(\d+):(\d+)\]/);
    out.set(ep, m ? Number(m[1]) : 0);
  }
  return out;
}

/** `iptables-<backend> --version`, e.g. "iptables v1.8.9 (nf_tables)". */
export function iptablesVersion(backend: IptablesBackend): string {
  try {
    return execFileSync(tool(backend, 'iptables'), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}
