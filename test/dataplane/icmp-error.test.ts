// ICMP errors about a translated flow, under BPF_PROG_TEST_RUN: the outer
// header and the quoted packet are rewritten as the flow is translated, both
// ways, so each error comes out byte for byte as its receiver would have got
// it without NAT (every checksum included: the builder computes them afresh).
// Maps are filled and read only through engine/dataplane/layout.ts.
import { describe, expect, it } from 'vitest';

import { SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { echoPacket, ICMP, icmpError, parseEcho, UNREACH } from './icmp-packets.js';
import { type LbFixture, loadLb, NEXT, OK } from './lb-fixture.js';
import { ETH_HLEN, type Ipv4Spec, ipv4Packet, parseIcmpError, parseIpv4Packet, TCP } from './packets.js';

const VIP = '10.96.0.10';
const CLIENT = '10.244.0.9';
const BACKEND = { id: 1, address: '10.244.0.5', port: 5353 };
const NODE = '192.0.2.1';
/** A router: between the node and the outside, or between pods on different nodes. */
const ROUTER = '192.0.2.254';
const OUTSIDE = '198.18.0.2';
const PORTS = { snatPortMin: 61000, snatPortMax: 65535 };

async function withServices(): Promise<LbFixture> {
  const lb = await loadLb();
  lb.setNodeConfig({ snatAddress: NODE, ...PORTS, clusterCidrs: ['10.244.0.0/16'] });
  lb.addService({ address: VIP, port: 53, proto: 'udp', revNatIndex: 1, backends: [BACKEND] });
  lb.addService({ address: VIP, port: 80, proto: 'tcp', revNatIndex: 2, backends: [{ ...BACKEND, id: 2, port: 8080 }] });
  return lb;
}

/** Runs `frame` through `run`, expects `verdict` and exactly `expected` out. */
async function expectOut(run: (f: Buffer) => Promise<{ retval: number; data: Buffer }>, frame: Buffer, expected: Buffer, verdict = OK): Promise<void> {
  const result = await run(frame);
  expect(result.retval).toBe(verdict);
  expect(parseIcmpError(result.data)).toMatchObject({ ipChecksumValid: true, icmpChecksumValid: true });
  expect(result.data).toEqual(expected);
}

/** The frame `spec` becomes through `run` (which must translate it). */
async function translated(run: (f: Buffer) => Promise<{ retval: number; data: Buffer }>, spec: Ipv4Spec): Promise<Buffer> {
  const result = await run(ipv4Packet(spec));
  expect(result.retval).toBe(OK);
  return result.data;
}

describe('ICMP error frames (test support)', () => {
  it('quote the packet they are about, with valid checksums', () => {
    const about = ipv4Packet({ proto: 'udp', src: CLIENT, dst: VIP, sport: 40000, dport: 53, payload: Buffer.from('query') });
    const error = parseIcmpError(icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: VIP, dst: CLIENT, about }));
    expect(error).toMatchObject({ src: VIP, dst: CLIENT, type: 3, code: 3, ipChecksumValid: true, icmpChecksumValid: true, lengthConsistent: true });
    expect(error.quote).toEqual(about.subarray(ETH_HLEN));
  });
});

describe.skipIf(!isRoot)('ICMP errors about translated flows (needs root: BPF_PROG_TEST_RUN)', () => {
  it('a backend’s port unreachable about a UDP service flow reaches the client from the VIP, about what the client sent', async () => {
    const lb = await withServices();
    for (const [sport, extra] of [[40000, {}], [40001, { udpNoChecksum: true }]] as const) {
      const query: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport, dport: 53, payload: Buffer.from('query'), ...extra };
      const sent = await translated((f) => lb.run(f), query);
      expect(parseIpv4Packet(sent)).toMatchObject({ dst: BACKEND.address, dport: BACKEND.port });
      // The whole datagram quoted (as Linux does), and only its first 8 bytes (RFC 792's least).
      for (const quote of [undefined, 28]) {
        const error = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: BACKEND.address, dst: CLIENT, about: sent, quote });
        const expected = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: VIP, dst: CLIENT, about: ipv4Packet(query), quote });
        await expectOut((f) => lb.run(f), error, expected);
      }
    }
    expect(lb.counters()).toMatchObject({ icmp_translated: 4n });
  });

  it('a router’s time exceeded about a TCP flow to a remote backend keeps the router’s address; TCP’s checksum is fixed when quoted', async () => {
    const lb = await withServices();
    const syn: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: VIP, sport: 40010, dport: 80, flags: TCP.SYN, payload: Buffer.from('data') };
    const sent = await translated((f) => lb.run(f), syn);
    for (const quote of [undefined, 28]) {
      const error = icmpError({ type: ICMP.TIME_EXCEEDED, code: 0, src: ROUTER, dst: CLIENT, about: sent, quote });
      const expected = icmpError({ type: ICMP.TIME_EXCEEDED, code: 0, src: ROUTER, dst: CLIENT, about: ipv4Packet(syn), quote });
      await expectOut((f) => lb.runUplink(f), error, expected);
    }
  });

  it('an error the client sends about a reply goes to the backend, about what the backend sent', async () => {
    const lb = await withServices();
    const query: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 40020, dport: 53 };
    await translated((f) => lb.run(f), query);
    const answer: Ipv4Spec = { proto: 'udp', src: BACKEND.address, dst: CLIENT, sport: BACKEND.port, dport: 40020, payload: Buffer.from('late answer') };
    const received = await translated((f) => lb.run(f), answer);
    const error = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: CLIENT, dst: VIP, about: received });
    const expected = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: CLIENT, dst: BACKEND.address, about: ipv4Packet(answer) });
    await expectOut((f) => lb.run(f), error, expected);
  });

  it('fragmentation needed from a router beyond the uplink about a masqueraded flow reaches the pod, MTU kept', async () => {
    const lb = await withServices();
    const big: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: OUTSIDE, sport: 40030, dport: 443, flags: TCP.ACK, payload: Buffer.alloc(1400, 0x61) };
    await translated((f) => lb.runEgress(f), { ...big, flags: TCP.SYN, payload: Buffer.alloc(0) }); // the pod's connection, opened
    const sent = await translated((f) => lb.runEgress(f), big);
    expect(parseIpv4Packet(sent).src).toBe(NODE);
    const error = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.FRAG_NEEDED, src: ROUTER, dst: NODE, about: sent, quote: 548, mtu: 1280 });
    const expected = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.FRAG_NEEDED, src: ROUTER, dst: CLIENT, about: ipv4Packet(big), quote: 548, mtu: 1280 });
    await expectOut((f) => lb.runUplink(f), error, expected);
    expect(lb.nonZeroCounters()).toMatchObject({ masqueraded: 2n, icmp_translated: 1n });
  });

  it('time exceeded about a masqueraded ping reaches the pod, quoting its own identifier', async () => {
    const lb = await withServices();
    const ping = echoPacket({ src: CLIENT, dst: OUTSIDE, type: 'request', id: 0x4242 });
    const sent = await lb.runEgress(ping);
    expect(parseEcho(sent.data).id).toBeGreaterThanOrEqual(PORTS.snatPortMin);
    const error = icmpError({ type: ICMP.TIME_EXCEEDED, code: 0, src: ROUTER, dst: NODE, about: sent.data });
    await expectOut((f) => lb.runUplink(f), error, icmpError({ type: ICMP.TIME_EXCEEDED, code: 0, src: ROUTER, dst: CLIENT, about: ping }));
  });

  it('a pod’s port unreachable about a masqueraded flow’s reply leaves masqueraded through to_uplink; from_pod leaves it to it', async () => {
    const lb = await withServices();
    const query: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: OUTSIDE, sport: 40040, dport: 53 };
    const port = parseIpv4Packet(await translated((f) => lb.runEgress(f), query)).sport;
    const answer: Ipv4Spec = { proto: 'udp', src: OUTSIDE, dst: NODE, sport: 53, dport: port, payload: Buffer.from('answer') };
    const received = await translated((f) => lb.runUplink(f), answer);
    const error = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: CLIENT, dst: OUTSIDE, about: received });
    const untouched = await lb.run(error);
    expect(untouched.retval).toBe(NEXT);
    expect(untouched.data).toEqual(error);
    await expectOut((f) => lb.runEgress(f), error, icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: NODE, dst: OUTSIDE, about: ipv4Packet(answer) }));
  });

  it('a NodePort flow’s error from its backend goes back to the outside client from the NodePort', async () => {
    const lb = await withServices();
    const nodePort = { address: NODE, port: 30053 };
    lb.addService({ ...nodePort, proto: 'udp', revNatIndex: 3, backends: [BACKEND], flags: SVC_FLAGS.external });
    const query: Ipv4Spec = { proto: 'udp', src: '203.0.113.7', dst: NODE, sport: 40050, dport: nodePort.port };
    const sent = await translated((f) => lb.runUplink(f), query);
    expect(parseIpv4Packet(sent)).toMatchObject({ src: NODE, dst: BACKEND.address });
    const error = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: BACKEND.address, dst: NODE, about: sent });
    // Redirected past the stack like the flow's replies (no FIB in a test run: handed to the stack).
    await expectOut((f) => lb.run(f), error, icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: NODE, dst: '203.0.113.7', about: ipv4Packet(query) }));
    expect(lb.counters()).toMatchObject({ icmp_translated: 1n, fib_miss: 2n });
  });

  it('passes errors about no tracked flow, errors quoting an error, and quotes too short to read, untouched', async () => {
    const lb = await withServices();
    const untracked = ipv4Packet({ proto: 'udp', src: CLIENT, dst: '10.244.0.77', sport: 40060, dport: 53 });
    const portUnreach = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: '10.244.0.77', dst: CLIENT, about: untracked });
    const frames = [
      portUnreach,
      icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: VIP, dst: CLIENT, about: portUnreach }),
      icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: '10.244.0.77', dst: CLIENT, about: untracked, quote: 24 }),
    ];
    for (const run of [(f: Buffer) => lb.run(f), (f: Buffer) => lb.runUplink(f), (f: Buffer) => lb.runEgress(f)]) {
      for (const frame of frames) {
        const result = await run(frame);
        expect(result.retval).toBe(NEXT);
        expect(result.data).toEqual(frame);
      }
    }
    expect(lb.nonZeroCounters()).toEqual({ pass_no_service: 3n, pass_malformed: 6n });
  });
});
