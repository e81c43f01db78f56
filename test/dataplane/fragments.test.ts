// Fragmented datagrams under BPF_PROG_TEST_RUN (lib/frag4.h): the first
// fragment is translated like any packet and its translation recorded; the
// later ones, without ports, get the same addresses, either way and through
// to_uplink's masquerade; without a recorded first fragment, or once it is
// too old, they pass untouched.
import { describe, expect, it } from 'vitest';
import { frag4Entry, frag4Key } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, NEXT, OK } from './lb-fixture.js';
import { type Ipv4Spec, ipv4Packet, parseIpv4Packet } from './packets.js';

const VIP = '10.96.0.53';
const CLIENT = '10.244.0.9';
const BACKEND = { id: 1, address: '10.244.0.5', port: 5353 };
const NODE = '192.0.2.1';
const OUTSIDE = '198.18.0.2';
const ID = 0x4242;

async function withUdpService(): Promise<LbFixture> {
  const lb = await loadLb();
  lb.addService({ address: VIP, port: 53, proto: 'udp', revNatIndex: 9, backends: [BACKEND] });
  lb.setNodeConfig({ snatAddress: NODE, snatPortMin: 61000, snatPortMax: 65535, clusterCidrs: ['10.244.0.0/16'] });
  return lb;
}

/** A datagram's first fragment (MF set): its UDP header and the start of its payload. */
const first = (spec: Omit<Ipv4Spec, 'proto'>): Buffer => ipv4Packet({ proto: 'udp', ...spec, id: ID, moreFragments: true, payload: Buffer.alloc(64, 1) });

/**
 * A later fragment: from offset 9 (72 bytes on), no UDP header, only payload;
 * ipv4Packet() writes its "ports" into the body, which no program reads.
 */
const later = (src: string, dst: string, more = false): Buffer =>
  ipv4Packet({ proto: 'udp', src, dst, sport: 0xaaaa, dport: 0xbbbb, id: ID, fragOffset: 9, moreFragments: more, payload: Buffer.alloc(40, 2) });

/** Expects `out` to be `frame` with the IP addresses `src` → `dst` and a valid header checksum, the rest untouched. */
function expectAddresses(out: Buffer, frame: Buffer, src: string, dst: string): void {
  const parsed = parseIpv4Packet(out);
  expect({ src: parsed.src, dst: parsed.dst, ipChecksumValid: parsed.ipChecksumValid }).toEqual({ src, dst, ipChecksumValid: true });
  expect(out.subarray(34)).toEqual(frame.subarray(34));
}

describe.skipIf(!isRoot)('fragmented datagrams of translated flows (needs root: BPF_PROG_TEST_RUN)', () => {
  it('DNATs a query’s later fragments as its first, and reverse-NATs the answer’s', async () => {
    const lb = await withUdpService();
    const query = await lb.run(first({ src: CLIENT, dst: VIP, sport: 40000, dport: 53 }));
    expect(parseIpv4Packet(query.data)).toMatchObject({ src: CLIENT, dst: BACKEND.address, dport: BACKEND.port, ipChecksumValid: true });
    const recorded = lb.fragments.lookup(frag4Key.encode({ saddr: CLIENT, daddr: VIP, id: ID, proto: 'udp' }));
    expect(frag4Entry.decode(recorded!)).toMatchObject({ saddr: CLIENT, daddr: BACKEND.address, flags: 0 });

    for (const more of [true, false]) {
      const frame = later(CLIENT, VIP, more);
      const out = await lb.run(frame);
      expect(out.retval).not.toBe(NEXT);
      expectAddresses(out.data, frame, CLIENT, BACKEND.address);
    }

    await lb.run(first({ src: BACKEND.address, dst: CLIENT, sport: BACKEND.port, dport: 40000 }));
    const frame = later(BACKEND.address, CLIENT);
    const answer = await lb.run(frame);
    expectAddresses(answer.data, frame, VIP, CLIENT);
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, rev_translated: 1n, frag_translated: 3n, ct_created: 1n });
  });

  it('masquerades a pod’s later fragments to outside as its first (to_uplink)', async () => {
    const lb = await withUdpService();
    const out = await lb.runEgress(first({ src: CLIENT, dst: OUTSIDE, sport: 40001, dport: 514 }));
    expect(out.retval).toBe(OK);
    expect(parseIpv4Packet(out.data).src).toBe(NODE);
    const frame = later(CLIENT, OUTSIDE);
    const rest = await lb.runEgress(frame);
    expect(rest.retval).toBe(OK);
    expectAddresses(rest.data, frame, NODE, OUTSIDE);
    expect(lb.nonZeroCounters()).toEqual({ masqueraded: 1n, frag_translated: 1n, ct_created: 1n });
  });

  it('passes a later fragment untouched without its first, and once its first is older than 30 s', async () => {
    const lb = await withUdpService();
    const orphan = later(CLIENT, VIP);
    expect((await lb.run(orphan)).data).toEqual(orphan);

    await lb.run(first({ src: CLIENT, dst: VIP, sport: 40002, dport: 53 }));
    const key = frag4Key.encode({ saddr: CLIENT, daddr: VIP, id: ID, proto: 'udp' });
    const entry = frag4Entry.decode(lb.fragments.lookup(key)!);
    lb.fragments.update(key, frag4Entry.encode({ ...entry, firstSeenNs: entry.firstSeenNs - 31n * 1_000_000_000n }));
    const stale = later(CLIENT, VIP);
    expect((await lb.run(stale)).data).toEqual(stale);
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, ct_created: 1n, pass_fragment: 2n });
  });
});
