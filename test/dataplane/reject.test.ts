// A Service without endpoints rejects new flows as kube-proxy's iptables
// mode does (REJECT: ICMP port unreachable), from_pod and from_uplink under
// BPF_PROG_TEST_RUN: the frame that comes out is the ICMP error, checked
// byte for byte against the frame that went in.
import { describe, expect, it } from 'vitest';

import { SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, NEXT, REDIRECT, SHOT } from './lb-fixture.js';
import { ETH_HLEN, IPPROTO, type Ipv4Spec, ipv4Other, ipv4Packet, parseIcmpError, TCP } from './packets.js';

const VIP = '10.96.0.10';
const CLIENT = '10.244.0.9';
const OUTSIDE = '203.0.113.7';
const EXTERNAL_IP = '198.51.100.10';
const BACKEND = { id: 1, address: '10.244.0.5', port: 8080 };
/** packets.ts's frames go from 02:00:00:00:00:01 to 02:00:00:00:00:02. */
const SENDER_MAC = '02:00:00:00:00:01';
const RECEIVER_MAC = '02:00:00:00:00:02';

async function emptyService(proto: 'tcp' | 'udp'): Promise<LbFixture> {
  const lb = await loadLb();
  lb.addService({ address: VIP, port: 80, proto, revNatIndex: 7, backends: [] });
  return lb;
}

/** Runs `frame` through `run`; expects the ICMP port unreachable for it, back to its sender, from `from`. */
async function expectPortUnreachable(run: (f: Buffer) => Promise<{ retval: number; data: Buffer }>, frame: Buffer, from: string, to: string): Promise<void> {
  const result = await run(frame);
  expect(result.retval).toBe(REDIRECT);
  const out = parseIcmpError(result.data);
  const ipLen = (frame[ETH_HLEN]! & 0x0f) * 4;
  expect(out).toMatchObject({
    src: from,
    dst: to,
    ethSrc: RECEIVER_MAC,
    ethDst: SENDER_MAC,
    type: 3,
    code: 3,
    ipChecksumValid: true,
    icmpChecksumValid: true,
    lengthConsistent: true,
  });
  // RFC 792: the original IP header and the first 64 bits of its payload, as they came in.
  expect(out.quote).toEqual(frame.subarray(ETH_HLEN, ETH_HLEN + ipLen + 8));
  // An outer header without options: 20 + 8 + quote.
  expect(result.data.length).toBe(ETH_HLEN + 20 + 8 + ipLen + 8);
}

describe.skipIf(!isRoot)('from_pod/from_uplink: a Service without endpoints rejects (needs root: BPF_PROG_TEST_RUN)', () => {
  it('a TCP SYN to an empty ClusterIP comes back as ICMP port unreachable from the VIP', async () => {
    const lb = await emptyService('tcp');
    const frame = ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40020, dport: 80 });
    await expectPortUnreachable((f) => lb.run(f), frame, VIP, CLIENT);
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 1n });
    // A retransmitted SYN is a new flow again: rejected again.
    await expectPortUnreachable((f) => lb.run(f), frame, VIP, CLIENT);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 2n });
  });

  it('a UDP datagram (with payload, cut to the quote) and one with IP options', async () => {
    const lb = await emptyService('udp');
    const spec: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 40021, dport: 80, payload: Buffer.alloc(300, 0x61) };
    await expectPortUnreachable((f) => lb.run(f), ipv4Packet(spec), VIP, CLIENT);
    // Options are quoted too (IP header of 32 bytes here).
    const options = Buffer.from([0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00]);
    await expectPortUnreachable((f) => lb.run(f), ipv4Packet({ ...spec, options }), VIP, CLIENT);
    // A datagram without a UDP checksum is answered all the same.
    await expectPortUnreachable((f) => lb.run(f), ipv4Packet({ ...spec, payload: undefined, udpNoChecksum: true }), VIP, CLIENT);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 3n });
  });

  it('answers only a flow’s first packet: other TCP segments are dropped', async () => {
    const lb = await emptyService('tcp');
    for (const flags of [TCP.ACK, TCP.SYN | TCP.ACK, TCP.RST, TCP.FIN | TCP.ACK]) {
      const result = await lb.run(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40022, dport: 80, flags }));
      expect(result.retval).toBe(SHOT);
    }
    expect(lb.nonZeroCounters()).toEqual({ drop_no_backend: 4n });
  });

  it('never answers an ICMP error, a broadcast or multicast frame, or a source that is no one host', async () => {
    const lb = await emptyService('udp');
    // An ICMP port unreachable to the VIP (quoting nothing readable): passed on untouched, never answered.
    const icmp = Buffer.alloc(8 + 28);
    icmp[0] = 3;
    icmp[1] = 3;
    const error = ipv4Other(IPPROTO.icmp, CLIENT, VIP, icmp);
    const result = await lb.run(error);
    expect(result.retval).toBe(NEXT);
    expect(result.data).toEqual(error);

    const spec: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 40023, dport: 80 };
    const broadcast = ipv4Packet(spec);
    broadcast.fill(0xff, 0, 6);
    const multicast = ipv4Packet(spec);
    multicast.set([0x01, 0x00, 0x5e, 0, 0, 1], 0);
    for (const frame of [broadcast, multicast, ipv4Packet({ ...spec, src: '0.0.0.0' }), ipv4Packet({ ...spec, src: '224.0.0.1' })]) {
      expect((await lb.run(frame)).retval).toBe(SHOT);
    }
    expect(lb.nonZeroCounters()).toEqual({ pass_malformed: 1n, drop_no_backend: 4n });
  });

  it('from outside: an empty Cluster-policy frontend rejects; Local rejects only without endpoints anywhere', async () => {
    const lb = await loadLb();
    lb.setNodeConfig({ snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535 });
    lb.addService({ address: EXTERNAL_IP, port: 80, proto: 'tcp', revNatIndex: 3, backends: [], flags: SVC_FLAGS.external });
    const cluster = ipv4Packet({ proto: 'tcp', src: OUTSIDE, dst: EXTERNAL_IP, sport: 44000, dport: 80 });
    await expectPortUnreachable((f) => lb.runUplink(f), cluster, EXTERNAL_IP, OUTSIDE);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 1n });

    // Local, endpoints on other nodes only: kube-proxy drops ("has no local endpoints").
    const local = (backends: (typeof BACKEND)[]) => {
      lb.addService({ address: EXTERNAL_IP, port: 8000, proto: 'tcp', revNatIndex: 4, backends: [], flags: SVC_FLAGS.external | SVC_FLAGS.local });
      lb.addService({ address: EXTERNAL_IP, port: 8000, proto: 'tcp', revNatIndex: 4, backends, flags: SVC_FLAGS.external, scope: 'internal' });
    };
    local([BACKEND]);
    const toLocal = ipv4Packet({ proto: 'tcp', src: OUTSIDE, dst: EXTERNAL_IP, sport: 44001, dport: 8000 });
    expect((await lb.runUplink(toLocal)).retval).toBe(SHOT);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 1n, drop_no_backend: 1n });

    // Local, no endpoints at all: kube-proxy rejects ("has no endpoints").
    local([]);
    await expectPortUnreachable((f) => lb.runUplink(f), toLocal, EXTERNAL_IP, OUTSIDE);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 2n, drop_no_backend: 1n });
    expect(lb.flows()).toHaveLength(0);
  });
});
