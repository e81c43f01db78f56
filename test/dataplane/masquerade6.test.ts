// IPv6 masquerade under BPF_PROG_TEST_RUN (lib/masq6.h), masquerade.test.ts's
// twin: to_uplink SNATs a pod's TCP and UDP packets to outside the cluster
// (from node_cfg.cluster_cidrs6 to none of them) to node_cfg.snat_addr6 and
// a port claimed in BPF; from_uplink translates the replies back, and
// ICMPv6 errors about the flow are translated either way. Pod to pod (this
// node's or another's), the node's own traffic, a pod's answers to flows it
// did not open and a pod's service flows are left alone, and so is ICMPv6
// echo (not tracked). Maps are filled and read only through
// engine/dataplane/layout.ts.
import { describe, expect, it } from 'vitest';

import { collectConntrack } from '../../engine/dataplane/ct-gc.js';
import { CT_FLAGS, CT_STATE, type Ct4Key } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, NEXT, OK, SHOT } from './lb-fixture.js';
import { ICMP6, icmp6Error, icmp6Packet, type Ipv6Spec, ipv6Packet, neighborSolicitation, parseIcmp6Error, parseIpv6Packet, quotedFrame, TCP } from './packets6.js';

const NODE = '2001:db8::1';
const POD = 'fd00:10:244::9';
const OTHER_POD = 'fd00:10:244::a';
/** A pod on another node: in the cluster's /56, behind the uplink. */
const REMOTE_POD = 'fd00:10:244:1::5';
const OUTSIDE = '2001:db8:1::7';
/** A router between the node and the outside. */
const ROUTER = '2001:db8::fe';
const PORTS = { snatPortMin: 61000, snatPortMax: 65535 };
/** Both families mixed, as the daemon's clusterCIDR takes them; the second IPv6 one holds no pod here. */
const CLUSTER_CIDRS = ['10.244.0.0/16', 'fd00:10:244::/56', 'fd00:64::/48'];
const MASQ = CT_FLAGS.snat | CT_FLAGS.masq;
const SEC = 1_000_000_000n;
const PKT_TOO_BIG = 2;

type Run = (frame: Buffer) => Promise<{ retval: number; data: Buffer }>;

async function withMasq(options: { clusterCidrs?: string[]; snatAddress6?: string } = {}): Promise<LbFixture> {
  const lb = await loadLb();
  lb.setNodeConfig({ snatAddress: '192.0.2.1', ...PORTS, clusterCidrs: options.clusterCidrs ?? CLUSTER_CIDRS, snatAddress6: options.snatAddress6 ?? NODE });
  return lb;
}

/** Runs `spec` through to_uplink; expects only its source rewritten, to NODE and a port of the range, checksum valid; returns the port. */
async function expectMasq(lb: LbFixture, spec: Ipv6Spec): Promise<number> {
  const result = await lb.runEgress(ipv6Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv6Packet(result.data);
  expect(out).toMatchObject({ src: NODE, dst: spec.dst, dport: spec.dport, l4ChecksumValid: true, lengthConsistent: true });
  expect(out.sport).toBeGreaterThanOrEqual(PORTS.snatPortMin);
  expect(out.sport).toBeLessThanOrEqual(PORTS.snatPortMax);
  expect(result.data).toEqual(ipv6Packet({ ...spec, src: NODE, sport: out.sport }));
  return out.sport;
}

/** Runs the outside's reply to NODE:port through from_uplink; expects it to reach the pod's own address and port. */
async function expectUnmasq(lb: LbFixture, reply: Ipv6Spec, pod: { address: string; port: number }): Promise<void> {
  const result = await lb.runUplink(ipv6Packet(reply));
  expect(result.retval).toBe(OK);
  expect(parseIpv6Packet(result.data)).toMatchObject({ l4ChecksumValid: true });
  expect(result.data).toEqual(ipv6Packet({ ...reply, dst: pod.address, dport: pod.port }));
}

/** Expects `run` to leave the frame alone and return TCX_NEXT. */
async function expectPass(run: Run, frame: Buffer, what?: string): Promise<void> {
  const result = await run(frame);
  expect(result.retval, what).toBe(NEXT);
  expect(result.data, what).toEqual(frame);
}

/** Runs an ICMPv6 error through `run`; expects exactly `expected` out, its checksum valid. */
async function expectError(run: Run, frame: Buffer, expected: Buffer): Promise<Buffer> {
  const result = await run(frame);
  expect(result.retval).toBe(OK);
  expect(parseIcmp6Error(result.data)).toMatchObject({ icmpChecksumValid: true, lengthConsistent: true });
  expect(result.data).toEqual(expected);
  return result.data;
}

const forwardKey = (spec: Ipv6Spec): Ct4Key => ({ saddr: spec.src, daddr: spec.dst, sport: spec.sport, dport: spec.dport, proto: spec.proto, dir: 'forward' });
const reverseKey = (spec: Ipv6Spec, port: number): Ct4Key => ({ saddr: spec.dst, daddr: NODE, sport: spec.dport, dport: port, proto: spec.proto, dir: 'reverse' });

describe.skipIf(!isRoot)('to_uplink: masquerading pods’ IPv6 traffic to outside the cluster (needs root: BPF_PROG_TEST_RUN)', () => {
  it('SNATs a pod’s SYN to outside to snat_addr6 and a port of the range, and records the flow both ways in ferry_ct6', async () => {
    const lb = await withMasq();
    const syn: Ipv6Spec = { proto: 'tcp', src: POD, dst: OUTSIDE, sport: 40000, dport: 443, flags: TCP.SYN };
    const port = await expectMasq(lb, syn);
    expect(lb.flows6()).toHaveLength(2);
    expect(lb.flows()).toHaveLength(0);
    expect(lb.flow6(forwardKey(syn))).toMatchObject({ backendId: 0, revNatIndex: 0, flags: MASQ, natAddress: NODE, natPort: port, state: CT_STATE.new, tcpFlags: TCP.SYN });
    expect(lb.flow6(reverseKey(syn, port))).toMatchObject({ backendId: 0, revNatIndex: 0, flags: MASQ, natAddress: POD, natPort: 40000, state: CT_STATE.new });
    expect(lb.nonZeroCounters()).toEqual({ masqueraded: 1n, ct_created: 1n });
  });

  it('translates replies back through from_uplink; later packets keep the port and establish the flow; from_pod leaves them to to_uplink', async () => {
    const lb = await withMasq();
    const syn: Ipv6Spec = { proto: 'tcp', src: POD, dst: OUTSIDE, sport: 40001, dport: 443, flags: TCP.SYN };
    const port = await expectMasq(lb, syn);
    await expectUnmasq(lb, { proto: 'tcp', src: OUTSIDE, dst: NODE, sport: 443, dport: port, flags: TCP.SYN | TCP.ACK }, { address: POD, port: 40001 });
    const ack: Ipv6Spec = { ...syn, flags: TCP.ACK, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n') };
    // The pod's packets pass its veth's from_pod first: no service flow's, untouched.
    await expectPass((f) => lb.run(f), ipv6Packet(ack));
    expect(await expectMasq(lb, ack)).toBe(port);
    for (const key of [forwardKey(syn), reverseKey(syn, port)]) expect(lb.flow6(key)).toMatchObject({ state: CT_STATE.established, flags: MASQ });
    expect(lb.flows6()).toHaveLength(2);
    expect(lb.nonZeroCounters()).toEqual({ masqueraded: 2n, rev_translated: 1n, ct_created: 1n, pass_no_service: 1n });
  });

  it('masquerades UDP both ways, a checksum of 0 staying 0', async () => {
    const lb = await withMasq();
    const query: Ipv6Spec = { proto: 'udp', src: POD, dst: OUTSIDE, sport: 53000, dport: 53, payload: Buffer.from('query') };
    const port = await expectMasq(lb, query);
    await expectUnmasq(lb, { proto: 'udp', src: OUTSIDE, dst: NODE, sport: 53, dport: port, payload: Buffer.from('answer') }, { address: POD, port: 53000 });
    const none = await lb.runEgress(ipv6Packet({ ...query, sport: 53001, udpNoChecksum: true }));
    expect(parseIpv6Packet(none.data)).toMatchObject({ src: NODE, l4Checksum: 0 });
  });

  it('gives every flow its own reply tuple: two pods from the same ports to one server, 200 flows', async () => {
    const lb = await withMasq();
    const ports = new Set<number>();
    for (let i = 0; i < 200; i++) {
      ports.add(await expectMasq(lb, { proto: 'tcp', src: i % 2 === 0 ? POD : OTHER_POD, dst: OUTSIDE, sport: 41000 + Math.floor(i / 2), dport: 443 }));
    }
    expect(ports.size).toBe(200);
    expect(lb.flows6()).toHaveLength(400);
  });

  it('leaves pod to pod (another node’s too), to any cluster CIDR, the node’s own and non-pod traffic alone; nothing without IPv6 cluster CIDRs', async () => {
    const lb = await withMasq();
    const frames = [
      ipv6Packet({ proto: 'tcp', src: POD, dst: OTHER_POD, sport: 42000, dport: 8080 }),
      ipv6Packet({ proto: 'tcp', src: POD, dst: REMOTE_POD, sport: 42000, dport: 8080 }),
      ipv6Packet({ proto: 'udp', src: POD, dst: 'fd00:64::3', sport: 42000, dport: 53 }),
      ipv6Packet({ proto: 'tcp', src: NODE, dst: OUTSIDE, sport: 42000, dport: 443 }),
      ipv6Packet({ proto: 'udp', src: '2001:db8::77', dst: OUTSIDE, sport: 42000, dport: 53 }),
    ];
    for (const frame of frames) await expectPass((f) => lb.runEgress(f), frame);
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_no_masq: BigInt(frames.length) });

    // IPv4 cluster CIDRs only (an IPv4 cluster): IPv6 stays as it is.
    const v4only = await withMasq({ clusterCidrs: ['10.244.0.0/16'] });
    await expectPass((f) => v4only.runEgress(f), ipv6Packet({ proto: 'tcp', src: POD, dst: OUTSIDE, sport: 42001, dport: 443 }));
    expect(v4only.flows6()).toHaveLength(0);
    expect(v4only.nonZeroCounters()).toEqual({ pass_no_masq: 1n });
  });

  it('leaves ICMPv6 alone: a pod’s ping (echo is not tracked) and neighbour discovery pass untouched', async () => {
    const lb = await withMasq();
    const frames = [icmp6Packet(ICMP6.ECHO_REQUEST, 0, POD, OUTSIDE, Buffer.from('0001000170696e67', 'hex')), neighborSolicitation(NODE, ROUTER)];
    for (const frame of frames) await expectPass((f) => lb.runEgress(f), frame);
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_other_proto: 2n });
  });

  it('leaves alone a pod’s TCP answer to a connection it did not open (another node’s SNATed NodePort flow, a routed client)', async () => {
    const lb = await withMasq();
    for (const flags of [TCP.SYN | TCP.ACK, TCP.ACK, TCP.RST, TCP.FIN | TCP.ACK]) {
      await expectPass((f) => lb.runEgress(f), ipv6Packet({ proto: 'tcp', src: POD, dst: OUTSIDE, sport: 8080, dport: 61520, flags }));
    }
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_no_masq: 4n });
  });

  it('leaves alone a pod’s UDP answers to a flow from outside (inbound, recorded by from_uplink); the GC keeps the entry until it expires', async () => {
    const lb = await withMasq();
    const query: Ipv6Spec = { proto: 'udp', src: OUTSIDE, dst: POD, sport: 40000, dport: 53, payload: Buffer.from('query') };
    // The query passes from_uplink untranslated (no service), and is remembered.
    await expectPass((f) => lb.runUplink(f), ipv6Packet(query));
    const answerKey: Ct4Key = { saddr: POD, daddr: OUTSIDE, sport: 53, dport: 40000, proto: 'udp', dir: 'forward' };
    expect(lb.flows6()).toEqual([{ key: answerKey, entry: expect.objectContaining({ flags: CT_FLAGS.inbound, backendId: 0, natPort: 0, state: CT_STATE.established }) }]);
    for (let i = 0; i < 3; i++) {
      await expectPass((f) => lb.runEgress(f), ipv6Packet({ proto: 'udp', src: POD, dst: OUTSIDE, sport: 53, dport: 40000, payload: Buffer.from(`answer ${i}`) }));
    }
    // Nothing is remembered for a datagram from another pod, or from outside to the node.
    await expectPass((f) => lb.runUplink(f), ipv6Packet({ ...query, src: REMOTE_POD }));
    await expectPass((f) => lb.runUplink(f), ipv6Packet({ ...query, dst: NODE }));
    expect(lb.flows6()).toHaveLength(1);
    // The pod's own flow to the same client, from another port, is masqueraded as ever.
    await expectMasq(lb, { proto: 'udp', src: POD, dst: OUTSIDE, sport: 45000, dport: 40000 });
    expect(lb.nonZeroCounters()).toEqual({ pass_no_service: 3n, pass_no_masq: 3n, masqueraded: 1n, ct_created: 1n });

    const maps = { conntrack: lb.conntrack, backends: lb.backends, services: lb.services, conntrack6: lb.conntrack6, backends6: lb.backends6, services6: lb.services6 };
    expect(collectConntrack(maps, lb.now())).toMatchObject({ expired: 0, orphaned: 0, withdrawn: 0, remaining: 3 });
    expect(collectConntrack(maps, lb.now() + 61n * SEC)).toMatchObject({ expired: 3, remaining: 0 });
  });

  it('leaves a pod’s service flow to a backend outside the cluster alone; from_uplink reverse-NATs its reply', async () => {
    const lb = await withMasq();
    // The `kubernetes` Service: its endpoints are control-plane nodes' addresses.
    const apiserver = { id: 1, address: '2001:db8::10', port: 6443 };
    lb.addService6({ address: 'fd00:10:96::1', port: 443, proto: 'tcp', revNatIndex: 1, backends: [apiserver] });
    const dnat = await lb.run(ipv6Packet({ proto: 'tcp', src: POD, dst: 'fd00:10:96::1', sport: 43000, dport: 443, flags: TCP.SYN }));
    expect(dnat.retval).toBe(OK);
    await expectPass((f) => lb.runEgress(f), dnat.data);
    const reply: Ipv6Spec = { proto: 'tcp', src: apiserver.address, dst: POD, sport: apiserver.port, dport: 43000, flags: TCP.SYN | TCP.ACK };
    const back = await lb.runUplink(ipv6Packet(reply));
    expect(back.data).toEqual(ipv6Packet({ ...reply, src: 'fd00:10:96::1', sport: 443 }));
    expect(lb.counters()).toMatchObject({ pass_no_masq: 1n, masqueraded: 0n, rev_translated: 1n });
  });

  it('drops new flows while snat_addr6 is ::, as IPv4’s without an address, and when no port is free', async () => {
    const lb = await withMasq({ snatAddress6: '::' });
    expect((await lb.runEgress(ipv6Packet({ proto: 'tcp', src: POD, dst: OUTSIDE, sport: 44000, dport: 443 }))).retval).toBe(SHOT);
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ drop_no_snat_addr: 1n });

    lb.setNodeConfig({ snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 61000, clusterCidrs: CLUSTER_CIDRS, snatAddress6: NODE });
    expect(await expectMasq(lb, { proto: 'tcp', src: POD, dst: OUTSIDE, sport: 44001, dport: 443 })).toBe(61000);
    expect((await lb.runEgress(ipv6Packet({ proto: 'tcp', src: OTHER_POD, dst: OUTSIDE, sport: 44001, dport: 443 }))).retval).toBe(SHOT);
    expect(lb.counters().drop_no_snat_port).toBe(1n);
    // Another server: another reply tuple, the same port is free for it.
    expect(await expectMasq(lb, { proto: 'tcp', src: OTHER_POD, dst: OUTSIDE, sport: 44001, dport: 80 })).toBe(61000);
  });

  it('ICMPv6 errors about a masqueraded flow: a router’s and the server’s reach the pod through from_uplink; the pod’s leaves from the node through to_uplink', async () => {
    const lb = await withMasq();
    const query: Ipv6Spec = { proto: 'udp', src: POD, dst: OUTSIDE, sport: 46000, dport: 53, payload: Buffer.alloc(1400, 0x61) };
    const port = await expectMasq(lb, query);
    const sent = ipv6Packet({ ...query, src: NODE, sport: port });

    // Packet too big from a router on the way: to the pod, about what the pod sent, the MTU kept.
    const tooBig = icmp6Error({ type: PKT_TOO_BIG, code: 0, src: ROUTER, dst: NODE, about: sent, word: 1280 });
    const out = await expectError((f) => lb.runUplink(f), tooBig, icmp6Error({ type: PKT_TOO_BIG, code: 0, src: ROUTER, dst: POD, about: ipv6Packet(query), word: 1280 }));
    expect(parseIcmp6Error(out).unused).toBe(1280);
    // The server's port unreachable: the same, from the server.
    const unreach = icmp6Error({ type: ICMP6.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: OUTSIDE, dst: NODE, about: sent, quote: 48 });
    await expectError((f) => lb.runUplink(f), unreach, icmp6Error({ type: ICMP6.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: OUTSIDE, dst: POD, about: ipv6Packet(query), quote: 48 }));

    // An answer comes back; the pod (its socket gone) says port unreachable about it.
    const answer: Ipv6Spec = { proto: 'udp', src: OUTSIDE, dst: NODE, sport: 53, dport: port, payload: Buffer.from('late answer') };
    await expectUnmasq(lb, answer, { address: POD, port: 46000 });
    const received = ipv6Packet({ ...answer, dst: POD, dport: 46000 });
    const podError = icmp6Error({ type: ICMP6.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: POD, dst: OUTSIDE, about: received });
    // from_pod leaves it to to_uplink, which rewrites it as the flow's packets: from the node, about what the outside sent.
    await expectPass((f) => lb.run(f), podError);
    const left = await expectError((f) => lb.runEgress(f), podError, icmp6Error({ type: ICMP6.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: NODE, dst: OUTSIDE, about: ipv6Packet(answer) }));
    expect(parseIpv6Packet(quotedFrame(left))).toMatchObject({ src: OUTSIDE, dst: NODE, dport: port, l4ChecksumValid: true });
    expect(lb.nonZeroCounters()).toMatchObject({ icmp_translated: 3n, pass_no_service: 1n });
  });

  it('the conntrack GC keeps masqueraded IPv6 flows (no backend, no service) until they expire', async () => {
    const lb = await withMasq();
    await expectMasq(lb, { proto: 'udp', src: POD, dst: OUTSIDE, sport: 45000, dport: 53 });
    const maps = { conntrack: lb.conntrack, backends: lb.backends, services: lb.services, conntrack6: lb.conntrack6, backends6: lb.backends6, services6: lb.services6 };
    expect(collectConntrack(maps, lb.now())).toMatchObject({ expired: 0, orphaned: 0, withdrawn: 0, remaining: 2 });
    expect(collectConntrack(maps, lb.now() + 61n * SEC)).toMatchObject({ expired: 2, remaining: 0 });
  });
});
