// ICMPv6 errors about a translated IPv6 flow, under BPF_PROG_TEST_RUN
// (lib/icmp6_error.h): the outer header and the quoted packet are rewritten
// as the flow is translated, both ways, so each error comes out byte for
// byte as its receiver would have got it without NAT. The expected frames
// are built afresh (packets6.ts computes every checksum from scratch), and
// the ICMPv6 checksum (over its pseudo header) and a whole quote's TCP/UDP
// checksum are verified on their own too. The IPv4 twin is
// icmp-error.test.ts. Maps are filled and read only through
// engine/dataplane/layout.ts.
import { describe, expect, it } from 'vitest';

import { backendSlots } from '../../engine/dataplane/backend-slots.js';
import { backendId, HAIRPIN_ADDRESS6, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { macsSwapped } from './icmp-packets.js';
import { type LbFixture, loadLb, NEXT, OK, REDIRECT } from './lb-fixture.js';
import {
  address6,
  ETH_HLEN,
  formatAddress6,
  ICMP6,
  icmp6Error,
  icmp6Packet,
  IPV6_HLEN,
  IPV6_MIN_MTU,
  type Ipv6Spec,
  ipv6Packet,
  ipv6WithExtension,
  neighborSolicitation,
  NEXTHDR,
  parseIcmp6Error,
  parseIpv6Packet,
  quotedFrame,
  TCP,
} from './packets6.js';

/** ICMPv6 error types (RFC 4443 3) and codes beside packets6.ts's ICMP6. */
const TYPE = { DEST_UNREACH: 1, PKT_TOO_BIG: 2, TIME_EXCEEDED: 3, PARAM_PROB: 4, ECHO_REPLY: 129 } as const;

const VIP = 'fd00:10:96::10';
const CLIENT = 'fd00:10:244::9';
const BACKEND = { id: 1, address: 'fd00:10:244::5', port: 5353 };
const NODE = '2001:db8::1';
const OUTSIDE = '2001:db8:1::7';
/** A router: between the node and the outside, or between pods on different nodes. */
const ROUTER = '2001:db8::fe';
const PORTS = { snatPortMin: 61000, snatPortMax: 65535 };
const NODE_PORT = { address: NODE, port: 30053 };

type Run = (frame: Buffer) => Promise<{ retval: number; data: Buffer }>;

async function withServices(): Promise<LbFixture> {
  const lb = await loadLb();
  lb.setNodeConfig({ snatAddress: '192.0.2.1', ...PORTS, clusterCidrs: ['10.244.0.0/16'], snatAddress6: NODE });
  lb.addService6({ address: VIP, port: 53, proto: 'udp', revNatIndex: 1, backends: [BACKEND] });
  lb.addService6({ address: VIP, port: 80, proto: 'tcp', revNatIndex: 2, backends: [{ ...BACKEND, id: 2, port: 8080 }] });
  lb.addService6({ ...NODE_PORT, proto: 'udp', revNatIndex: 3, backends: [BACKEND], flags: SVC_FLAGS.external });
  return lb;
}

/** Runs `frame` through `run`; expects `verdict` and exactly `expected` out, its ICMPv6 checksum valid. */
async function expectOut(run: Run, frame: Buffer, expected: Buffer, verdict = OK): Promise<Buffer> {
  const result = await run(frame);
  expect(result.retval).toBe(verdict);
  expect(parseIcmp6Error(result.data)).toMatchObject({ icmpChecksumValid: true, lengthConsistent: true });
  expect(result.data).toEqual(expected);
  return result.data;
}

/** The frame `spec` becomes through `run` (which must translate it). */
async function translated(run: Run, spec: Ipv6Spec): Promise<Buffer> {
  const result = await run(ipv6Packet(spec));
  expect(result.retval).toBe(OK);
  return result.data;
}

/** Expects `run` to leave the frame alone and return TCX_NEXT. */
async function expectPass(run: Run, frame: Buffer, what?: string): Promise<void> {
  const result = await run(frame);
  expect(result.retval, what).toBe(NEXT);
  expect(result.data, what).toEqual(frame);
}

describe('ICMPv6 error frames (test support)', () => {
  it('quote the packet they are about, with a valid checksum over the pseudo header', () => {
    const about = ipv6Packet({ proto: 'udp', src: CLIENT, dst: VIP, sport: 40000, dport: 53, payload: Buffer.from('query') });
    const frame = icmp6Error({ type: TYPE.PKT_TOO_BIG, code: 0, src: ROUTER, dst: CLIENT, about, word: 1280 });
    const error = parseIcmp6Error(frame);
    expect(error).toMatchObject({ src: ROUTER, dst: CLIENT, type: 2, code: 0, unused: 1280, icmpChecksumValid: true, lengthConsistent: true });
    expect(error.quote).toEqual(about.subarray(ETH_HLEN));
    expect(parseIpv6Packet(quotedFrame(frame))).toMatchObject({ src: CLIENT, dst: VIP, l4ChecksumValid: true });
    // The checksum covers the outer addresses: moving one breaks it.
    address6(VIP).copy(frame, ETH_HLEN + 24);
    expect(parseIcmp6Error(frame).icmpChecksumValid).toBe(false);
  });
});

describe.skipIf(!isRoot)('ICMPv6 errors about translated IPv6 flows (needs root: BPF_PROG_TEST_RUN)', () => {
  it('a backend’s port unreachable about a UDP service flow reaches the client from the VIP, about what the client sent', async () => {
    const lb = await withServices();
    for (const [sport, extra] of [[40000, {}], [40001, { udpNoChecksum: true }]] as const) {
      const query: Ipv6Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport, dport: 53, payload: Buffer.from('query'), ...extra };
      const sent = await translated((f) => lb.run(f), query);
      expect(parseIpv6Packet(sent)).toMatchObject({ dst: BACKEND.address, dport: BACKEND.port });
      // The whole datagram quoted (as Linux does), and only its headers (the least that names the flow).
      for (const quote of [undefined, IPV6_HLEN + 8]) {
        const error = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: BACKEND.address, dst: CLIENT, about: sent, quote });
        const expected = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: VIP, dst: CLIENT, about: ipv6Packet(query), quote });
        const out = await expectOut((f) => lb.run(f), error, expected);
        const inner = parseIpv6Packet(quotedFrame(out));
        expect(inner).toMatchObject({ src: CLIENT, dst: VIP, sport, dport: 53 });
        if (quote === undefined) expect(inner.l4ChecksumValid).toBe(true);
        // Checksum 0 ("none") stays 0.
        if ('udpNoChecksum' in extra) expect(inner.l4Checksum).toBe(0);
      }
    }
    expect(lb.counters()).toMatchObject({ icmp_translated: 4n });
  });

  it('a router’s time exceeded about a TCP flow to a remote backend keeps the router’s address; TCP’s checksum is fixed when quoted', async () => {
    const lb = await withServices();
    const syn: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40010, dport: 80, flags: TCP.SYN, payload: Buffer.from('data') };
    const sent = await translated((f) => lb.run(f), syn);
    // Whole; up to TCP's checksum included (58) and not (56); the ports only (48).
    for (const quote of [undefined, IPV6_HLEN + 18, IPV6_HLEN + 16, IPV6_HLEN + 8]) {
      const error = icmp6Error({ type: TYPE.TIME_EXCEEDED, code: 0, src: ROUTER, dst: CLIENT, about: sent, quote });
      const expected = icmp6Error({ type: TYPE.TIME_EXCEEDED, code: 0, src: ROUTER, dst: CLIENT, about: ipv6Packet(syn), quote });
      const out = await expectOut((f) => lb.runUplink(f), error, expected);
      if (quote === undefined) expect(parseIpv6Packet(quotedFrame(out))).toMatchObject({ src: CLIENT, dst: VIP, sport: 40010, dport: 80, l4ChecksumValid: true });
    }
    expect(lb.nonZeroCounters()).toMatchObject({ translated: 1n, icmp_translated: 4n });
  });

  it('packet too big from a router beyond the uplink about an SNATed NodePort flow reaches the outside client, MTU kept', async () => {
    const lb = await withServices();
    const big: Ipv6Spec = { proto: 'udp', src: OUTSIDE, dst: NODE, sport: 40020, dport: NODE_PORT.port, payload: Buffer.alloc(1400, 0x61) };
    const sent = await translated((f) => lb.runUplink(f), big);
    const out = parseIpv6Packet(sent);
    expect(out).toMatchObject({ src: NODE, dst: BACKEND.address, dport: BACKEND.port });
    expect(out.sport).toBeGreaterThanOrEqual(PORTS.snatPortMin);
    // The router's error goes to the packet's (SNATed) source, the node, and quotes what fits in 1280 bytes.
    const error = icmp6Error({ type: TYPE.PKT_TOO_BIG, code: 0, src: ROUTER, dst: NODE, about: sent, word: 1280 });
    expect(error.length).toBe(ETH_HLEN + IPV6_MIN_MTU);
    // Sent on past the stack like the flow's replies (no FIB in a test run: handed to the stack).
    await expectOut((f) => lb.runUplink(f), error, icmp6Error({ type: TYPE.PKT_TOO_BIG, code: 0, src: ROUTER, dst: OUTSIDE, about: ipv6Packet(big), word: 1280 }));
    expect(lb.nonZeroCounters()).toMatchObject({ translated: 1n, icmp_translated: 1n, fib_miss: 2n });
  });

  it('an error the client sends about a reply goes to the backend, about what the backend sent', async () => {
    const lb = await withServices();
    await translated((f) => lb.run(f), { proto: 'udp', src: CLIENT, dst: VIP, sport: 40030, dport: 53 });
    const answer: Ipv6Spec = { proto: 'udp', src: BACKEND.address, dst: CLIENT, sport: BACKEND.port, dport: 40030, payload: Buffer.from('late answer') };
    const received = await translated((f) => lb.run(f), answer);
    expect(parseIpv6Packet(received)).toMatchObject({ src: VIP, sport: 53 });
    // Parameter problem: its pointer (the word after the checksum) is kept.
    const error = icmp6Error({ type: TYPE.PARAM_PROB, code: 0, src: CLIENT, dst: VIP, about: received, word: 6 });
    await expectOut((f) => lb.run(f), error, icmp6Error({ type: TYPE.PARAM_PROB, code: 0, src: CLIENT, dst: BACKEND.address, about: ipv6Packet(answer), word: 6 }));
  });

  it('a NodePort flow’s error from its backend goes back to the outside client from the NodePort', async () => {
    const lb = await withServices();
    const query: Ipv6Spec = { proto: 'udp', src: OUTSIDE, dst: NODE, sport: 40040, dport: NODE_PORT.port, payload: Buffer.from('query') };
    const sent = await translated((f) => lb.runUplink(f), query);
    const error = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: BACKEND.address, dst: NODE, about: sent });
    await expectOut((f) => lb.run(f), error, icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: NODE, dst: OUTSIDE, about: ipv6Packet(query) }));
    expect(lb.counters()).toMatchObject({ icmp_translated: 1n, fib_miss: 2n });
  });

  it('the outside client’s error about a NodePort reply reaches the backend from the flow’s SNAT address and port', async () => {
    const lb = await withServices();
    const sent = await translated((f) => lb.runUplink(f), { proto: 'udp', src: OUTSIDE, dst: NODE, sport: 40050, dport: NODE_PORT.port });
    const snatPort = parseIpv6Packet(sent).sport;
    const answer: Ipv6Spec = { proto: 'udp', src: BACKEND.address, dst: NODE, sport: BACKEND.port, dport: snatPort, payload: Buffer.from('answer') };
    const received = await translated((f) => lb.run(f), answer);
    expect(parseIpv6Packet(received)).toMatchObject({ src: NODE, sport: NODE_PORT.port, dst: OUTSIDE, dport: 40050 });
    const error = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: OUTSIDE, dst: NODE, about: received });
    await expectOut((f) => lb.runUplink(f), error, icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: NODE, dst: BACKEND.address, about: ipv6Packet(answer) }));
  });

  it('hairpin: a pod’s error about its own request through its service goes straight back into it, from the VIP', async () => {
    const lb = await loadLb();
    const pod = { id: 1, address: CLIENT, port: 8080 };
    lb.addService6({ address: VIP, port: 80, proto: 'udp', revNatIndex: 7, backends: [pod] });
    const query: Ipv6Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 40060, dport: 80, payload: Buffer.from('me?') };
    const result = await lb.run(ipv6Packet(query));
    expect(result.retval).toBe(REDIRECT);
    const hairpinned = macsSwapped(result.data);
    expect(parseIpv6Packet(hairpinned)).toMatchObject({ src: HAIRPIN_ADDRESS6, dst: CLIENT, dport: 8080 });
    const error = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: CLIENT, dst: HAIRPIN_ADDRESS6, about: hairpinned });
    const expected = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: VIP, dst: CLIENT, about: ipv6Packet(query) });
    await expectOut((f) => lb.run(f), error, macsSwapped(expected), REDIRECT);
    expect(lb.nonZeroCounters()).toMatchObject({ icmp_translated: 1n, hairpin: 2n });
  });

  it('neither creates nor refreshes conntrack entries', async () => {
    const lb = await withServices();
    const sent = await translated((f) => lb.run(f), { proto: 'udp', src: CLIENT, dst: VIP, sport: 40070, dport: 53 });
    const before = lb.flows6();
    expect(before).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 30)); // past a tick of the programs' clock
    const error = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: BACKEND.address, dst: CLIENT, about: sent });
    expect((await lb.run(error)).retval).toBe(OK);
    expect(lb.flows6()).toEqual(before);
  });

  it('keeps every checksum right whatever the addresses’ words (300 random backends, clients and ports)', async () => {
    const lb = await withServices();
    const word = () => Math.floor(Math.random() * 0x10000).toString(16);
    const randomAddress = () => formatAddress6(address6(Array.from({ length: 8 }, word).join(':')), 0);
    for (let i = 0; i < 300; i++) {
      const backend = { id: 10, address: randomAddress(), port: 1 + Math.floor(Math.random() * 65535) };
      const proto = i % 2 ? 'udp' : 'tcp';
      lb.addService6({ address: VIP, port: 443, proto, revNatIndex: 10, backends: [backend] });
      const spec: Ipv6Spec = { proto, src: randomAddress(), dst: VIP, sport: 1024 + i, dport: 443, payload: Buffer.from(`payload ${i}`) };
      const sent = await translated((f) => lb.run(f), spec);
      const router = randomAddress();
      const error = icmp6Error({ type: TYPE.TIME_EXCEEDED, code: 0, src: router, dst: spec.src, about: sent });
      await expectOut((f) => lb.runUplink(f), error, icmp6Error({ type: TYPE.TIME_EXCEEDED, code: 0, src: router, dst: spec.src, about: ipv6Packet(spec) }));
    }
  });

  it('passes errors about no tracked flow (or one whose backend or service is gone), about echo, about errors, and short quotes, untouched', async () => {
    const lb = await withServices();
    const untracked = ipv6Packet({ proto: 'udp', src: CLIENT, dst: 'fd00:10:244::77', sport: 40080, dport: 53 });
    const portUnreach = icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: 'fd00:10:244::77', dst: CLIENT, about: untracked });
    const echo = icmp6Packet(ICMP6.ECHO_REQUEST, 0, CLIENT, '2001:db8:9::1', Buffer.from('0001000170696e67', 'hex'));
    const noService = [portUnreach, icmp6Error({ type: TYPE.TIME_EXCEEDED, code: 0, src: ROUTER, dst: CLIENT, about: echo })];
    const malformed = [
      icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: VIP, dst: CLIENT, about: portUnreach }),
      icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: 'fd00:10:244::77', dst: CLIENT, about: untracked, quote: IPV6_HLEN + 4 }),
      icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: 'fd00:10:244::77', dst: CLIENT, about: ipv6WithExtension(NEXTHDR.destination, { proto: 'udp', src: CLIENT, dst: 'fd00:10:244::77', sport: 40080, dport: 53 }) }),
      // An ICMPv6 message shorter than its 8-byte header.
      icmp6Packet(TYPE.DEST_UNREACH, 0, ROUTER, CLIENT, Buffer.alloc(0)),
    ];
    for (const run of [(f: Buffer) => lb.run(f), (f: Buffer) => lb.runUplink(f)]) {
      for (const frame of [...noService, ...malformed]) await expectPass(run, frame);
    }
    expect(lb.nonZeroCounters()).toEqual({ pass_no_service: BigInt(2 * noService.length), pass_malformed: BigInt(2 * malformed.length) });

    // A tracked flow whose reverse NAT entry, then whose backend, is gone: nothing to translate to.
    const lb2 = await withServices();
    const sent = await translated((f) => lb2.run(f), { proto: 'udp', src: CLIENT, dst: VIP, sport: 40081, dport: 53 });
    const answer = await translated((f) => lb2.run(f), { proto: 'udp', src: BACKEND.address, dst: CLIENT, sport: BACKEND.port, dport: 40081 });
    for (const key of [...lb2.revNat6.keys()]) lb2.revNat6.delete(key);
    await expectPass((f) => lb2.run(f), icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: BACKEND.address, dst: CLIENT, about: sent }));
    for (const [key] of backendSlots(lb2.backends6)) lb2.removeBackend6(backendId.decode(key));
    await expectPass((f) => lb2.run(f), icmp6Error({ type: TYPE.DEST_UNREACH, code: ICMP6.PORT_UNREACH, src: CLIENT, dst: VIP, about: answer }));
    expect(lb2.counters()).toMatchObject({ pass_no_rev_nat: 1n, pass_no_service: 1n, icmp_translated: 0n });
  });

  it('neighbour discovery, echo and other informational ICMPv6 pass as before, even to a service address', async () => {
    const lb = await withServices();
    const frames = [
      neighborSolicitation(CLIENT, 'fd00:10:244::1'),
      neighborSolicitation('fe80::1', VIP),
      icmp6Packet(ICMP6.ECHO_REQUEST, 0, CLIENT, VIP, Buffer.from('0001000170696e67', 'hex')),
      icmp6Packet(TYPE.ECHO_REPLY, 0, VIP, CLIENT, Buffer.from('0001000170696e67', 'hex')),
      // Types 100, 101 and 127 are errors' private and reserved ones (RFC 4443 2.1): not translated.
      icmp6Packet(127, 0, ROUTER, CLIENT, Buffer.alloc(48)),
    ];
    for (const run of [(f: Buffer) => lb.run(f), (f: Buffer) => lb.runUplink(f)]) for (const frame of frames) await expectPass(run, frame);
    expect(lb.nonZeroCounters()).toEqual({ pass_other_proto: BigInt(2 * frames.length) });
  });
});
