// from_pod (build/bpf/lb.o) on IPv6 under BPF_PROG_TEST_RUN: crafted frames
// in, the rewritten frame, the verdict, ferry_ct6 and the counters out. Maps
// are filled and read only through engine/dataplane/layout.ts. Each test
// loads its own copy of the object with its own pin directory.
import { describe, expect, it } from 'vitest';

import { backendId, CT_FLAGS, CT_STATE, type Ct4Key, ct6Entry, ct6Key, HAIRPIN_ADDRESS6, LB_EVENTS, LB_METRICS, revNatIndex, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type Endpoint, type LbFixture, loadLb, NEXT, OK, REDIRECT, SHOT } from './lb-fixture.js';
import { ETH_P_ARP, etherFrame, ipv4Packet, TCP } from './packets.js';
import {
  address6,
  ETH_HLEN,
  formatAddress6,
  ICMP6,
  icmp6Packet,
  IPV6_HLEN,
  type Ipv6Spec,
  ipv6Other,
  ipv6Packet,
  ipv6WithExtension,
  neighborSolicitation,
  NEXTHDR,
  parseIpv6Packet,
} from './packets6.js';

const VIP = 'fd00:10:96::10';
const CLIENT = 'fd00:10:244::9';
const BACKENDS = [
  { id: 1, address: 'fd00:10:244::5', port: 8080 },
  { id: 2, address: 'fd00:10:244::6', port: 8080 },
];
const REV_NAT = 7;

const SEC = 1_000_000_000n;
const LIFETIME_SYN = 60n * SEC;
const LIFETIME_ESTABLISHED = 6n * 3600n * SEC;
const LIFETIME_CLOSE = 10n * SEC;
const LIFETIME_UDP = 60n * SEC;

async function withService(proto: 'tcp' | 'udp' = 'tcp', backends = BACKENDS): Promise<LbFixture> {
  const lb = await loadLb();
  lb.addService6({ address: VIP, port: 80, proto, revNatIndex: REV_NAT, backends });
  return lb;
}

function backendAt(address: string): (typeof BACKENDS)[number] {
  const b = BACKENDS.find((x) => x.address === address);
  if (!b) throw new Error(`${address} is no backend`);
  return b;
}

/** Runs `spec` through from_pod; expects a DNAT to some backend, byte for byte, and returns it. */
async function expectDnat(lb: LbFixture, spec: Ipv6Spec): Promise<Endpoint & { id: number }> {
  const result = await lb.run(ipv6Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv6Packet(result.data);
  const backend = backendAt(out.dst);
  expect(out).toMatchObject({ src: spec.src, sport: spec.sport, dport: backend.port, l4ChecksumValid: true, lengthConsistent: true });
  // Nothing else changed: what a fresh packet to the backend would be.
  expect(result.data).toEqual(ipv6Packet({ ...spec, dst: backend.address, dport: backend.port }));
  return backend;
}

/** Runs the backend's reply through from_pod; expects its source rewritten to the service. */
async function expectRevNat(lb: LbFixture, spec: Ipv6Spec, service: Endpoint): Promise<void> {
  const result = await lb.run(ipv6Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv6Packet(result.data);
  expect(out).toMatchObject({ src: service.address, sport: service.port, dst: spec.dst, dport: spec.dport, l4ChecksumValid: true });
  expect(result.data).toEqual(ipv6Packet({ ...spec, src: service.address, sport: service.port }));
}

/** Expects `run` to leave the frame alone and return TCX_NEXT. */
async function expectPass(run: (f: Buffer) => Promise<{ retval: number; data: Buffer }>, frame: Buffer, what?: string): Promise<void> {
  const result = await run(frame);
  expect(result.retval, what).toBe(NEXT);
  expect(result.data, what).toEqual(frame);
}

function forwardKey(proto: 'tcp' | 'udp', sport: number): Ct4Key {
  return { saddr: CLIENT, daddr: VIP, sport, dport: 80, proto, dir: 'forward' };
}

function reverseKey(proto: 'tcp' | 'udp', backend: Endpoint, dport: number): Ct4Key {
  return { saddr: backend.address, daddr: CLIENT, sport: backend.port, dport, proto, dir: 'reverse' };
}

describe('IPv6 packet builder (test support)', () => {
  it('computes the UDP checksum over the 128-bit pseudo header (a value computed apart)', () => {
    const frame = ipv6Packet({ proto: 'udp', src: 'fd00::1', dst: 'fd00::2', sport: 1234, dport: 53, payload: Buffer.from('hello') });
    expect(frame.readUInt16BE(ETH_HLEN + IPV6_HLEN + 6)).toBe(0xbcf6);
    expect(parseIpv6Packet(frame)).toMatchObject({ src: 'fd00::1', dst: 'fd00::2', l4ChecksumValid: true, lengthConsistent: true });
  });

  it('notices a corrupted payload byte and a changed address (the pseudo header)', () => {
    for (const proto of ['tcp', 'udp'] as const) {
      const frame = ipv6Packet({ proto, src: CLIENT, dst: VIP, sport: 40000, dport: 80, payload: Buffer.from('hello') });
      expect(parseIpv6Packet(frame).l4ChecksumValid).toBe(true);
      const corrupted = Buffer.from(frame);
      corrupted[corrupted.length - 1]! ^= 0xff;
      expect(parseIpv6Packet(corrupted).l4ChecksumValid).toBe(false);
      const moved = Buffer.from(frame);
      address6('fd00:10:244::5').copy(moved, ETH_HLEN + 24);
      expect(parseIpv6Packet(moved).l4ChecksumValid).toBe(false);
    }
  });
});

describe.skipIf(!isRoot)('from_pod IPv6 service load balancing (needs root: BPF_PROG_TEST_RUN)', () => {
  it('DNATs a SYN to the service to one of its backends and records the flow both ways', async () => {
    const lb = await withService();
    const before = lb.clockFloor();
    const backend = await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: TCP.SYN });
    const after = lb.clockCeiling();

    expect(lb.flows6()).toHaveLength(2);
    const forward = lb.flow6(forwardKey('tcp', 40000));
    const reverse = lb.flow6(reverseKey('tcp', backend, 40000));
    expect(forward).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT, tcpFlags: TCP.SYN, state: CT_STATE.new, lifetimeNs: LIFETIME_SYN, flags: 0, natAddress: '::', natPort: 0 });
    expect(reverse).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT, tcpFlags: 0, state: CT_STATE.new, lifetimeNs: LIFETIME_SYN, flags: 0 });
    expect(forward!.lastSeenNs).toBeGreaterThanOrEqual(before);
    expect(forward!.lastSeenNs).toBeLessThanOrEqual(after);
    expect(reverse!.lastSeenNs).toBe(forward!.lastSeenNs);
    // IPv4's conntrack is not IPv6's.
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, ct_created: 1n });
  });

  it('rewrites a segment with payload, traffic class and flow label left as they were', async () => {
    const lb = await withService();
    await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: TCP.ACK | TCP.PSH, flowInfo: 0xb812345, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n') });
  });

  it('keeps a flow on its backend, and establishes it on the first segment without SYN', async () => {
    const lb = await withService();
    const syn: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40002, dport: 80, flags: TCP.SYN };
    const first = await expectDnat(lb, syn);
    for (let i = 0; i < 20; i++) {
      const again = await expectDnat(lb, { ...syn, flags: TCP.ACK | TCP.PSH, payload: Buffer.from(`request ${i}`) });
      expect(again).toEqual(first);
    }
    expect(lb.flow6(forwardKey('tcp', 40002))).toMatchObject({
      backendId: first.id,
      state: CT_STATE.established,
      lifetimeNs: LIFETIME_ESTABLISHED,
      tcpFlags: TCP.SYN | TCP.ACK | TCP.PSH,
    });
    expect(lb.flow6(reverseKey('tcp', first, 40002))).toMatchObject({ state: CT_STATE.established, lifetimeNs: LIFETIME_ESTABLISHED });
    expect(lb.flows6()).toHaveLength(2);
    expect(lb.nonZeroCounters()).toEqual({ translated: 21n, ct_created: 1n });
  });

  it('rewrites the source of the backend’s replies back to the service address and port', async () => {
    const lb = await withService();
    const backend = await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40003, dport: 80, flags: TCP.SYN });
    const reply: Ipv6Spec = { proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40003, flags: TCP.SYN | TCP.ACK };
    await expectRevNat(lb, reply, { address: VIP, port: 80 });
    expect(lb.flow6(reverseKey('tcp', backend, 40003))).toMatchObject({ state: CT_STATE.new, tcpFlags: TCP.SYN | TCP.ACK, lifetimeNs: LIFETIME_SYN });
    await expectRevNat(lb, { ...reply, flags: TCP.ACK, payload: Buffer.from('HTTP/1.1 200 OK\r\n\r\n') }, { address: VIP, port: 80 });
    expect(lb.flow6(forwardKey('tcp', 40003))).toMatchObject({ state: CT_STATE.established, lifetimeNs: LIFETIME_ESTABLISHED });
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, rev_translated: 2n, ct_created: 1n });
  });

  it('load-balances UDP the same way, both ways, checksums included', async () => {
    const lb = await withService('udp');
    const query: Ipv6Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 53000, dport: 80, payload: Buffer.from('query') };
    const backend = await expectDnat(lb, query);
    expect(await expectDnat(lb, { ...query, payload: Buffer.from('an odd-length query') })).toEqual(backend);
    expect(lb.flow6(forwardKey('udp', 53000))).toMatchObject({ state: CT_STATE.new, lifetimeNs: LIFETIME_UDP, tcpFlags: 0 });
    await expectRevNat(lb, { proto: 'udp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 53000, payload: Buffer.from('answer') }, { address: VIP, port: 80 });
    expect(lb.flow6(forwardKey('udp', 53000))).toMatchObject({ state: CT_STATE.established, lifetimeNs: LIFETIME_UDP });
    // The TCP service is another service: same address and port, other protocol.
    await expectPass((f) => lb.run(f), ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 53000, dport: 80 }));
  });

  it('leaves a UDP checksum of 0 at 0 both ways, as IPv4 does', async () => {
    const lb = await withService('udp');
    const query: Ipv6Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 53001, dport: 80, payload: Buffer.from('no checksum'), udpNoChecksum: true };
    const forward = await lb.run(ipv6Packet(query));
    expect(forward.retval).toBe(OK);
    const backend = backendAt(parseIpv6Packet(forward.data).dst);
    expect(forward.data).toEqual(ipv6Packet({ ...query, dst: backend.address, dport: backend.port }));
    const reply: Ipv6Spec = { proto: 'udp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 53001, udpNoChecksum: true };
    const back = await lb.run(ipv6Packet(reply));
    expect(back.retval).toBe(OK);
    expect(back.data).toEqual(ipv6Packet({ ...reply, src: VIP, sport: 80 }));
  });

  it('keeps the checksum right whatever the addresses’ words (1000 random backends and ports)', async () => {
    const lb = await loadLb();
    const word = () => Math.floor(Math.random() * 0x10000).toString(16);
    for (let i = 0; i < 1000; i++) {
      const address = formatAddress6(address6(Array.from({ length: 8 }, word).join(':')), 0);
      const backend = { id: 1, address, port: 1 + Math.floor(Math.random() * 65535) };
      const proto = i % 2 ? 'udp' : 'tcp';
      lb.addService6({ address: VIP, port: 80, proto, revNatIndex: REV_NAT, backends: [backend] });
      const spec: Ipv6Spec = { proto, src: `fd00::${word()}:${word()}`, dst: VIP, sport: 1024 + i, dport: 80, payload: Buffer.from(`payload ${i}`) };
      const result = await lb.run(ipv6Packet(spec));
      expect(result.retval).toBe(OK);
      expect(result.data).toEqual(ipv6Packet({ ...spec, dst: backend.address, dport: backend.port }));
    }
  });

  it('keeps a tracked flow on its backend after its service is gone; a new flow to it passes', async () => {
    const lb = await withService();
    const syn: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40004, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, syn);
    for (const key of [...lb.services6.keys()]) lb.services6.delete(key);
    expect(await expectDnat(lb, { ...syn, flags: TCP.ACK })).toEqual(backend);
    await expectPass((f) => lb.run(f), ipv6Packet({ ...syn, sport: 40005 }));
    expect(lb.nonZeroCounters()).toEqual({ translated: 2n, ct_created: 1n, pass_no_service: 1n });
  });

  it('shortens the lifetime once FIN or RST is seen, and reopens on a new SYN', async () => {
    const lb = await withService();
    const spec: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40006, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, spec);
    await expectDnat(lb, { ...spec, flags: TCP.ACK });
    await expectRevNat(lb, { proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40006, flags: TCP.FIN | TCP.ACK }, { address: VIP, port: 80 });
    for (const key of [forwardKey('tcp', 40006), reverseKey('tcp', backend, 40006)]) {
      expect(lb.flow6(key)).toMatchObject({ state: CT_STATE.closing, lifetimeNs: LIFETIME_CLOSE });
    }
    await expectDnat(lb, { ...spec, flags: TCP.SYN });
    expect(lb.flow6(forwardKey('tcp', 40006))).toMatchObject({ backendId: backend.id, state: CT_STATE.new, tcpFlags: TCP.SYN, lifetimeNs: LIFETIME_SYN });
    await expectDnat(lb, { ...spec, flags: TCP.RST });
    expect(lb.flow6(forwardKey('tcp', 40006))).toMatchObject({ state: CT_STATE.closing, lifetimeNs: LIFETIME_CLOSE });
  });

  it('a direct connection from the port of a closed service flow is not taken for it', async () => {
    const lb = await withService();
    const spec: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40007, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, spec);
    await expectDnat(lb, { ...spec, flags: TCP.RST });
    await expectPass((f) => lb.run(f), ipv6Packet({ proto: 'tcp', src: CLIENT, dst: backend.address, sport: 40007, dport: backend.port, flags: TCP.SYN }));
    expect(lb.flow6(reverseKey('tcp', backend, 40007))).toBeUndefined();
    await expectPass((f) => lb.run(f), ipv6Packet({ proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40007, flags: TCP.SYN | TCP.ACK }));
  });

  it('moves a flow whose backend is gone to another one', async () => {
    const lb = await withService();
    const spec: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40008, dport: 80, flags: TCP.SYN };
    const gone = await expectDnat(lb, spec);
    const stays = BACKENDS.find((b) => b.id !== gone.id)!;
    lb.addService6({ address: VIP, port: 80, proto: 'tcp', revNatIndex: REV_NAT, backends: [stays] });
    lb.removeBackend6(gone.id); // its slot all zero, as the reconciler leaves it
    expect(await expectDnat(lb, { ...spec, flags: TCP.ACK })).toEqual(stays);
    expect(lb.flow6(forwardKey('tcp', 40008))).toMatchObject({ backendId: stays.id });
    expect(lb.flow6(reverseKey('tcp', stays, 40008))).toMatchObject({ backendId: stays.id });
    expect(lb.counters()).toMatchObject({ ct_reselected: 1n, ct_created: 1n, translated: 2n });
  });

  it('writes a flow’s missing entry again from its twin, and refreshes without writing within a second', async () => {
    const lb = await withService();
    const spec: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40009, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, spec);
    await expectDnat(lb, { ...spec, flags: TCP.ACK });
    // An established flow's packet that changes nothing writes nothing (CT_REFRESH_NS): a planted time stays.
    const stamped = { ...lb.flow6(forwardKey('tcp', 40009))!, lastSeenNs: lb.flow6(forwardKey('tcp', 40009))!.lastSeenNs - 1n };
    lb.conntrack6.update(ct6Key.encode(forwardKey('tcp', 40009)), ct6Entry.encode(stamped));
    await expectDnat(lb, { ...spec, flags: TCP.ACK });
    expect(lb.flow6(forwardKey('tcp', 40009))!.lastSeenNs).toBe(stamped.lastSeenNs);

    expect(lb.conntrack6.delete(ct6Key.encode(reverseKey('tcp', backend, 40009)))).toBe(true);
    await expectDnat(lb, { ...spec, flags: TCP.ACK | TCP.PSH });
    expect(lb.flow6(reverseKey('tcp', backend, 40009))).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT });
    expect(lb.conntrack6.delete(ct6Key.encode(forwardKey('tcp', 40009)))).toBe(true);
    await expectRevNat(lb, { proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40009, flags: TCP.ACK }, { address: VIP, port: 80 });
    expect(lb.flow6(forwardKey('tcp', 40009))).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT });
    expect(lb.counters().ct_restored).toBe(2n);
  });

  it('passes a tracked reply whose reverse NAT entry is gone, untouched', async () => {
    const lb = await withService();
    const backend = await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40010, dport: 80 });
    expect(lb.revNat6.delete(revNatIndex.encode(REV_NAT))).toBe(true);
    await expectPass((f) => lb.run(f), ipv6Packet({ proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40010, flags: TCP.SYN | TCP.ACK }));
    expect(lb.counters().pass_no_rev_nat).toBe(1n);
  });

  it('an IPv4 service at the same port is IPv4’s alone, and the other way round', async () => {
    const lb = await withService();
    lb.addService({ address: '10.96.0.10', port: 80, proto: 'tcp', revNatIndex: 8, backends: [{ id: 3, address: '10.244.0.5', port: 8080 }] });
    await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40011, dport: 80 });
    const v4 = await lb.run(ipv4Packet({ proto: 'tcp', src: '10.244.0.9', dst: '10.96.0.10', sport: 40011, dport: 80 }));
    expect(v4.retval).toBe(OK);
    expect(lb.flows()).toHaveLength(2);
    expect(lb.flows6()).toHaveLength(2);
    // An IPv6 packet to an IPv4-mapped form of the IPv4 service is no service.
    await expectPass((f) => lb.run(f), ipv6Packet({ proto: 'tcp', src: CLIENT, dst: '::ffff:10.96.0.10', sport: 40012, dport: 80 }));
  });

  it('hairpin: a pod reaching itself through its service comes back from fe80::1 with its port, its reply from the service', async () => {
    const lb = await loadLb();
    const pod = { id: 1, address: CLIENT, port: 8080 };
    lb.addService6({ address: VIP, port: 80, proto: 'tcp', revNatIndex: REV_NAT, backends: [pod] });
    const syn: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40013, dport: 80, flags: TCP.SYN };
    const swap = (frame: Buffer) => Buffer.concat([frame.subarray(6, 12), frame.subarray(0, 6), frame.subarray(12)]);
    const out = await lb.run(ipv6Packet(syn));
    expect(out.retval).toBe(REDIRECT);
    expect(parseIpv6Packet(out.data)).toMatchObject({ l4ChecksumValid: true });
    expect(out.data).toEqual(swap(ipv6Packet({ ...syn, src: HAIRPIN_ADDRESS6, dst: CLIENT, dport: 8080 })));
    const hairpin = CT_FLAGS.snat | CT_FLAGS.hairpin;
    expect(lb.flow6({ saddr: CLIENT, daddr: VIP, sport: 40013, dport: 80, proto: 'tcp', dir: 'forward' })).toMatchObject({ flags: hairpin, natAddress: HAIRPIN_ADDRESS6, natPort: 40013 });
    expect(lb.flow6({ saddr: CLIENT, daddr: HAIRPIN_ADDRESS6, sport: 8080, dport: 40013, proto: 'tcp', dir: 'reverse' })).toMatchObject({ flags: hairpin, natAddress: CLIENT, natPort: 40013 });

    const reply: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: HAIRPIN_ADDRESS6, sport: 8080, dport: 40013, flags: TCP.SYN | TCP.ACK };
    const back = await lb.run(ipv6Packet(reply));
    expect(back.retval).toBe(REDIRECT);
    expect(back.data).toEqual(swap(ipv6Packet({ ...reply, src: VIP, sport: 80, dst: CLIENT })));
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, rev_translated: 1n, ct_created: 1n, hairpin: 2n });
  });

  it('spreads new flows evenly over the backends (1000 flows, each backend 400–600)', async () => {
    const lb = await withService();
    const hits = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const result = await lb.run(ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 20000 + i, dport: 80, flags: TCP.SYN }));
      expect(result.retval).toBe(OK);
      const dst = parseIpv6Packet(result.data).dst;
      hits.set(dst, (hits.get(dst) ?? 0) + 1);
    }
    expect([...hits.keys()].sort()).toEqual(BACKENDS.map((b) => b.address));
    for (const count of hits.values()) {
      expect(count).toBeGreaterThanOrEqual(400);
      expect(count).toBeLessThanOrEqual(600);
    }
  });
});

describe.skipIf(!isRoot)('IPv6 that is not a service’s passes untouched (needs root: BPF_PROG_TEST_RUN)', () => {
  const programs = (lb: LbFixture) =>
    [
      ['from_pod', (f: Buffer) => lb.run(f)],
      ['from_uplink', (f: Buffer) => lb.runUplink(f)],
    ] as const;

  it('neighbour discovery, echo, and ICMPv6 errors about no tracked flow, even to a service address', async () => {
    const lb = await withService();
    lb.addService6({ address: VIP, port: 80, proto: 'udp', revNatIndex: 8, backends: [], flags: SVC_FLAGS.external });
    const frames = [
      neighborSolicitation(CLIENT, 'fd00:10:244::1'),
      neighborSolicitation('fe80::1', VIP),
      icmp6Packet(ICMP6.ECHO_REQUEST, 0, CLIENT, VIP, Buffer.from('0001000170696e67', 'hex')),
    ];
    // Errors about a tracked flow are translated (lb6-icmp-error.test.ts); this one is about none.
    const error = icmp6Packet(ICMP6.DEST_UNREACH, ICMP6.PORT_UNREACH, CLIENT, VIP, Buffer.concat([Buffer.alloc(4), ipv6Packet({ proto: 'udp', src: VIP, dst: CLIENT, sport: 80, dport: 5000 }).subarray(ETH_HLEN)]));
    for (const [name, run] of programs(lb)) for (const frame of [...frames, error]) await expectPass(run, frame, name);
    expect(lb.nonZeroCounters()).toEqual({ pass_other_proto: BigInt(2 * frames.length), pass_no_service: 2n });
  });

  it('a service flow’s packets behind an extension header, or a fragment header', async () => {
    const lb = await withService();
    const spec: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40020, dport: 80 };
    for (const [name, run] of programs(lb)) {
      for (const kind of [NEXTHDR.hopByHop, NEXTHDR.routing, NEXTHDR.destination]) await expectPass(run, ipv6WithExtension(kind, spec), `${name} ${kind}`);
      await expectPass(run, ipv6WithExtension(NEXTHDR.fragment, spec), `${name} fragment`);
      await expectPass(run, ipv6Other(NEXTHDR.none, CLIENT, VIP, Buffer.alloc(0)), `${name} no next header`);
    }
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_other_proto: 8n, pass_fragment: 2n });
  });

  it('truncated and malformed packets', async () => {
    const lb = await withService();
    const good = ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40021, dport: 80 });
    const mangled = (edit: (frame: Buffer) => void): Buffer => {
      const frame = Buffer.from(good);
      edit(frame);
      return frame;
    };
    const cases: Array<[string, Buffer]> = [
      ['IPv6 header without L4 header', good.subarray(0, ETH_HLEN + IPV6_HLEN)],
      ['TCP header cut', good.subarray(0, ETH_HLEN + IPV6_HLEN + 10)],
      ['payload length shorter than the TCP header', mangled((f) => f.writeUInt16BE(12, ETH_HLEN + 4))],
      ['payload length 0', mangled((f) => f.writeUInt16BE(0, ETH_HLEN + 4))],
      ['UDP payload length shorter than the UDP header', ipv6Packet({ proto: 'udp', src: CLIENT, dst: VIP, sport: 1, dport: 80 }).fill(0, ETH_HLEN + 4, ETH_HLEN + 6)],
    ];
    for (const [what, frame] of cases) await expectPass((f) => lb.run(f), Buffer.from(frame), what);
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_malformed: BigInt(cases.length) });
    // An IPv6 frame whose header says version 4 (or 0) is no IPv6 packet.
    await expectPass((f) => lb.run(f), mangled((f) => (f[ETH_HLEN] = 0x40 | (f[ETH_HLEN]! & 0x0f))));
    expect(lb.counters().pass_not_ip).toBe(1n);
  });

  it('to_uplink masquerades no IPv6 without IPv6 cluster CIDRs; neighbour discovery passes as from_pod counts it', async () => {
    const lb = await withService();
    lb.setNodeConfig({ snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535, clusterCidrs: ['10.244.0.0/16'], snatAddress6: 'fd00::1' });
    await expectPass((f) => lb.runEgress(f), ipv6Packet({ proto: 'tcp', src: CLIENT, dst: '2001:db8::1', sport: 40022, dport: 443 }));
    await expectPass((f) => lb.runEgress(f), neighborSolicitation(CLIENT, 'fd00:10:244::1'));
    await expectPass((f) => lb.runEgress(f), etherFrame(ETH_P_ARP, 28));
    expect(lb.nonZeroCounters()).toEqual({ pass_no_masq: 1n, pass_other_proto: 1n, pass_not_ip: 1n });
  });

  it('counts every packet under exactly one outcome', async () => {
    const lb = await withService();
    const frames = [
      ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40030, dport: 80 }),
      ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40030, dport: 80, flags: TCP.ACK }),
      ipv6Packet({ proto: 'tcp', src: CLIENT, dst: 'fd00::99', sport: 40030, dport: 80 }),
      neighborSolicitation(CLIENT, 'fd00:10:244::1'),
      ipv6WithExtension(NEXTHDR.fragment, { proto: 'udp', src: CLIENT, dst: VIP, sport: 1, dport: 80 }),
      ipv6Packet({ proto: 'udp', src: CLIENT, dst: VIP, sport: 40030, dport: 80 }).subarray(0, ETH_HLEN + IPV6_HLEN + 4),
      etherFrame(ETH_P_ARP, 28),
    ];
    for (const frame of frames) await lb.run(frame);
    const counters = lb.counters();
    const outcomes = LB_METRICS.filter((m) => !LB_EVENTS.has(m));
    expect(outcomes.reduce((sum, m) => sum + counters[m], 0n)).toBe(BigInt(frames.length));
    expect(counters).toMatchObject({ translated: 2n, pass_no_service: 1n, pass_other_proto: 1n, pass_fragment: 1n, pass_malformed: 1n, pass_not_ip: 1n });
  });

  it('drops a new flow without SYN to a service without backends', async () => {
    const lb = await withService('tcp', []);
    for (const flags of [TCP.ACK, TCP.SYN | TCP.ACK, TCP.RST, TCP.FIN | TCP.ACK]) {
      expect((await lb.run(ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40040, dport: 80, flags }))).retval).toBe(SHOT);
    }
    expect(lb.nonZeroCounters()).toEqual({ drop_no_backend: 4n });
  });
});
