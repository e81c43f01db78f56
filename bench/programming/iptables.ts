// The same Services as kube-proxy's iptables mode writes them, loaded with
// iptables-restore inside the bench's node netns: the whole ruleset on
// empty tables (kube-proxy's first sync), then the minimized restore of one
// replaced endpoint (its later syncs). Each round starts from flushed
// tables; the result is checked with iptables-save.
import { execFileSync } from 'node:child_process';
import { kubeProxyRules, kubeProxyServiceUpdate, restoreInNetns, sepChain, type IptablesBackend } from '../dataplane/kube-proxy.js';
import { kubeService, replaceLastEndpoint, type BenchService } from '../support/cluster.js';
import { netnsPath } from '../support/netns.js';

export interface IptablesRound {
  fullMs: number;
  changeMs: number;
}

function iptables(node: string, backend: IptablesBackend, args: string[]): string {
  return execFileSync('nsenter', [`--net=${netnsPath(node)}`, '--', `iptables-${backend}`, '-w', ...args], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Empties the nat and filter tables of the node netns (`iptables -t T -F; -X`). */
export function flushTables(node: string, backend: IptablesBackend): void {
  for (const table of ['nat', 'filter']) {
    iptables(node, backend, ['-t', table, '-F']);
    iptables(node, backend, ['-t', table, '-X']);
  }
}

export function iptablesRound(node: string, backend: IptablesBackend, services: readonly BenchService[], changed: { index: number; address: string }): IptablesRound {
  flushTables(node, backend);
  const before = services.map((s) => kubeService(s));
  const fullMs = restoreInNetns(node, backend, kubeProxyRules(before), { noflush: false });
  const after = [...before];
  after[changed.index] = kubeService(replaceLastEndpoint(services[changed.index]!, changed.address));
  const changeMs = restoreInNetns(node, backend, kubeProxyServiceUpdate(after, before[changed.index]!, after[changed.index]!));

  const nat = execFileSync('nsenter', [`--net=${netnsPath(node)}`, '--', `iptables-${backend}-save`, '-t', 'nat'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
  const dnat = nat.split('\n').filter((l) => l.includes('-j DNAT')).length;
  const gone = sepChain(before[changed.index]!, before[changed.index]!.endpoints.at(-1)!);
  if (dnat !== before.reduce((n, s) => n + s.endpoints.length, 0) || !nat.includes(`${changed.address}:`) || nat.includes(`:${gone} `)) {
    throw new Error(`iptables-${backend}: the restored ruleset is not what was written (${dnat} DNAT rules)`);
  }
  return { fullMs, changeMs };
}
