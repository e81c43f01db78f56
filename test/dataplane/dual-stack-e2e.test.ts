// End to end, IPv6 and dual stack: a node namespace whose uplink has an
// IPv4 and an IPv6 address, pods given one address of each family by ferry's
// CNI ADD (routed mode, from_pod on each host veth), from_uplink attached by
// attachUplink(), and dual-stack Services reconciled from the model the way
// the daemon does it. Real TCP and UDP over IPv6 from a client pod to a
// ClusterIP and from outside to a NodePort; the IPv4 twin of each frontend
// keeps working beside it.
//
//   outside 192.0.2.100/24 2001:db8:1::100/64 ── eth0 ═ uplink ── node 192.0.2.1/24 2001:db8:1::1/64
//   (routes to the pod CIDRs via the node)                          pods 10.244.0.0/24, fd00:244::/64
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { ct6Entry, ct6Key, type CtEntry } from '../../engine/dataplane/layout.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { readCounters } from '../../engine/dataplane/metrics.js';
import type { ServiceInput } from '../../engine/dataplane/model.js';
import type { Reconciler } from '../../engine/dataplane/reconcile.js';
import { attachUplink, DEFAULT_SNAT_PORTS, detachUplink } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import { Netns } from '../../engine/netns/netns.js';
import { Prober } from '../../engine/probe/probe.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { isRoot, makeNetns, run } from '../support/netns.js';
import { NODE_NAME, programServices } from './uplink-world.js';

const NODE_IP4 = '192.0.2.1';
const NODE_IP6 = '2001:db8:1::1';
const OUTSIDE_IP6 = '2001:db8:1::100';
const VIP4 = '10.96.0.10';
const VIP6 = 'fd00:96::10';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Pod {
  netns: Netns;
  ip4: string;
  ip6: string;
}

interface World {
  dp: Dataplane;
  outside: Netns;
  pods: Pod[];
  prober: Prober;
}

async function world(labels: string[]): Promise<World> {
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
  ip(nodeName, 'addr', 'add', `${NODE_IP4}/24`, 'dev', 'uplink');
  ip(nodeName, '-6', 'addr', 'add', `${NODE_IP6}/64`, 'dev', 'uplink', 'nodad');
  ip(nodeName, 'link', 'set', 'uplink', 'up');
  ip(outsideName, 'addr', 'add', '192.0.2.100/24', 'dev', 'eth0');
  ip(outsideName, '-6', 'addr', 'add', `${OUTSIDE_IP6}/64`, 'dev', 'eth0', 'nodad');
  for (const dev of ['lo', 'eth0']) ip(outsideName, 'link', 'set', dev, 'up');
  ip(outsideName, 'route', 'add', '10.244.0.0/24', 'via', NODE_IP4);
  ip(outsideName, '-6', 'route', 'add', 'fd00:244::/64', 'via', NODE_IP6);
  ip(outsideName, '-6', 'route', 'add', 'fd00:96::/64', 'via', NODE_IP6);

  const nodeNetns = Netns.open(nodeName);
  cleanups.push(() => nodeNetns.close());
  const outside = Netns.open(outsideName);
  cleanups.push(() => outside.close());
  const node = await Handle.open(nodeNetns);
  cleanups.push(() => node.close());

  const handlers = createHandlers({ nodeNetns });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'dual-stack-e2e',
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }], [{ subnet: 'fd00:244::/64' }]] },
  });
  const pods: Pod[] = [];
  for (const label of labels) {
    const netns = Netns.open(makeNetns(`fds-${label}`));
    cleanups.push(() => netns.close());
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `dual-${label}`, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: conf }, handlers);
    expect(out.exitCode, out.stdout).toBe(0);
    const ips = (JSON.parse(out.stdout) as { ips: Array<{ address: string }> }).ips.map((i) => i.address.split('/')[0]!);
    pods.push({ netns, ip4: ips.find((a) => !a.includes(':'))!, ip6: ips.find((a) => a.includes(':'))! });
  }

  const uplink = await attachUplink(dp, node, 'uplink');
  cleanups.push(() => detachUplink(pinRoot, 'uplink'));
  // The node's IPv6 address is what IPv6 flows from outside are SNATed to.
  expect(uplink.config).toMatchObject({ snatAddress: NODE_IP4, snatAddress6: NODE_IP6 });

  const prober = new Prober();
  cleanups.push(() => prober.close());
  return { dp, outside, pods, prober };
}

/** Services into the maps as the daemon does it, NodePorts at the node's addresses of both families. */
function program(dp: Dataplane, services: Array<{ service: ServiceInput; endpoints: unknown[] }>): Reconciler {
  return programServices(dp, services, [NODE_IP4, NODE_IP6]);
}

/** Both families' endpoints of `pods` on `port` (one slice each in Kubernetes; the model takes them together). */
function endpointsOf(pods: Pod[], port: number, protocol: 'TCP' | 'UDP' = 'TCP'): unknown[] {
  return pods.flatMap((p) => [p.ip4, p.ip6].map((address) => ({ addresses: [address], ports: [{ port, protocol }], nodeName: NODE_NAME })));
}

function dualStack(name: string, ports: Array<{ port: number; targetPort: number; protocol?: 'TCP' | 'UDP'; nodePort?: number }>, extra: Partial<ServiceInput> = {}): ServiceInput {
  return {
    namespace: 'default',
    name,
    clusterIPs: [VIP4, VIP6],
    ipFamilies: ['IPv4', 'IPv6'],
    ipFamilyPolicy: 'RequireDualStack',
    ports,
    ...extra,
  } as ServiceInput;
}

/** "pong … (you are ADDRESS:PORT)": the client the server saw. */
function peerOf(reply: string): { address: string; port: number } {
  const m = /\(you are (.+):(\d+)\)$/.exec(reply.trim());
  if (!m) throw new Error(`no peer in ${JSON.stringify(reply)}`);
  return { address: m[1]!.replace(/^::ffff:/, ''), port: Number(m[2]) };
}

/** The forward ferry_ct6 entries of flows to host:port. */
function flows6To(dp: Dataplane, host: string, port: number): CtEntry[] {
  const out: CtEntry[] = [];
  for (const [k, v] of dp.maps.conntrack6.entries()) {
    const key = ct6Key.decode(k);
    if (key.dir === 'forward' && key.daddr === host && key.dport === port) out.push(ct6Entry.decode(v));
  }
  return out;
}

describe.skipIf(!isRoot)('IPv6 and dual-stack Services through the eBPF dataplane (needs root)', () => {
  it('a pod reaches a dual-stack ClusterIP over IPv6 and IPv4: TCP and UDP, both backends, its own address kept', async () => {
    const w = await world(['client', 'be1', 'be2']);
    const [client, ...backends] = w.pods as [Pod, Pod, Pod];
    const reconciler = program(w.dp, [
      { service: dualStack('web', [{ port: 80, targetPort: 8080 }]), endpoints: endpointsOf(backends, 8080) },
      { service: { ...dualStack('dns', [{ port: 53, targetPort: 5353, protocol: 'UDP' }]), clusterIPs: ['10.96.0.53', 'fd00:96::53'] } as ServiceInput, endpoints: endpointsOf(backends, 5353, 'UDP') },
    ]);
    // One id space for both families: the IPv6 frontend has an index of its own.
    const index4 = reconciler.revNatIndex(`${VIP4}:80/tcp`);
    const index6 = reconciler.revNatIndex(`${VIP6}:80/tcp`);
    expect(index4).toBeGreaterThan(0);
    expect(index6).toBeGreaterThan(0);
    expect(index6).not.toBe(index4);

    for (const b of backends) {
      await w.prober.serveTcp(b.netns, '::', 8080);
      await w.prober.serveUdp(b.netns, b.ip6, 5353);
    }
    for (let i = 0; i < 30; i++) {
      const r = await w.prober.tcpExchange(client.netns, VIP6, 80, `six ${i}`);
      // The connection is to the VIP: had the reply come from the backend's own address, it would not exist.
      expect(peerOf(r.reply).address).toBe(client.ip6);
    }
    // Conntrack says both backends took IPv6 flows (30 flows all on one: p = 2^-29).
    expect(new Set(flows6To(w.dp, VIP6, 80).map((e) => e.backendId)).size).toBe(2);
    // The IPv4 twin of the frontend, beside it, reaches the backends' IPv4 addresses.
    const r4 = await w.prober.tcpExchange(client.netns, VIP4, 80, 'four');
    expect(peerOf(r4.reply).address).toBe(client.ip4);

    const answer = await w.prober.udpExchange(client.netns, 'fd00:96::53', 53, 'query');
    expect(answer).toMatch(new RegExp(`^pong query from (${backends.map((b) => b.ip6.replaceAll(':', '\\:')).join('|')})`));
    expect(readCounters(w.dp.maps.metrics).rev_translated).toBeGreaterThan(0n);
  });

  it('an IPv6 ClusterIP without endpoints is refused at once (ICMPv6 port unreachable), TCP and UDP', async () => {
    const w = await world(['client']);
    const [client] = w.pods as [Pod];
    program(w.dp, [
      { service: dualStack('empty', [{ port: 80, targetPort: 8080 }]), endpoints: [] },
      { service: { ...dualStack('empty-udp', [{ port: 53, targetPort: 53, protocol: 'UDP' }]), clusterIPs: ['10.96.0.53', 'fd00:96::53'] } as ServiceInput, endpoints: [] },
    ]);
    // ECONNREFUSED comes only from the port unreachable; a lost SYN would end in ETIMEDOUT.
    await expect(w.prober.tcpExchange(client.netns, VIP6, 80, 'anyone?')).rejects.toThrow(/ECONNREFUSED/);
    const udp = await w.prober.openUdpSocket(client.netns, 'fd00:96::53', 53);
    await expect(udp.send('anyone?')).rejects.toThrow(/ECONNREFUSED/);
    await udp.close();
    expect(readCounters(w.dp.maps.metrics).reject_no_backend).toBeGreaterThanOrEqual(2n);
  });

  it('a pod reaching itself through an IPv6 ClusterIP (hairpin) sees the node side, fe80::1, as its client', async () => {
    const w = await world(['self']);
    const [pod] = w.pods as [Pod];
    program(w.dp, [{ service: dualStack('self', [{ port: 80, targetPort: 8080 }]), endpoints: endpointsOf([pod], 8080) }]);
    await w.prober.serveTcp(pod.netns, '::', 8080);
    const r = await w.prober.tcpExchange(pod.netns, VIP6, 80, 'me');
    expect(peerOf(r.reply).address).toMatch(/^fe80::1(%.*)?$/);
    expect(readCounters(w.dp.maps.metrics).hairpin).toBeGreaterThan(0n);
  });

  it('an IPv6 NodePort from outside: policy Cluster SNATs to the node’s IPv6 address, Local keeps the client’s', async () => {
    const w = await world(['be1', 'be2']);
    program(w.dp, [
      { service: dualStack('cluster', [{ port: 80, targetPort: 8080, nodePort: 30080 }], { type: 'NodePort' }), endpoints: endpointsOf(w.pods, 8080) },
      {
        service: { ...dualStack('local', [{ port: 81, targetPort: 8080, nodePort: 30081 }], { type: 'NodePort', externalTrafficPolicy: 'Local' }), clusterIPs: ['10.96.0.11', 'fd00:96::11'] } as ServiceInput,
        endpoints: endpointsOf(w.pods, 8080),
      },
    ]);
    for (const b of w.pods) await w.prober.serveTcp(b.netns, '::', 8080);

    for (let i = 0; i < 8; i++) {
      const peer = peerOf((await w.prober.tcpExchange(w.outside, NODE_IP6, 30080, `cluster ${i}`)).reply);
      expect(peer.address).toBe(NODE_IP6);
      expect(peer.port).toBeGreaterThanOrEqual(DEFAULT_SNAT_PORTS.min);
    }
    const snat = flows6To(w.dp, NODE_IP6, 30080);
    expect(snat.length).toBe(8);
    for (const e of snat) expect(e.natAddress).toBe(NODE_IP6);

    for (let i = 0; i < 4; i++) {
      const peer = peerOf((await w.prober.tcpExchange(w.outside, NODE_IP6, 30081, `local ${i}`)).reply);
      expect(peer.address).toBe(OUTSIDE_IP6);
    }
    // A ClusterIP is served to pods only: from outside (routed to the node), it is nobody's.
    const before = readCounters(w.dp.maps.metrics).pass_not_external;
    await expect(w.prober.tcpExchange(w.outside, VIP6, 80, 'no', 1000)).rejects.toThrow();
    expect(readCounters(w.dp.maps.metrics).pass_not_external).toBeGreaterThan(before);
  });
});
