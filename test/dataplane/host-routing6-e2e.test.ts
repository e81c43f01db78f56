// End to end: IPv6 host routing (bpf/lib/route6.h), host-routing-e2e.test.ts's
// IPv6 twin on a dual-stack node (dual-stack-world.ts). CNI ADD registers
// each pod's IPv6 address for bpf_redirect_peer (MAPS.localPods6, checked
// against `ip -j link` as the oracle), DEL and GC forget it; then, with the
// node's ip6tables FORWARD chain dropping everything, pod↔pod, pod→IPv6
// ClusterIP (a local backend) and pod↔outside all still work, because none
// of their packets cross the node's stack — until a pod's entry is taken
// away, and what comes in from the uplink for it falls back to the stack
// and into the DROP.
import { afterEach, describe, expect, it } from 'vitest';
import { localPod6Key } from '../../engine/dataplane/layout.js';
import { listLocalPods } from '../../engine/dataplane/local-pods.js';
import type { ServiceInput } from '../../engine/dataplane/model.js';
import { inNetns, ipJson, isRoot, run } from '../support/netns.js';
import { dualStackWorld, OUTSIDE_IP6, peerOf, type Pod, type World } from './dual-stack-world.js';
import { counters, NODE_NAME, programServices } from './uplink-world.js';

const VIP6 = 'fd00:96::10';

const hasIp6tables = isRoot && (() => {
  try {
    run('ip6tables', ['--version']);
    return true;
  } catch {
    return false;
  }
})();

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What ferry_pod6 should hold for `pod`, read with iproute2: its host veth (eth0's peer) and both MACs. */
function expectedEntry(w: World, pod: Pod) {
  const [inside] = ipJson<Array<{ address: string; link_index: number }>>(pod.netns.name, ['link', 'show', 'dev', 'eth0']);
  const host = ipJson<Array<{ ifindex: number; address: string }>>(w.nodeName, ['link', 'show']).find((l) => l.ifindex === inside!.link_index);
  return { address: pod.ip6, ifindex: host!.ifindex, hostMac: host!.address, podMac: inside!.address };
}

const byAddress = (x: { address: string }, y: { address: string }) => x.address.localeCompare(y.address);

describe.skipIf(!isRoot)('IPv6 host routing end to end (needs root)', () => {
  it('CNI ADD registers each pod’s IPv6 address with its host veth and both MACs; DEL and GC forget it', async () => {
    const w = await dualStackWorld(cleanups, ['a', 'b', 'c']);
    const [a, b, c] = w.pods as [Pod, Pod, Pod];
    expect(listLocalPods(w.dp.maps.localPods6, 6).sort(byAddress)).toEqual([a, b, c].map((p) => expectedEntry(w, p)).sort(byAddress));
    // Each IPv4 address in ferry_pod4 beside it, with the same value.
    expect(listLocalPods(w.dp.maps.localPods).map((p) => p.address).sort()).toEqual([a, b, c].map((p) => p.ip4).sort());

    const del = await w.cni('DEL', b);
    expect(del.exitCode, del.stdout).toBe(0);
    expect(w.dp.maps.localPods6.lookup(localPod6Key.encode({ address: b.ip6 }))).toBeUndefined();
    expect(listLocalPods(w.dp.maps.localPods6, 6).map((p) => p.address).sort()).toEqual([a.ip6, c.ip6].sort());

    const gc = await w.cni('GC', a, { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: a.containerId, ifname: 'eth0' }] });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(listLocalPods(w.dp.maps.localPods6, 6)).toEqual([expectedEntry(w, a)]);
    expect(listLocalPods(w.dp.maps.localPods).map((p) => p.address)).toEqual([a.ip4]);
  });

  it.skipIf(!hasIp6tables)('with the node’s ip6tables FORWARD chain dropping all, IPv6 pods, a ClusterIP’s local backend and the outside are reached past the stack', async () => {
    const w = await dualStackWorld(cleanups, ['a', 'b']);
    const [a, b] = w.pods as [Pod, Pod];
    const service = { namespace: 'default', name: 'web6', clusterIPs: [VIP6], ipFamilies: ['IPv6'], ports: [{ port: 80, targetPort: 8080 }] } as ServiceInput;
    programServices(w.dp, [{ service, endpoints: [{ addresses: [b.ip6], ports: [{ port: 8080, protocol: 'TCP' }], nodeName: NODE_NAME }] }]);
    for (const pod of [a, b]) await w.prober.serveTcp(pod.netns, '::', 8080);
    await w.prober.serveTcp(w.outside, OUTSIDE_IP6, 8080);
    inNetns(w.nodeName, 'ip6tables', ['-P', 'FORWARD', 'DROP']);

    const before = counters(w.dp);
    expect(peerOf((await w.prober.tcpExchange(a.netns, b.ip6, 8080, 'pod to pod')).reply).address).toBe(a.ip6);
    expect(peerOf((await w.prober.tcpExchange(a.netns, VIP6, 80, 'to the ClusterIP')).reply).address).toBe(a.ip6);
    const mid = counters(w.dp);
    // At least the handshake, the message and the reply of each exchange into a pod.
    expect(mid.peer_redirect - before.peer_redirect).toBeGreaterThanOrEqual(6n);

    // Out by the FIB (masqueraded or not), the answers back in by a peer redirect.
    await w.prober.tcpExchange(a.netns, OUTSIDE_IP6, 8080, 'to the outside');
    const after = counters(w.dp);
    expect(after.fib_redirect - mid.fib_redirect).toBeGreaterThanOrEqual(3n);
    expect(after.peer_redirect - mid.peer_redirect).toBeGreaterThanOrEqual(2n);

    // Without a's entry, what comes in from the uplink for it takes the stack, which drops it.
    expect(w.dp.maps.localPods6.delete(localPod6Key.encode({ address: a.ip6 }))).toBe(true);
    await expect(w.prober.tcpExchange(w.outside, a.ip6, 8080, 'through the stack', 700)).rejects.toThrow(/ETIMEDOUT|no answer/i);
  });
});
