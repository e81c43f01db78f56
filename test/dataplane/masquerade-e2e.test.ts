// End to end: pods' traffic to outside the cluster leaves masqueraded
// through to_uplink, and comes back through from_uplink; traffic between
// pods (also another node's) and to the node keeps the pod's address. See
// uplink-world.ts for the namespaces.
import { describe, expect, it } from 'vitest';
import { CT_FLAGS, ct4Key, ctEntry } from '../../engine/dataplane/layout.js';
import { DEFAULT_SNAT_PORTS } from '../../engine/dataplane/uplink.js';
import { isRoot } from '../support/netns.js';
import { counters, FAR_IP, NODE_IP, OUTSIDE_IP, peerOf, REMOTE_POD_IP, uplinkWorld } from './uplink-world.js';

describe.skipIf(!isRoot)('masquerading pods’ traffic to outside the cluster (needs root)', () => {
  it('a pod reaches a host beyond the uplink, which knows no way back to pods: it sees the node’s address', async () => {
    const w = await uplinkWorld(['a', 'b']);
    await w.prober.serveTcp(w.far, FAR_IP, 9000);
    for (const pod of w.pods) {
      for (let i = 0; i < 3; i++) {
        const peer = peerOf((await w.prober.tcpExchange(pod.netns, FAR_IP, 9000, `hello ${i}`, 3000)).reply);
        expect(peer.address).toBe(NODE_IP);
        expect(peer.port).toBeGreaterThanOrEqual(DEFAULT_SNAT_PORTS.min);
      }
    }
    expect(counters(w.dp).masqueraded).toBeGreaterThan(0n);
  });

  it('a pod’s ping to the far host is answered, its identifier masqueraded and given back', async () => {
    const w = await uplinkWorld(['a']);
    const pod = w.pods[0]!;
    const replies = await w.prober.ping(pod.netns, FAR_IP, { count: 3, intervalMs: 50, timeoutMs: 2000 });
    expect(replies.map((r) => r.rttMs !== undefined)).toEqual([true, true, true]);
    const echo = [...w.dp.maps.conntrack.entries()]
      .map(([k, v]) => ({ key: ct4Key.decode(k), entry: ctEntry.decode(v) }))
      .find(({ key }) => key.proto === 'icmp' && key.dir === 'forward');
    expect(echo).toMatchObject({ key: { saddr: pod.ip, daddr: FAR_IP }, entry: { flags: CT_FLAGS.snat | CT_FLAGS.masq, natAddress: NODE_IP } });
  });

  it('pod to pod, to another node’s pod and to the node keep the pod’s own address; the uplink’s segment is outside', async () => {
    const w = await uplinkWorld(['a', 'b']);
    const [a, b] = w.pods;
    await w.prober.serveTcp(b!.netns, b!.ip, 9000);
    await w.prober.serveTcp(w.outside, REMOTE_POD_IP, 9000);
    await w.prober.serveTcp(w.outside, OUTSIDE_IP, 9001);
    await w.prober.serveTcp(w.node, NODE_IP, 9000);
    for (const [host, port] of [[b!.ip, 9000], [REMOTE_POD_IP, 9000], [NODE_IP, 9000]] as const) {
      expect(peerOf((await w.prober.tcpExchange(a!.netns, host, port, 'hi', 3000)).reply).address).toBe(a!.ip);
    }
    expect(counters(w.dp).masqueraded).toBe(0n);
    // The outside, on the uplink's own segment, is outside the cluster too;
    // a long line crosses as segments the veths offload (GSO, partial checksums).
    const long = 'x'.repeat(200_000);
    const r = await w.prober.tcpExchange(a!.netns, OUTSIDE_IP, 9001, long, 5000);
    expect(r.reply.startsWith(`pong ${long} `)).toBe(true);
    expect(peerOf(r.reply).address).toBe(NODE_IP);
  });

  it('a host outside routed to a pod gets its answers from the pod’s own address: UDP and ping', async () => {
    const w = await uplinkWorld(['a']);
    const pod = w.pods[0]!;
    await w.prober.serveUdp(pod.netns, pod.ip, 5353);
    for (let i = 0; i < 3; i++) {
      // A connected socket takes answers from the address it sent to only.
      expect(peerOf(await w.prober.udpExchange(w.outside, pod.ip, 5353, `query ${i}`, 2000)).address).toBe(OUTSIDE_IP);
    }
    const replies = await w.prober.ping(w.outside, pod.ip, { count: 3, intervalMs: 50, timeoutMs: 2000 });
    expect(replies.map((r) => r.rttMs !== undefined)).toEqual([true, true, true]);
    expect(counters(w.dp).masqueraded).toBe(0n);
  });
});
