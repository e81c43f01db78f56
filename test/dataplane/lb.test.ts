// from_pod (build/bpf/lb.o) under BPF_PROG_TEST_RUN: crafted frames in, the
// rewritten frame, the verdict, conntrack and the counters out. Maps are
// filled and read only through engine/dataplane/layout.ts. Each test loads
// its own copy of the object with its own pin directory.
import { describe, expect, it } from 'vitest';

import { backendId, CT_STATE, type Ct4Key, ct4Key, LB_EVENTS, LB_METRICS, revNatIndex } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type Endpoint, type LbFixture, loadLb, NEXT, OK, REDIRECT, SHOT } from './lb-fixture.js';
import {
  ETH_HLEN,
  ETH_P_ARP,
  ETH_P_IPV6,
  etherFrame,
  internetChecksum,
  IPPROTO,
  type Ipv4Spec,
  ipv4Other,
  ipv4Packet,
  parseIpv4Packet,
  TCP,
} from './packets.js';

const VIP = '10.96.0.10';
const CLIENT = '10.244.0.9';
const BACKENDS = [
  { id: 1, address: '10.244.0.5', port: 8080 },
  { id: 2, address: '10.244.0.6', port: 8080 },
];
const REV_NAT = 7;

const SEC = 1_000_000_000n;
const LIFETIME_SYN = 60n * SEC;
const LIFETIME_ESTABLISHED = 6n * 3600n * SEC;
const LIFETIME_CLOSE = 10n * SEC;
const LIFETIME_UDP = 60n * SEC;

async function withService(proto: 'tcp' | 'udp' = 'tcp', backends = BACKENDS): Promise<LbFixture> {
  const lb = await loadLb();
  lb.addService({ address: VIP, port: 80, proto, revNatIndex: REV_NAT, backends });
  return lb;
}

function backendAt(address: string): (typeof BACKENDS)[number] {
  const b = BACKENDS.find((x) => x.address === address);
  if (!b) throw new Error(`${address} is no backend`);
  return b;
}

/** Runs `spec` through from_pod; expects a DNAT to some backend and returns it. */
async function expectDnat(lb: LbFixture, spec: Ipv4Spec): Promise<Endpoint & { id: number }> {
  const result = await lb.run(ipv4Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv4Packet(result.data);
  const backend = backendAt(out.dst);
  expect(out).toMatchObject({ src: spec.src, sport: spec.sport, dport: backend.port, ipChecksumValid: true, l4ChecksumValid: true });
  // Byte for byte what a fresh packet to the backend would be: nothing else changed.
  expect(result.data).toEqual(ipv4Packet({ ...spec, dst: backend.address, dport: backend.port }));
  return backend;
}

/** Runs the backend's reply through from_pod; expects its source rewritten to the service. */
async function expectRevNat(lb: LbFixture, spec: Ipv4Spec, service: Endpoint): Promise<void> {
  const result = await lb.run(ipv4Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv4Packet(result.data);
  expect(out).toMatchObject({ src: service.address, sport: service.port, dst: spec.dst, dport: spec.dport });
  expect(out.ipChecksumValid).toBe(true);
  expect(out.l4ChecksumValid).toBe(true);
  expect(result.data).toEqual(ipv4Packet({ ...spec, src: service.address, sport: service.port }));
}

/** Expects from_pod to leave the frame alone and return TCX_NEXT. */
async function expectPass(lb: LbFixture, frame: Buffer): Promise<void> {
  const result = await lb.run(frame);
  expect(result.retval).toBe(NEXT);
  expect(result.data).toEqual(frame);
}

function forwardKey(proto: 'tcp' | 'udp', sport: number): Ct4Key {
  return { saddr: CLIENT, daddr: VIP, sport, dport: 80, proto, dir: 'forward' };
}

function reverseKey(proto: 'tcp' | 'udp', backend: Endpoint, dport: number): Ct4Key {
  return { saddr: backend.address, daddr: CLIENT, sport: backend.port, dport, proto, dir: 'reverse' };
}

describe('packet builder (test support)', () => {
  it('computes the IPv4 header checksum of a known header (RFC 1071 arithmetic)', () => {
    const header = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
    expect(internetChecksum(header)).toBe(0xb861);
  });

  it('builds frames whose checksums verify, and notices a corrupted byte', () => {
    for (const proto of ['tcp', 'udp'] as const) {
      const frame = ipv4Packet({ proto, src: CLIENT, dst: VIP, sport: 40000, dport: 80, payload: Buffer.from('hello') });
      const parsed = parseIpv4Packet(frame);
      expect(parsed).toMatchObject({ proto, src: CLIENT, dst: VIP, sport: 40000, dport: 80, ipChecksumValid: true, l4ChecksumValid: true });
      frame[frame.length - 1]! ^= 0xff;
      expect(parseIpv4Packet(frame).l4ChecksumValid).toBe(false);
    }
  });
});

describe.skipIf(!isRoot)('from_pod service load balancing (needs root: BPF_PROG_TEST_RUN)', () => {
  it('DNATs a SYN to the service to one of its backends and records the flow both ways', async () => {
    const lb = await withService();
    const before = lb.clockFloor();
    const backend = await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: TCP.SYN });
    const after = lb.clockCeiling();

    const flows = lb.flows();
    expect(flows).toHaveLength(2);
    const forward = lb.flow(forwardKey('tcp', 40000));
    const reverse = lb.flow(reverseKey('tcp', backend, 40000));
    expect(forward).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT, tcpFlags: TCP.SYN, state: CT_STATE.new, lifetimeNs: LIFETIME_SYN });
    expect(reverse).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT, tcpFlags: 0, state: CT_STATE.new, lifetimeNs: LIFETIME_SYN });
    expect(forward!.lastSeenNs).toBeGreaterThanOrEqual(before);
    expect(forward!.lastSeenNs).toBeLessThanOrEqual(after);
    expect(reverse!.lastSeenNs).toBe(forward!.lastSeenNs);

    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, ct_created: 1n });
  });

  it('keeps a flow on its backend, and establishes it on the first segment without SYN', async () => {
    const lb = await withService();
    const syn: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: TCP.SYN };
    const first = await expectDnat(lb, syn);
    for (let i = 0; i < 20; i++) {
      const again = await expectDnat(lb, { ...syn, flags: TCP.ACK | TCP.PSH, payload: Buffer.from(`request ${i}`) });
      expect(again).toEqual(first);
    }
    expect(lb.flow(forwardKey('tcp', 40001))).toMatchObject({
      backendId: first.id,
      state: CT_STATE.established,
      lifetimeNs: LIFETIME_ESTABLISHED,
      tcpFlags: TCP.SYN | TCP.ACK | TCP.PSH,
    });
    expect(lb.flow(reverseKey('tcp', first, 40001))).toMatchObject({ state: CT_STATE.established, lifetimeNs: LIFETIME_ESTABLISHED });
    expect(lb.flows()).toHaveLength(2);
    expect(lb.nonZeroCounters()).toEqual({ translated: 21n, ct_created: 1n });
  });

  it('keeps a tracked flow on its backend after its service is gone, as conntrack does; a new flow to it passes', async () => {
    const lb = await withService();
    const syn: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40003, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, syn);
    for (const key of [...lb.services.keys()]) lb.services.delete(key);
    expect(await expectDnat(lb, { ...syn, flags: TCP.ACK })).toEqual(backend);
    const fresh = await lb.run(ipv4Packet({ ...syn, sport: 40004 }));
    expect(fresh.retval).toBe(NEXT);
    expect(lb.nonZeroCounters()).toEqual({ translated: 2n, ct_created: 1n, pass_no_service: 1n });
  });

  it('rewrites the source of the backend’s replies back to the service IP:port', async () => {
    const lb = await withService();
    const backend = await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40002, dport: 80, flags: TCP.SYN });
    const reply: Ipv4Spec = { proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40002, flags: TCP.SYN | TCP.ACK };
    await expectRevNat(lb, reply, { address: VIP, port: 80 });
    // A SYN-ACK does not finish the handshake: still the short lifetime.
    expect(lb.flow(reverseKey('tcp', backend, 40002))).toMatchObject({ state: CT_STATE.new, tcpFlags: TCP.SYN | TCP.ACK, lifetimeNs: LIFETIME_SYN });
    await expectRevNat(lb, { ...reply, flags: TCP.ACK, payload: Buffer.from('HTTP/1.1 200 OK\r\n\r\n') }, { address: VIP, port: 80 });
    expect(lb.flow(forwardKey('tcp', 40002))).toMatchObject({ state: CT_STATE.established, lifetimeNs: LIFETIME_ESTABLISHED });
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, rev_translated: 2n, ct_created: 1n });
  });

  it('shortens the lifetime once FIN or RST is seen, and reopens on a new SYN', async () => {
    const lb = await withService();
    const spec: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40003, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, spec);
    await expectDnat(lb, { ...spec, flags: TCP.ACK });
    await expectRevNat(lb, { proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40003, flags: TCP.FIN | TCP.ACK }, { address: VIP, port: 80 });
    for (const key of [forwardKey('tcp', 40003), reverseKey('tcp', backend, 40003)]) {
      expect(lb.flow(key)).toMatchObject({ state: CT_STATE.closing, lifetimeNs: LIFETIME_CLOSE });
    }
    await expectDnat(lb, { ...spec, flags: TCP.SYN });
    expect(lb.flow(forwardKey('tcp', 40003))).toMatchObject({ backendId: backend.id, state: CT_STATE.new, tcpFlags: TCP.SYN, lifetimeNs: LIFETIME_SYN });
    await expectDnat(lb, { ...spec, flags: TCP.RST });
    expect(lb.flow(forwardKey('tcp', 40003))).toMatchObject({ state: CT_STATE.closing, lifetimeNs: LIFETIME_CLOSE });
  });

  it('a direct connection from the port of a closed service flow is not taken for it; an open one keeps its reply entry', async () => {
    const lb = await withService();
    const spec: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40004, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, spec);
    await expectDnat(lb, { ...spec, flags: TCP.RST });
    // The client now connects to the backend itself, from the same port.
    const direct = ipv4Packet({ proto: 'tcp', src: CLIENT, dst: backend.address, sport: 40004, dport: backend.port, flags: TCP.SYN });
    expect((await lb.run(direct)).retval).toBe(NEXT);
    expect(lb.flow(reverseKey('tcp', backend, 40004))).toBeUndefined();
    // So the backend's SYN-ACK reaches the client as the backend's, untouched.
    const synAck = ipv4Packet({ proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40004, flags: TCP.SYN | TCP.ACK });
    const reply = await lb.run(synAck);
    expect(reply.retval).toBe(NEXT);
    expect(reply.data).toEqual(synAck);

    // A service flow still open is not anyone's to take.
    const open = await expectDnat(lb, { ...spec, sport: 40005 });
    expect((await lb.run(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: open.address, sport: 40005, dport: open.port, flags: TCP.SYN }))).retval).toBe(NEXT);
    expect(lb.flow(reverseKey('tcp', open, 40005))).toMatchObject({ state: CT_STATE.new });
  });

  it('load-balances UDP the same way, both ways, checksums included', async () => {
    const lb = await withService('udp');
    const query: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 53000, dport: 80, payload: Buffer.from('query') };
    const backend = await expectDnat(lb, query);
    expect(await expectDnat(lb, query)).toEqual(backend);
    expect(lb.flow(forwardKey('udp', 53000))).toMatchObject({ state: CT_STATE.new, lifetimeNs: LIFETIME_UDP, tcpFlags: 0 });
    await expectRevNat(lb, { proto: 'udp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 53000, payload: Buffer.from('answer') }, { address: VIP, port: 80 });
    expect(lb.flow(forwardKey('udp', 53000))).toMatchObject({ state: CT_STATE.established, lifetimeNs: LIFETIME_UDP });
    // The TCP service is another service: same IP and port, other protocol.
    await expectPass(lb, ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 53000, dport: 80 }));
  });

  it('leaves a UDP checksum of 0 ("none") at 0 both ways', async () => {
    const lb = await withService('udp');
    const query: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 53001, dport: 80, payload: Buffer.from('no checksum'), udpNoChecksum: true };
    const forward = await lb.run(ipv4Packet(query));
    expect(forward.retval).toBe(OK);
    const backend = backendAt(parseIpv4Packet(forward.data).dst);
    expect(parseIpv4Packet(forward.data).l4Checksum).toBe(0);
    expect(forward.data).toEqual(ipv4Packet({ ...query, dst: backend.address, dport: backend.port }));
    const reply: Ipv4Spec = { proto: 'udp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 53001, udpNoChecksum: true };
    const back = await lb.run(ipv4Packet(reply));
    expect(back.retval).toBe(OK);
    expect(parseIpv4Packet(back.data)).toMatchObject({ src: VIP, sport: 80, l4Checksum: 0 });
    expect(back.data).toEqual(ipv4Packet({ ...reply, src: VIP, sport: 80 }));
  });

  it('spreads new flows evenly over the backends (1000 flows, each backend 400–600)', async () => {
    const lb = await withService();
    const hits = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const result = await lb.run(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 20000 + i, dport: 80, flags: TCP.SYN }));
      expect(result.retval).toBe(OK);
      const dst = parseIpv4Packet(result.data).dst;
      hits.set(dst, (hits.get(dst) ?? 0) + 1);
    }
    expect([...hits.keys()].sort()).toEqual(BACKENDS.map((b) => b.address));
    for (const count of hits.values()) {
      expect(count).toBeGreaterThanOrEqual(400);
      expect(count).toBeLessThanOrEqual(600);
    }
    expect(lb.flows()).toHaveLength(2000);
    expect(lb.nonZeroCounters()).toEqual({ translated: 1000n, ct_created: 1000n });
  });

  it('passes packets to no service untouched (TCX_NEXT)', async () => {
    const lb = await withService();
    await expectPass(lb, ipv4Packet({ proto: 'tcp', src: CLIENT, dst: '10.244.0.5', sport: 40010, dport: 8080 }));
    await expectPass(lb, ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40010, dport: 443 }));
    await expectPass(lb, ipv4Packet({ proto: 'udp', src: CLIENT, dst: '10.96.0.11', sport: 40010, dport: 80 }));
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_no_service: 3n });
  });

  it('rejects new flows to a service without backends and counts them (reject.test.ts checks the ICMP error)', async () => {
    const lb = await withService('tcp', []);
    const frame = ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40020, dport: 80 });
    const result = await lb.run(frame);
    expect(result.retval).toBe(REDIRECT);
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 1n });
    await lb.run(frame);
    expect(lb.counters().reject_no_backend).toBe(2n);
  });

  it('keeps tracked flows on their backend once the service has no backends left', async () => {
    const lb = await withService();
    const spec: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40021, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, spec);
    lb.addService({ address: VIP, port: 80, proto: 'tcp', revNatIndex: REV_NAT, backends: [] });
    expect(await expectDnat(lb, { ...spec, flags: TCP.ACK })).toEqual(backend);
    expect((await lb.run(ipv4Packet({ ...spec, sport: 40022 }))).retval).toBe(REDIRECT);
    expect((await lb.run(ipv4Packet({ ...spec, sport: 40023, flags: TCP.ACK }))).retval).toBe(SHOT);
  });

  it('moves a flow whose backend is gone to another one', async () => {
    const lb = await withService();
    const spec: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40030, dport: 80, flags: TCP.SYN };
    const gone = await expectDnat(lb, spec);
    const stays = BACKENDS.find((b) => b.id !== gone.id)!;
    // What the reconciler does when an endpoint goes: one slot left, the backend's slot emptied (all zero).
    lb.addService({ address: VIP, port: 80, proto: 'tcp', revNatIndex: REV_NAT, backends: [stays] });
    lb.removeBackend(gone.id);
    expect(await expectDnat(lb, { ...spec, flags: TCP.ACK })).toEqual(stays);
    expect(lb.flow(forwardKey('tcp', 40030))).toMatchObject({ backendId: stays.id });
    expect(lb.flow(reverseKey('tcp', stays, 40030))).toMatchObject({ backendId: stays.id });
    expect(lb.counters()).toMatchObject({ ct_reselected: 1n, ct_created: 1n, translated: 2n });
  });

  it('writes a flow’s missing entry again from its twin (LRU eviction, GC)', async () => {
    const lb = await withService();
    const spec: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40040, dport: 80, flags: TCP.SYN };
    const backend = await expectDnat(lb, spec);
    expect(lb.conntrack.delete(ct4Key.encode(reverseKey('tcp', backend, 40040)))).toBe(true);
    await expectDnat(lb, { ...spec, flags: TCP.ACK });
    expect(lb.flow(reverseKey('tcp', backend, 40040))).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT });
    expect(lb.conntrack.delete(ct4Key.encode(forwardKey('tcp', 40040)))).toBe(true);
    await expectRevNat(lb, { proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40040, flags: TCP.ACK }, { address: VIP, port: 80 });
    expect(lb.flow(forwardKey('tcp', 40040))).toMatchObject({ backendId: backend.id, revNatIndex: REV_NAT });
    expect(await expectDnat(lb, { ...spec, flags: TCP.ACK })).toEqual(backend);
    expect(lb.counters().ct_restored).toBe(2n);
  });

  it('lets a new flow take over a reply tuple an earlier flow left (port reused, another service, same backend)', async () => {
    const lb = await loadLb();
    const shared = { id: 1, address: '10.244.0.5', port: 8080 };
    const other = { address: '10.96.0.20', port: 80 };
    lb.addService({ address: VIP, port: 80, proto: 'tcp', revNatIndex: 1, backends: [shared] });
    lb.addService({ ...other, proto: 'tcp', revNatIndex: 2, backends: [shared] });
    const reply: Ipv4Spec = { proto: 'tcp', src: shared.address, dst: CLIENT, sport: shared.port, dport: 40045, flags: TCP.ACK };
    await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40045, dport: 80, flags: TCP.SYN });
    await expectRevNat(lb, reply, { address: VIP, port: 80 });
    await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: other.address, sport: 40045, dport: 80, flags: TCP.SYN });
    await expectRevNat(lb, reply, other);
    expect(lb.flow(reverseKey('tcp', shared, 40045))).toMatchObject({ revNatIndex: 2, backendId: shared.id });
  });

  it('passes a tracked reply whose reverse NAT entry is gone, untouched', async () => {
    const lb = await withService();
    const backend = await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40050, dport: 80 });
    expect(lb.revNat.delete(revNatIndex.encode(REV_NAT))).toBe(true);
    await expectPass(lb, ipv4Packet({ proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: 40050, flags: TCP.SYN | TCP.ACK }));
    expect(lb.counters().pass_no_rev_nat).toBe(1n);
  });

  it('finds the L4 header behind IP options (IHL 6 and 15) and keeps the options', async () => {
    const lb = await withService();
    const routerAlert = Buffer.from([0x94, 0x04, 0x00, 0x00]);
    // NOP padding up to the longest header, 60 bytes, ending with End of Options.
    const longest = Buffer.concat([Buffer.alloc(39, 0x01), Buffer.from([0x00])]);
    for (const [sport, options] of [[40060, routerAlert], [40061, longest]] as const) {
      const spec: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport, dport: 80, options, payload: Buffer.from('with options') };
      const backend = await expectDnat(lb, spec);
      expect(parseIpv4Packet(ipv4Packet(spec)).ipHeaderLength).toBe(20 + options.length);
      await expectRevNat(lb, { proto: 'tcp', src: backend.address, dst: CLIENT, sport: backend.port, dport: sport, options, flags: TCP.ACK }, { address: VIP, port: 80 });
    }
    const udp: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 40062, dport: 80, options: routerAlert };
    const udpLb = await withService('udp');
    await expectDnat(udpLb, udp);
  });

  it('passes truncated and malformed packets without touching them', async () => {
    const lb = await withService();
    const good = ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40070, dport: 80 });
    const withOptions = ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40071, dport: 80, options: Buffer.alloc(8, 1) });
    // BPF_PROG_TEST_RUN itself refuses an IPv4 frame shorter than Ethernet +
    // 20 bytes (EINVAL), so the shortest tested is an IP header and nothing more.
    const cases: Array<[string, Buffer]> = [
      ['IP header without L4 header', good.subarray(0, ETH_HLEN + 20)],
      ['TCP header cut', good.subarray(0, ETH_HLEN + 20 + 10)],
      ['IP options cut', withOptions.subarray(0, ETH_HLEN + 24)],
      ['TCP header cut behind options', withOptions.subarray(0, ETH_HLEN + 28 + 10)],
    ];
    const mangled = (edit: (frame: Buffer) => void): Buffer => {
      const frame = Buffer.from(good);
      edit(frame);
      return frame;
    };
    cases.push(['IHL below 5', mangled((f) => (f[ETH_HLEN] = 0x44))]);
    cases.push(['IP version 6 in an IPv4 frame', mangled((f) => (f[ETH_HLEN] = 0x65))]);
    cases.push(['total length shorter than the headers', mangled((f) => f.writeUInt16BE(30, ETH_HLEN + 2))]);
    cases.push(['total length shorter than the IP header', mangled((f) => f.writeUInt16BE(16, ETH_HLEN + 2))]);
    for (const [what, frame] of cases) {
      const result = await lb.run(Buffer.from(frame));
      expect(result.retval, what).toBe(NEXT);
      expect(result.data, what).toEqual(frame);
    }
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_malformed: BigInt(cases.length) });
  });

  it('passes non-first fragments, other protocols and other ethertypes, and counts why', async () => {
    const lb = await withService();
    await expectPass(lb, ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40080, dport: 80, fragOffset: 185 }));
    // ICMP that is neither echo nor an error: a timestamp request.
    await expectPass(lb, ipv4Other(IPPROTO.icmp, CLIENT, VIP, Buffer.from([13, 0, 0xf2, 0xff, 0, 0, 0, 0])));
    await expectPass(lb, etherFrame(ETH_P_IPV6));
    await expectPass(lb, etherFrame(ETH_P_ARP, 28));
    expect(lb.nonZeroCounters()).toEqual({ pass_fragment: 1n, pass_other_proto: 1n, pass_not_ip: 2n });
    // A first fragment carries the L4 header: it is translated like any packet.
    await expectDnat(lb, { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40081, dport: 80, moreFragments: true });
  });

  it('counts every packet under exactly one outcome', async () => {
    const lb = await withService();
    const sent = 7;
    await lb.run(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40090, dport: 80 }));
    await lb.run(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40090, dport: 80, flags: TCP.ACK }));
    await lb.run(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: '10.1.2.3', sport: 40090, dport: 80 }));
    await lb.run(etherFrame(ETH_P_ARP, 28));
    await lb.run(ipv4Other(IPPROTO.icmp, CLIENT, VIP, Buffer.alloc(8)));
    await lb.run(ipv4Packet({ proto: 'udp', src: CLIENT, dst: VIP, sport: 40090, dport: 80, fragOffset: 1 }));
    await lb.run(ipv4Packet({ proto: 'udp', src: CLIENT, dst: VIP, sport: 40090, dport: 80 }).subarray(0, ETH_HLEN + 24));
    const counters = lb.counters();
    const outcomes = LB_METRICS.filter((m) => !LB_EVENTS.has(m));
    expect(outcomes.reduce((sum, m) => sum + counters[m], 0n)).toBe(BigInt(sent));
  });
});
