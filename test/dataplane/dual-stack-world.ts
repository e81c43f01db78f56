// The dual-stack node of dual-stack-e2e.test.ts, host-routing6-e2e.test.ts and masquerade6-e2e.test.ts:
// a node namespace whose uplink has an IPv4 and an IPv6 address, pods given
// one address of each family by ferry's CNI ADD (routed mode, from_pod on
// each host veth), from_uplink attached by attachUplink(). Everything made
// is undone by the caller's cleanups, last first.
//
//   outside 192.0.2.100/24 2001:db8:1::100/64 ── eth0 ═ uplink ── node 192.0.2.1/24 2001:db8:1::1/64
//   (routes to the pod CIDRs via the node)                          pods 10.244.0.0/24, fd00:244::/64
//
// WorldOptions change the pods' IPv6 range and leave the outside without
// those routes (masquerade6-e2e: its answers reach a pod only masqueraded).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { attachUplink, detachUplink, type UplinkAttachment } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import { Netns } from '../../engine/netns/netns.js';
import { Prober } from '../../engine/probe/probe.js';
import { type CniOutput, runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { inNetns, makeNetns, run } from '../support/netns.js';

export const NODE_IP4 = '192.0.2.1';
export const NODE_IP6 = '2001:db8:1::1';
export const OUTSIDE_IP6 = '2001:db8:1::100';

export interface Pod {
  netns: Netns;
  ip4: string;
  ip6: string;
  /** CNI_CONTAINERID of its ADD. */
  containerId: string;
}

export interface World {
  dp: Dataplane;
  /** The node's namespace, by name. */
  nodeName: string;
  node: Netns;
  outsideName: string;
  outside: Netns;
  /** What attachUplink() said. */
  uplink: UplinkAttachment;
  pods: Pod[];
  prober: Prober;
  /** Runs a CNI verb of the world's network for `pod` (its container id, netns), `extra` merged into the config. */
  cni(command: string, pod: Pod, extra?: Record<string, unknown>): Promise<CniOutput>;
}

export interface WorldOptions {
  /** The pods' IPv6 range; default fd00:244::/64. */
  podRange6?: string;
  /** Whether the outside routes the pod ranges and fd00:96::/64 via the node; default true. */
  outsideRoutes?: boolean;
}

export async function dualStackWorld(cleanups: Array<() => unknown>, labels: string[], options: WorldOptions = {}): Promise<World> {
  const { podRange6 = 'fd00:244::/64', outsideRoutes = true } = options;
  const pinRoot = makePinDir('ferry-dual');
  cleanups.push(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  cleanups.push(() => dp.close());
  const state = mkdtempSync(join(tmpdir(), 'ferry-dual-'));
  cleanups.push(() => rmSync(state, { recursive: true, force: true }));

  const nodeName = makeNetns('fds-node');
  const outsideName = makeNetns('fds-out');
  // The uplink and the outside, made with iproute2 (the oracle); nodad: no wait for duplicate detection.
  const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  ip(nodeName, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outsideName);
  // Nor for the link-local addresses: while the uplink's is tentative, the
  // node sends no neighbour solicitation, and a pod's first packet out waits.
  inNetns(nodeName, 'sysctl', ['-qw', 'net.ipv6.conf.uplink.accept_dad=0']);
  inNetns(outsideName, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.accept_dad=0']);
  ip(nodeName, 'addr', 'add', `${NODE_IP4}/24`, 'dev', 'uplink');
  ip(nodeName, '-6', 'addr', 'add', `${NODE_IP6}/64`, 'dev', 'uplink', 'nodad');
  ip(nodeName, 'link', 'set', 'uplink', 'up');
  ip(outsideName, 'addr', 'add', '192.0.2.100/24', 'dev', 'eth0');
  ip(outsideName, '-6', 'addr', 'add', `${OUTSIDE_IP6}/64`, 'dev', 'eth0', 'nodad');
  for (const dev of ['lo', 'eth0']) ip(outsideName, 'link', 'set', dev, 'up');
  if (outsideRoutes) {
    ip(outsideName, 'route', 'add', '10.244.0.0/24', 'via', NODE_IP4);
    ip(outsideName, '-6', 'route', 'add', podRange6, 'via', NODE_IP6);
    ip(outsideName, '-6', 'route', 'add', 'fd00:96::/64', 'via', NODE_IP6);
  }

  const nodeNetns = Netns.open(nodeName);
  cleanups.push(() => nodeNetns.close());
  const outside = Netns.open(outsideName);
  cleanups.push(() => outside.close());
  const node = await Handle.open(nodeNetns);
  cleanups.push(() => node.close());

  const handlers = createHandlers({ nodeNetns });
  const config = {
    cniVersion: '1.0.0',
    name: 'dual-stack-e2e',
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }], [{ subnet: podRange6 }]] },
  };
  const cni = (command: string, pod: Pod, extra: Record<string, unknown> = {}) =>
    runCni({ env: { CNI_COMMAND: command, CNI_CONTAINERID: pod.containerId, CNI_NETNS: pod.netns.path, CNI_IFNAME: 'eth0' }, stdin: JSON.stringify({ ...config, ...extra }) }, handlers);
  const pods: Pod[] = [];
  for (const label of labels) {
    const netns = Netns.open(makeNetns(`fds-${label}`));
    cleanups.push(() => netns.close());
    const containerId = `dual-${label}`;
    const out = await cni('ADD', { netns, containerId, ip4: '', ip6: '' });
    expect(out.exitCode, out.stdout).toBe(0);
    const ips = (JSON.parse(out.stdout) as { ips: Array<{ address: string }> }).ips.map((i) => i.address.split('/')[0]!);
    pods.push({ netns, containerId, ip4: ips.find((a) => !a.includes(':'))!, ip6: ips.find((a) => a.includes(':'))! });
  }

  const uplink = await attachUplink(dp, node, 'uplink');
  cleanups.push(() => detachUplink(pinRoot, 'uplink'));
  // The node's IPv6 address is what IPv6 flows from outside are SNATed to.
  expect(uplink.config).toMatchObject({ snatAddress: NODE_IP4, snatAddress6: NODE_IP6 });

  const prober = new Prober();
  cleanups.push(() => prober.close());
  return { dp, nodeName, node: nodeNetns, outsideName, outside, uplink, pods, prober, cni };
}


/** "pong … (you are ADDRESS:PORT)": the client the server saw. */
export function peerOf(reply: string): { address: string; port: number } {
  const m = /\(you are (.+):(\d+)\)$/.exec(reply.trim());
  if (!m) throw new Error(`no peer in ${JSON.stringify(reply)}`);
  return { address: m[1]!.replace(/^::ffff:/, ''), port: Number(m[2]) };
}
