// End to end: host routing (bpf/lib/route4.h). CNI ADD registers each pod
// for bpf_redirect_peer (MAPS.localPods, checked against `ip -j link` as the
// oracle) and DEL forgets it; then, with the node's netfilter FORWARD chain
// dropping everything, pod↔pod, pod→ClusterIP, pods↔another node's pod and
// outside→NodePort all still work, because none of their packets cross the
// node's stack — until a pod's entry is taken away, and what comes in from
// the uplink for it falls back to the stack and into the DROP. See uplink-world.ts for the namespaces.
import { describe, expect, it } from 'vitest';
import { localPod4Key } from '../../engine/dataplane/layout.js';
import { listLocalPods } from '../../engine/dataplane/local-pods.js';
import { inNetns, ipJson, isRoot, run } from '../support/netns.js';
import { podNode } from './pod-node.js';
import { counters, endpointOf, NODE_IP, peerOf, programServices, REMOTE_POD_IP, uplinkWorld } from './uplink-world.js';

const VIP = '10.96.0.10';
const hasIptables = isRoot && (() => {
  try {
    run('iptables', ['--version']);
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!isRoot)('host routing end to end (needs root)', () => {
  it('CNI ADD registers each pod with its host veth and both MACs; DEL forgets it', async () => {
    const cleanups: Array<() => unknown> = [];
    try {
      const n = await podNode(cleanups, 'fhr');
      const a = await n.add('a');
      const b = await n.add('b');
      const expected = [a, b].map((pod) => {
        const [host] = ipJson<Array<{ ifindex: number; address: string }>>(n.node.name, ['link', 'show', 'dev', pod.hostVeth]);
        const [inside] = ipJson<Array<{ address: string }>>(pod.netns.name, ['link', 'show', 'dev', 'eth0']);
        return { address: pod.ip, ifindex: host!.ifindex, hostMac: host!.address, podMac: inside!.address };
      });
      const byAddress = (x: { address: string }, y: { address: string }) => x.address.localeCompare(y.address);
      expect(listLocalPods(n.dp.maps.localPods).sort(byAddress)).toEqual(expected.sort(byAddress));

      await n.del('b', b);
      expect(n.dp.maps.localPods.lookup(localPod4Key.encode({ address: b.ip }))).toBeUndefined();
      expect(listLocalPods(n.dp.maps.localPods).map((p) => p.address)).toEqual([a.ip]);
    } finally {
      for (const c of cleanups.splice(0).reverse()) await c();
    }
  });

  it.skipIf(!hasIptables)('with the node’s FORWARD chain dropping all, pods, a ClusterIP, another node’s pods and a NodePort are reached past the stack', async () => {
    const w = await uplinkWorld(['a', 'b']);
    const [a, b] = w.pods as [(typeof w.pods)[0], (typeof w.pods)[0]];
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'web', type: 'NodePort', clusterIPs: [VIP], ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] },
        endpoints: [endpointOf(b, 8080)],
      },
    ]);
    for (const pod of [a, b]) await w.prober.serveTcp(pod.netns, pod.ip, 8080);
    await w.prober.serveTcp(w.outside, REMOTE_POD_IP, 8080);
    // The outside speaks for another node's pod towards this node's pods: no masquerade either way.
    run('ip', ['-n', w.outside.name, 'route', 'replace', '10.244.0.0/24', 'via', NODE_IP, 'src', REMOTE_POD_IP]);
    inNetns(w.node.name, 'iptables', ['-P', 'FORWARD', 'DROP']);

    const before = counters(w.dp);
    expect(peerOf((await w.prober.tcpExchange(a.netns, b.ip, 8080, 'pod to pod')).reply).address).toBe(a.ip);
    expect(peerOf((await w.prober.tcpExchange(a.netns, VIP, 80, 'to the ClusterIP')).reply).address).toBe(a.ip);
    expect(peerOf((await w.prober.tcpExchange(a.netns, REMOTE_POD_IP, 8080, 'to another node')).reply).address).toBe(a.ip);
    expect(peerOf((await w.prober.tcpExchange(w.outside, a.ip, 8080, 'from another node')).reply).address).toBe(REMOTE_POD_IP);
    const mid = counters(w.dp);
    // At least the handshake, the message and the reply of each exchange into a pod of this node.
    expect(mid.peer_redirect - before.peer_redirect).toBeGreaterThanOrEqual(9n);
    // a's packets to another node's pod.
    expect(mid.fib_redirect - before.fib_redirect).toBeGreaterThanOrEqual(3n);

    // Cluster policy: SNATed to the node, into b; b's replies out by the FIB,
    // a reply this long in TSO bursts (GSO packets) as well.
    const long = `NodePort ${'x'.repeat(256 * 1024)}`;
    const reply = (await w.prober.tcpExchange(w.outside, NODE_IP, 30080, long, 5000)).reply;
    expect(reply.startsWith(`pong ${long} (`)).toBe(true);
    expect(peerOf(reply).address).toBe(NODE_IP);
    const after = counters(w.dp);
    expect(after.peer_redirect - mid.peer_redirect).toBeGreaterThanOrEqual(3n);
    expect(after.fib_redirect - mid.fib_redirect).toBeGreaterThanOrEqual(2n);
    expect(after.fib_miss).toBe(0n);

    // Without a's entry, what comes in from the uplink for it takes the stack, which drops it.
    expect(w.dp.maps.localPods.delete(localPod4Key.encode({ address: a.ip }))).toBe(true);
    await expect(w.prober.tcpExchange(w.outside, a.ip, 8080, 'through the stack', 700)).rejects.toThrow(/ETIMEDOUT|no answer/i);
  });
});
