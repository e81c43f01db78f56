// IPv6 host routing (bpf/lib/route6.h) under BPF_PROG_TEST_RUN, as
// host-routing.test.ts for IPv4: packets to a pod registered in
// MAPS.localPods6 leave from_pod and from_uplink with TC_ACT_REDIRECT
// (bpf_redirect_peer), the Ethernet header the node writes into that pod
// (its host veth's MAC to the pod's), the hop limit down by one; anything a
// lookup has no answer for keeps the verdict it had before.
//
// The redirect's ifindex cannot be read back from a test run; the MACs come
// from the same map entry, and host-routing6-e2e.test.ts shows packets
// arriving in the right pod. A test run has no ingress interface, so FIB
// lookups find no device: what is not for a local pod goes to the stack.
import { describe, expect, it } from 'vitest';
import { SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, NEXT, OK, REDIRECT, SHOT } from './lb-fixture.js';
import { ETH_HLEN, type Ipv6Spec, ipv6Packet, parseIpv6Packet, TCP } from './packets6.js';

const CLIENT = { address: 'fd00:10:244::5', ifindex: 41, podMac: '0a:58:0a:f4:00:05', hostMac: 'fe:ee:00:00:00:05' };
const SERVER = { address: 'fd00:10:244::6', ifindex: 42, podMac: '0a:58:0a:f4:00:06', hostMac: 'fe:ee:00:00:00:06' };
const VIP = 'fd00:10:96::10';
const NODE = '2001:db8::1';
const OUTSIDE = '2001:db8:1::7';

function macs(frame: Buffer): { dst: string; src: string } {
  const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
  return { dst: hex(frame.subarray(0, 6)), src: hex(frame.subarray(6, 12)) };
}

async function withPods(): Promise<LbFixture> {
  const lb = await loadLb();
  for (const { address, ...pod } of [CLIENT, SERVER]) lb.addLocalPod6(address, pod);
  lb.setNodeConfig({ snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535, snatAddress6: NODE });
  return lb;
}

/** Expects `spec`, run through `run`, delivered into `pod`: rewritten as `as` (default: unchanged but for the hop limit). */
async function expectIntoPod(run: (f: Buffer) => Promise<{ retval: number; data: Buffer }>, spec: Ipv6Spec, pod: typeof SERVER, as: Partial<Ipv6Spec> = {}): Promise<void> {
  const result = await run(ipv6Packet(spec));
  expect(result.retval).toBe(REDIRECT);
  expect(macs(result.data)).toEqual({ dst: pod.podMac, src: pod.hostMac });
  const hopLimit = (spec.hopLimit ?? 64) - 1;
  expect(parseIpv6Packet(result.data)).toMatchObject({ dst: pod.address, hopLimit, l4ChecksumValid: true });
  expect(result.data.subarray(ETH_HLEN)).toEqual(ipv6Packet({ ...spec, ...as, hopLimit }).subarray(ETH_HLEN));
}

describe.skipIf(!isRoot)('IPv6 host routing: bpf_redirect_peer into pods of this node (needs root: BPF_PROG_TEST_RUN)', () => {
  it('from_pod: pod to pod goes straight into the destination pod', async () => {
    const lb = await withPods();
    await expectIntoPod((f) => lb.run(f), { proto: 'tcp', src: CLIENT.address, dst: SERVER.address, sport: 40000, dport: 8080, hopLimit: 64 }, SERVER);
    await expectIntoPod((f) => lb.run(f), { proto: 'udp', src: SERVER.address, dst: CLIENT.address, sport: 53, dport: 40001, hopLimit: 2 }, CLIENT);
    expect(lb.nonZeroCounters()).toEqual({ pass_no_service: 2n, peer_redirect: 2n });
  });

  it('from_pod: a ClusterIP flow to a local backend, and its reply to a local client, go pod to pod', async () => {
    const lb = await withPods();
    lb.addService6({ address: VIP, port: 80, proto: 'tcp', revNatIndex: 1, backends: [{ id: 1, address: SERVER.address, port: 8080 }] });
    const syn: Ipv6Spec = { proto: 'tcp', src: CLIENT.address, dst: VIP, sport: 40000, dport: 80, flags: TCP.SYN };
    await expectIntoPod((f) => lb.run(f), syn, SERVER, { dst: SERVER.address, dport: 8080 });
    const synAck: Ipv6Spec = { proto: 'tcp', src: SERVER.address, dst: CLIENT.address, sport: 8080, dport: 40000, flags: TCP.SYN | TCP.ACK };
    await expectIntoPod((f) => lb.run(f), synAck, CLIENT, { src: VIP, sport: 80 });
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, rev_translated: 1n, ct_created: 1n, peer_redirect: 2n });
  });

  it('from_uplink: a NodePort flow to a local backend, and a packet for a pod’s own address, go into the pod', async () => {
    const lb = await withPods();
    lb.addService6({ address: NODE, port: 30080, proto: 'tcp', revNatIndex: 2, backends: [{ id: 1, address: SERVER.address, port: 8080 }], flags: SVC_FLAGS.external | SVC_FLAGS.local });
    await expectIntoPod((f) => lb.runUplink(f), { proto: 'tcp', src: OUTSIDE, dst: NODE, sport: 40000, dport: 30080 }, SERVER, { dst: SERVER.address, dport: 8080 });
    await expectIntoPod((f) => lb.runUplink(f), { proto: 'udp', src: OUTSIDE, dst: CLIENT.address, sport: 5000, dport: 53 }, CLIENT);
    // A flow with CT_F_REDIRECT found its pod: no FIB lookup, so no fib_miss.
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, pass_no_service: 1n, ct_created: 1n, peer_redirect: 2n });
  });

  it('a hop limit running out: a NodePort flow’s packet is dropped and counted, a pod’s goes to the stack, as IPv4’s TTL', async () => {
    const lb = await withPods();
    lb.addService6({ address: NODE, port: 30080, proto: 'tcp', revNatIndex: 2, backends: [{ id: 1, address: SERVER.address, port: 8080 }], flags: SVC_FLAGS.external | SVC_FLAGS.local });
    const dropped = await lb.runUplink(ipv6Packet({ proto: 'tcp', src: OUTSIDE, dst: NODE, sport: 40000, dport: 30080, hopLimit: 1 }));
    expect(dropped.retval).toBe(SHOT);
    const frame = ipv6Packet({ proto: 'tcp', src: CLIENT.address, dst: SERVER.address, sport: 40000, dport: 80, hopLimit: 1 });
    const passed = await lb.run(frame);
    expect(passed.retval).toBe(NEXT);
    expect(passed.data).toEqual(frame);
    expect(lb.nonZeroCounters()).toEqual({ ct_created: 1n, drop_ttl: 1n, pass_no_service: 1n });
  });

  it('leaves to the stack what has no local pod, multicast; hairpin flows still bounce', async () => {
    const lb = await withPods();
    const cases: Array<[Ipv6Spec, 'pod' | 'uplink', number]> = [
      [{ proto: 'tcp', src: CLIENT.address, dst: 'fd00:10:244::99', sport: 40000, dport: 80 }, 'pod', NEXT],
      [{ proto: 'udp', src: CLIENT.address, dst: 'ff02::fb', sport: 5353, dport: 5353 }, 'pod', NEXT],
      [{ proto: 'tcp', src: OUTSIDE, dst: 'fd00:10:244::99', sport: 40000, dport: 80 }, 'uplink', NEXT],
      [{ proto: 'tcp', src: OUTSIDE, dst: NODE, sport: 40000, dport: 22 }, 'uplink', NEXT],
    ];
    for (const [spec, where, verdict] of cases) {
      const frame = ipv6Packet(spec);
      const result = await (where === 'pod' ? lb.run(frame) : lb.runUplink(frame));
      expect(result.retval, JSON.stringify(spec)).toBe(verdict);
      expect(result.data).toEqual(frame);
    }
    // A translated packet without a local pod keeps TC_ACT_OK: the stack routes it.
    lb.addService6({ address: VIP, port: 80, proto: 'tcp', revNatIndex: 1, backends: [{ id: 1, address: 'fd00:10:244:1::7', port: 8080 }] });
    expect((await lb.run(ipv6Packet({ proto: 'tcp', src: CLIENT.address, dst: VIP, sport: 40001, dport: 80 }))).retval).toBe(OK);
    // The client reaching itself: eth_bounce() back out of its own veth, not a peer redirect.
    lb.addService6({ address: 'fd00:10:96::11', port: 80, proto: 'tcp', revNatIndex: 3, backends: [{ id: 2, address: CLIENT.address, port: 8080 }] });
    const hairpin = await lb.run(ipv6Packet({ proto: 'tcp', src: CLIENT.address, dst: 'fd00:10:96::11', sport: 40002, dport: 80 }));
    expect(hairpin.retval).toBe(REDIRECT);
    expect(parseIpv6Packet(hairpin.data)).toMatchObject({ src: 'fe80::1', dst: CLIENT.address, hopLimit: 64 });
    expect(lb.nonZeroCounters()).toEqual({ pass_no_service: 4n, translated: 2n, ct_created: 2n, hairpin: 1n });
  });
});
