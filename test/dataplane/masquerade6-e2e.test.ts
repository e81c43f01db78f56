// End to end, IPv6 masquerade: pods' IPv6 traffic to outside the cluster
// leaves masqueraded through to_uplink, and comes back through from_uplink;
// traffic between pods and to the node keeps the pod's address, and so do a
// pod's answers to a host outside that reaches it. masquerade-e2e.test.ts is
// the IPv4 twin.
//
//   pods 10.244.0.0/24, fd00:10:244::/64 ─ node 192.0.2.1/24 2001:db8:1::1/64 ═ uplink ═ eth0 192.0.2.100/24 2001:db8:1::100/64 outside
//
// The node is dual-stack-world.ts's. Pods are attached by ferry's CNI ADD
// (routed mode, from_pod on their host veths); from_uplink and to_uplink by
// attachUplink() with the default cluster CIDRs, which hold the pods' IPv6
// range. The outside knows no way to the pods (a test adds one where it
// needs it): its answers reach a pod only masqueraded. Everything but what ferry does itself is built with
// iproute2 (the oracle); all of it goes after each test, even a failed one.
import { afterEach, describe, expect, it } from 'vitest';
import { CT_FLAGS, ct6Entry, ct6Key, type CtEntry, type Ct4Key } from '../../engine/dataplane/layout.js';
import type { Dataplane } from '../../engine/dataplane/loader.js';
import { readCounters } from '../../engine/dataplane/metrics.js';
import { DEFAULT_CLUSTER_CIDRS, DEFAULT_SNAT_PORTS } from '../../engine/dataplane/uplink.js';
import { isRoot, run } from '../support/netns.js';
import { dualStackWorld, NODE_IP6, OUTSIDE_IP6, peerOf, type Pod, type World } from './dual-stack-world.js';

const POD_RANGE6 = 'fd00:10:244::/64';
/** A pod on another node: in the default cluster CIDR fd00:10:244::/56, not in this node's range. */
const REMOTE_POD_IP6 = 'fd00:10:244:1::5';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** dual-stack-world's node, its pods in POD_RANGE6, and an outside with no way back to them. */
async function world(labels: string[]): Promise<World> {
  const w = await dualStackWorld(cleanups, labels, { podRange6: POD_RANGE6, outsideRoutes: false });
  // The defaults: the pods' IPv6 range is in the cluster CIDRs, the node's IPv6 address is what they leave with.
  expect(DEFAULT_CLUSTER_CIDRS).toContain('fd00:10:244::/56');
  expect(w.uplink.config).toMatchObject({ snatAddress6: NODE_IP6, clusterCidrs: [...DEFAULT_CLUSTER_CIDRS] });
  expect(w.uplink.forwarding).toEqual([4, 6]);
  return w;
}

/** The ferry_ct6 entries, decoded. */
function flows6(dp: Dataplane): Array<{ key: Ct4Key; entry: CtEntry }> {
  return [...dp.maps.conntrack6.entries()].map(([k, v]) => ({ key: ct6Key.decode(k), entry: ct6Entry.decode(v) }));
}

describe.skipIf(!isRoot)('masquerading pods’ IPv6 traffic to outside the cluster (needs root)', () => {
  it('pods reach a TCP and a UDP server outside, which knows no way back to pods: it sees the node’s IPv6 address', async () => {
    const w = await world(['a', 'b']);
    await w.prober.serveTcp(w.outside, OUTSIDE_IP6, 9000);
    await w.prober.serveUdp(w.outside, OUTSIDE_IP6, 5353);
    for (const pod of w.pods) {
      for (let i = 0; i < 3; i++) {
        const tcp = peerOf((await w.prober.tcpExchange(pod.netns, OUTSIDE_IP6, 9000, `hello ${i}`, 3000)).reply);
        expect(tcp.address).toBe(NODE_IP6);
        expect(tcp.port).toBeGreaterThanOrEqual(DEFAULT_SNAT_PORTS.min);
        // A connected socket takes answers from the address it sent to only: the answer came back translated.
        const answer = await w.prober.udpExchange(pod.netns, OUTSIDE_IP6, 5353, `query ${i}`, 3000);
        expect(answer).toMatch(new RegExp(`^pong query ${i} from ${OUTSIDE_IP6}`));
        const udp = peerOf(answer);
        expect(udp.address).toBe(NODE_IP6);
        expect(udp.port).toBeGreaterThanOrEqual(DEFAULT_SNAT_PORTS.min);
      }
    }
    // Each pod's flows, both directions, in ferry_ct6 as masqueraded.
    for (const pod of w.pods) {
      const own = flows6(w.dp).filter(({ key }) => key.dir === 'forward' && key.saddr === pod.ip6 && key.daddr === OUTSIDE_IP6);
      expect(new Set(own.map(({ key }) => key.proto))).toEqual(new Set(['tcp', 'udp']));
      for (const { entry } of own) expect(entry).toMatchObject({ flags: CT_FLAGS.snat | CT_FLAGS.masq, natAddress: NODE_IP6 });
    }
    const counters = readCounters(w.dp.maps.metrics);
    expect(counters.masqueraded).toBeGreaterThan(0n);
    expect(counters.rev_translated).toBeGreaterThan(0n);
  });

  it('a long line crosses masqueraded as offloaded segments (GSO, partial checksums), and a closed UDP port is refused at once (ICMPv6 translated back)', async () => {
    const w = await world(['a']);
    const pod = w.pods[0]!;
    await w.prober.serveTcp(w.outside, OUTSIDE_IP6, 9001);
    const long = 'x'.repeat(200_000);
    const r = await w.prober.tcpExchange(pod.netns, OUTSIDE_IP6, 9001, long, 5000);
    expect(r.reply.startsWith(`pong ${long} `)).toBe(true);
    expect(peerOf(r.reply).address).toBe(NODE_IP6);
    // ECONNREFUSED comes only from the outside's port unreachable, about the masqueraded datagram, reaching the pod's socket.
    await expect(w.prober.udpExchange(pod.netns, OUTSIDE_IP6, 5399, 'anyone?', 3000)).rejects.toThrow(/ECONNREFUSED/);
    expect(readCounters(w.dp.maps.metrics).icmp_translated).toBeGreaterThan(0n);
  });

  it('pod to pod (another node’s, behind the uplink, too) and pod to the node keep the pod’s own IPv6 address', async () => {
    const w = await world(['a', 'b']);
    const [a, b] = w.pods as [Pod, Pod];
    // A pod on another node: the outside holds it on its loopback, and routes this node's pods back, as the network between nodes does.
    run('ip', ['-n', w.outsideName, '-6', 'addr', 'add', `${REMOTE_POD_IP6}/128`, 'dev', 'lo']);
    run('ip', ['-n', w.outsideName, '-6', 'route', 'add', POD_RANGE6, 'via', NODE_IP6]);
    run('ip', ['-n', w.node.name, '-6', 'route', 'add', 'fd00:10:244:1::/64', 'via', OUTSIDE_IP6]);
    await w.prober.serveTcp(b.netns, b.ip6, 9000);
    await w.prober.serveTcp(w.node, NODE_IP6, 9000);
    await w.prober.serveTcp(w.outside, REMOTE_POD_IP6, 9000);
    for (const host of [b.ip6, NODE_IP6, REMOTE_POD_IP6]) {
      expect(peerOf((await w.prober.tcpExchange(a.netns, host, 9000, 'hi', 3000)).reply).address).toBe(a.ip6);
    }
    expect(readCounters(w.dp.maps.metrics).masqueraded).toBe(0n);
  });

  it('a host outside routed to a pod gets the pod’s UDP answers from the pod’s own address (an inbound flow)', async () => {
    const w = await world(['a']);
    const pod = w.pods[0]!;
    run('ip', ['-n', w.outsideName, '-6', 'route', 'add', POD_RANGE6, 'via', NODE_IP6]);
    await w.prober.serveUdp(pod.netns, pod.ip6, 5353);
    for (let i = 0; i < 3; i++) {
      // A connected socket takes answers from the address it sent to only.
      expect(peerOf(await w.prober.udpExchange(w.outside, pod.ip6, 5353, `query ${i}`, 3000)).address).toBe(OUTSIDE_IP6);
    }
    // One inbound entry per query's socket, under the tuple of the pod's answers.
    const inbound = flows6(w.dp).filter(({ entry }) => entry.flags === CT_FLAGS.inbound);
    expect(inbound).toHaveLength(3);
    for (const { key } of inbound) expect(key).toMatchObject({ saddr: pod.ip6, sport: 5353, daddr: OUTSIDE_IP6, proto: 'udp', dir: 'forward' });
    expect(readCounters(w.dp.maps.metrics).masqueraded).toBe(0n);
  });
});
