// End to end, IPv6 and dual stack: a node namespace whose uplink has an
// IPv4 and an IPv6 address, pods given one address of each family by ferry's
// CNI ADD (routed mode, from_pod on each host veth), from_uplink attached by
// attachUplink(), and dual-stack Services reconciled from the model the way
// the daemon does it. Real TCP and UDP over IPv6 from a client pod to a
// ClusterIP and from outside to a NodePort; the IPv4 twin of each frontend
// keeps working beside it. The namespaces: dual-stack-world.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { ct6Entry, ct6Key, type CtEntry } from '../../engine/dataplane/layout.js';
import type { Dataplane } from '../../engine/dataplane/loader.js';
import { readCounters } from '../../engine/dataplane/metrics.js';
import type { ServiceInput } from '../../engine/dataplane/model.js';
import type { Reconciler } from '../../engine/dataplane/reconcile.js';
import { DEFAULT_SNAT_PORTS } from '../../engine/dataplane/uplink.js';
import { isRoot } from '../support/netns.js';
import { dualStackWorld, NODE_IP4, NODE_IP6, OUTSIDE_IP6, peerOf, type Pod, type World } from './dual-stack-world.js';
import { NODE_NAME, programServices } from './uplink-world.js';

const VIP4 = '10.96.0.10';
const VIP6 = 'fd00:96::10';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function world(labels: string[]): Promise<World> {
  return dualStackWorld(cleanups, labels);
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
