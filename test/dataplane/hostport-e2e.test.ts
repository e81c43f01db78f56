// End to end: hostPorts (CNI runtimeConfig.portMappings) served by ferry's
// dataplane, no portmap plugin and no iptables. A pod added by CNI ADD with
// mappings is reached at the node's address:hostPort from the "outside" on
// the uplink's segment (its address kept, as portmap keeps it) and from
// another pod; CHECK verifies the maps; the daemon's Reconciler, syncing
// Services into the same maps, leaves the hostPorts alone; a second pod
// asking for the same hostPort is refused naming both; DEL removes it, and
// GC what belongs to attachments no longer listed.
// See uplink-world.ts for the namespaces.
import { describe, expect, it } from 'vitest';
import { backendSlots } from '../../engine/dataplane/backend-slots.js';
import { backendId, HOSTPORT_REV_NAT, isHostPortBackend, isHostPortRevNat, lb4Key, lb4Service, revNatIndex } from '../../engine/dataplane/layout.js';
import { listLocalPods } from '../../engine/dataplane/local-pods.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import type { Netns } from '../../engine/netns/netns.js';
import { isRoot, makeNetns } from '../support/netns.js';
import { openNetns } from '../support/probing.js';
import { endpointOf, NODE_IP, OUTSIDE_IP, peerOf, programServices, uplinkWorld, type UplinkWorld } from './uplink-world.js';

const MAPPINGS = [
  { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
  { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: NODE_IP },
];

/** Everything in the maps in the hostPort id ranges (of the backends map, an array, the used slots). */
function hostPortEntries(w: UplinkWorld): { services: number; backends: number; revNat: number } {
  const count = (map: { keys(): Iterable<Buffer> }, mine: (key: Buffer) => boolean) => [...map.keys()].filter(mine).length;
  return {
    services: [...w.dp.maps.services.entries()].filter(([, v]) => isHostPortRevNat(lb4Service.decode(v).revNatIndex)).length,
    backends: backendSlots(w.dp.maps.backends).filter(([k]) => isHostPortBackend(backendId.decode(k))).length,
    revNat: count(w.dp.maps.revNat, (k) => isHostPortRevNat(revNatIndex.decode(k))),
  };
}

async function addPod(w: UplinkWorld, label: string, podName: string): Promise<{ netns: Netns; out: Awaited<ReturnType<UplinkWorld['cni']>> }> {
  const netns = openNetns(makeNetns(`fhp-${label}`));
  const out = await w.cni('ADD', `hp-${label}`, netns, { runtimeConfig: { portMappings: MAPPINGS } }, `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podName}`);
  return { netns, out };
}

describe.skipIf(!isRoot)('hostPorts through the eBPF dataplane (needs root)', () => {
  it('ADD serves them from outside and from pods, CHECK agrees, the Reconciler leaves them, a second claim is refused, DEL removes them', async () => {
    const w = await uplinkWorld(['client']);
    const [client] = w.pods;
    const { netns, out } = await addPod(w, 'a', 'web-a');
    expect(out.exitCode, out.stdout).toBe(0);
    const result = JSON.parse(out.stdout) as { ips: Array<{ address: string }> };
    const podIp = result.ips[0]!.address.split('/')[0]!;
    await w.prober.serveTcp(netns, podIp, 80);
    await w.prober.serveUdp(netns, podIp, 53);
    // One frontend per mapping (the node has one global address): slot 0 and slot 1 each.
    expect(hostPortEntries(w)).toEqual({ services: 4, backends: 2, revNat: 2 });

    const reach = async () => {
      // From outside: DNAT only, the client's address kept, the reply from the address it asked.
      const tcp = await w.prober.tcpExchange(w.outside, NODE_IP, 8080, 'from outside');
      expect(peerOf(tcp.reply).address).toBe(OUTSIDE_IP);
      expect(peerOf(await w.prober.udpExchange(w.outside, NODE_IP, 5353, 'udp from outside')).address).toBe(OUTSIDE_IP);
      // From another pod of the node.
      expect(peerOf((await w.prober.tcpExchange(client!.netns, NODE_IP, 8080, 'from a pod')).reply).address).toBe(client!.ip);
    };
    await reach();

    const prevResult = JSON.parse(out.stdout) as unknown;
    const check = await w.cni('CHECK', 'hp-a', netns, { runtimeConfig: { portMappings: MAPPINGS }, prevResult });
    expect(check.exitCode, check.stdout).toBe(0);

    // The daemon's Reconciler, from maps it has never seen, programs a Service beside them.
    const reconciler = await Reconciler.adopt(w.dp.maps);
    expect(reconciler.conflicts).toEqual([]);
    programServices(w.dp, [
      { service: { namespace: 'default', name: 'other', type: 'ClusterIP', clusterIPs: ['10.96.0.20'], ports: [{ port: 80, targetPort: 80 }] }, endpoints: [endpointOf({ netns, ip: podIp }, 80)] },
    ]);
    expect(hostPortEntries(w)).toEqual({ services: 4, backends: 2, revNat: 2 });
    await reach();

    // Another pod for the same hostPort: refused, naming both pods; the first keeps it.
    const second = await addPod(w, 'b', 'web-b');
    expect(second.out.exitCode).toBe(1);
    const error = JSON.parse(second.out.stdout) as { code: number; msg: string };
    expect(error.code).toBe(103);
    expect(error.msg).toMatch(/^hostPort 192\.0\.2\.1:8080\/tcp for pod default\/web-b \(container hp-b\)/);
    expect(error.msg).toContain(`already held by pod default/web-a (container hp-a) (${podIp}:80)`);
    expect(hostPortEntries(w)).toEqual({ services: 4, backends: 2, revNat: 2 });
    await reach();

    // Taken from the maps behind CHECK's back: CHECK names it.
    const slot0 = lb4Key.encode({ address: NODE_IP, port: 5353, proto: 'udp', slot: 0, scope: 'external' });
    const head = w.dp.maps.services.lookup(slot0)!;
    expect(lb4Service.decode(head).revNatIndex).toBeGreaterThanOrEqual(HOSTPORT_REV_NAT.min);
    w.dp.maps.services.delete(slot0);
    const broken = await w.cni('CHECK', 'hp-a', netns, { runtimeConfig: { portMappings: MAPPINGS }, prevResult });
    expect(JSON.parse(broken.stdout)).toMatchObject({ code: 102, msg: expect.stringContaining(`hostPort ${NODE_IP}:5353/udp → ${podIp}:53 is not in the services map`) });
    w.dp.maps.services.update(slot0, head);

    const del = await w.cni('DEL', 'hp-a', netns, { runtimeConfig: { portMappings: MAPPINGS } });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(hostPortEntries(w)).toEqual({ services: 0, backends: 0, revNat: 0 });
    // The node itself has nothing on :8080: it refuses.
    await expect(w.prober.tcpExchange(w.outside, NODE_IP, 8080, 'gone?', 3000)).rejects.toThrow(/ECONNREFUSED|refused/i);
    // Now the second pod gets it.
    const third = await addPod(w, 'c', 'web-c');
    expect(third.out.exitCode, third.out.stdout).toBe(0);
  });

  it('GC removes the hostPorts and host-routing entries of the attachments it is not told to keep', async () => {
    const w = await uplinkWorld(['keep']);
    const { netns, out } = await addPod(w, 'gone', 'web-gone');
    expect(out.exitCode, out.stdout).toBe(0);
    expect(hostPortEntries(w)).toEqual({ services: 4, backends: 2, revNat: 2 });
    expect(listLocalPods(w.dp.maps.localPods)).toHaveLength(2);
    const gc = await w.cni('GC', '', netns, { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'uplink-keep', ifname: 'eth0' }] });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(hostPortEntries(w)).toEqual({ services: 0, backends: 0, revNat: 0 });
    expect(listLocalPods(w.dp.maps.localPods).map((p) => p.address)).toEqual([w.pods[0]!.ip]);
  });
});
