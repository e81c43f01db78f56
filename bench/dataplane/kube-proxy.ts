// The iptables rules kube-proxy's iptables mode writes for one ClusterIP
// Service with its endpoints (kube-proxy 1.28 layout: KUBE-SERVICES →
// KUBE-SVC-<hash> → KUBE-SEP-<hash> → DNAT, the masquerade mark and the
// KUBE-FORWARD conntrack rules of the filter table), loaded with
// iptables-restore inside a node netns. Chain names are kube-proxy's own:
// "KUBE-SVC-" + base32(sha256(servicePortName + protocol))[:16], and
// "KUBE-SEP-" + base32(sha256(servicePortName + protocol + endpoint))[:16].
import { execFileSync } from 'node:child_process';
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

/** An iptables-restore input with the filter and nat rules kube-proxy keeps for `services`. */
export function kubeProxyRules(services: readonly KubeService[]): string {
  const filter = [
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
  const nat = [
    '*nat',
    ':KUBE-MARK-MASQ - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-SERVICES - [0:0]',
  ];
  for (const s of services) {
    nat.push(`:${svcChain(s)} - [0:0]`);
    for (const ep of s.endpoints) nat.push(`:${sepChain(s, ep)} - [0:0]`);
  }
  nat.push(
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  );
  for (const s of services) {
    const spn = servicePortName(s);
    const svc = svcChain(s);
    const match = `-d ${s.clusterIp}/32 -p ${s.protocol} -m comment --comment "${spn} cluster IP" -m ${s.protocol} --dport ${s.port}`;
    nat.push(`-A KUBE-SERVICES ${match} -j ${svc}`);
    nat.push(`-A ${svc} ! -s ${s.clusterCidr} ${match} -j KUBE-MARK-MASQ`);
    s.endpoints.forEach((ep, i) => {
      const left = s.endpoints.length - i;
      // kube-proxy spreads over n endpoints with statistic rules of probability 1/n, 1/(n-1), …, the last unconditional.
      const random = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(11)}` : '';
      nat.push(`-A ${svc} -m comment --comment "${spn} -> ${ep}"${random} -j ${sepChain(s, ep)}`);
    });
    for (const ep of s.endpoints) {
      const sep = sepChain(s, ep);
      const host = ep.slice(0, ep.lastIndexOf(':'));
      nat.push(`-A ${sep} -s ${host}/32 -m comment --comment ${spn} -j KUBE-MARK-MASQ`);
      nat.push(`-A ${sep} -p ${s.protocol} -m comment --comment ${spn} -m ${s.protocol} -j DNAT --to-destination ${ep}`);
    }
  }
  nat.push(
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    'COMMIT',
  );
  return `${[...filter, ...nat].join('\n')}\n`;
}

const tool = (backend: IptablesBackend, name: 'iptables' | 'iptables-restore' | 'iptables-save'): string =>
  name.replace('iptables', `iptables-${backend}`);

/** Equivalent to: `ip netns exec NODE iptables-restore --noflush --counters < rules` (network namespace only, via nsenter). */
export function restoreInNetns(node: string, backend: IptablesBackend, rules: string): void {
  execFileSync('nsenter', [`--net=${netnsPath(node)}`, '--', tool(backend, 'iptables-restore'), '-w', '--noflush', '--counters'], {
    input: rules,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
}

/** `iptables-save -c -t nat` inside the node netns. */
export function saveNat(node: string, backend: IptablesBackend): string {
  return execFileSync('nsenter', [`--net=${netnsPath(node)}`, '--', tool(backend, 'iptables-save'), '-c', '-t', 'nat'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
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
