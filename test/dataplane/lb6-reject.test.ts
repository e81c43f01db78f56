// An IPv6 Service without endpoints rejects new flows as kube-proxy's
// ip6tables rules do (REJECT: ICMPv6 port unreachable), from_pod and
// from_uplink under BPF_PROG_TEST_RUN: the frame that comes out is the
// ICMPv6 error, checked against the frame that went in (RFC 4443: type 1
// code 4, the checksum over the pseudo header, the invoking packet quoted
// as far as the error fits the minimum MTU, 1280).
import { describe, expect, it } from 'vitest';

import { SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, REDIRECT, SHOT } from './lb-fixture.js';
import { ETH_HLEN, ICMP6, IPV6_HLEN, IPV6_MIN_MTU, type Ipv6Spec, ipv6Packet, parseIcmp6Error, TCP } from './packets6.js';

const VIP = 'fd00:10:96::10';
const CLIENT = 'fd00:10:244::9';
const OUTSIDE = '2001:db8:1::7';
const EXTERNAL_IP = '2001:db8:2::10';
const BACKEND = { id: 1, address: 'fd00:10:244::5', port: 8080 };
/** The frames go from 02:00:00:00:00:01 to 02:00:00:00:00:02. */
const SENDER_MAC = '02:00:00:00:00:01';
const RECEIVER_MAC = '02:00:00:00:00:02';

async function emptyService(proto: 'tcp' | 'udp'): Promise<LbFixture> {
  const lb = await loadLb();
  lb.addService6({ address: VIP, port: 80, proto, revNatIndex: 7, backends: [] });
  return lb;
}

/** Runs `frame` through `run`; expects the ICMPv6 port unreachable for it, back to its sender, from `from`. */
async function expectPortUnreachable(run: (f: Buffer) => Promise<{ retval: number; data: Buffer }>, frame: Buffer, from: string, to: string): Promise<void> {
  const result = await run(frame);
  expect(result.retval).toBe(REDIRECT);
  const out = parseIcmp6Error(result.data);
  expect(out).toMatchObject({
    src: from,
    dst: to,
    ethSrc: RECEIVER_MAC,
    ethDst: SENDER_MAC,
    hopLimit: 64,
    firstWord: 0x60000000,
    type: ICMP6.DEST_UNREACH,
    code: ICMP6.PORT_UNREACH,
    unused: 0,
    icmpChecksumValid: true,
    lengthConsistent: true,
  });
  // As much of the invoking packet, from its IPv6 header on, as fits in 1280 bytes.
  const packet = frame.subarray(ETH_HLEN);
  const quoted = Math.min(packet.length, IPV6_MIN_MTU - IPV6_HLEN - 8);
  expect(out.quote).toEqual(packet.subarray(0, quoted));
  expect(out.packetLength).toBe(IPV6_HLEN + 8 + quoted);
  expect(result.data.length).toBe(ETH_HLEN + IPV6_HLEN + 8 + quoted);
}

describe.skipIf(!isRoot)('from_pod/from_uplink: an IPv6 Service without endpoints rejects (needs root: BPF_PROG_TEST_RUN)', () => {
  it('a TCP SYN to an empty ClusterIP comes back as ICMPv6 port unreachable from the service address', async () => {
    const lb = await emptyService('tcp');
    const frame = ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40020, dport: 80 });
    await expectPortUnreachable((f) => lb.run(f), frame, VIP, CLIENT);
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 1n });
    // A retransmitted SYN is a new flow again: rejected again.
    await expectPortUnreachable((f) => lb.run(f), frame, VIP, CLIENT);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 2n });
  });

  it('UDP datagrams of every length up to past the minimum MTU: quoted whole, or cut to fit 1280', async () => {
    const lb = await emptyService('udp');
    // Odd lengths and lengths on each side of the summing chunks (256 bytes) and of the cut.
    const lengths = [0, 1, 2, 3, 5, 7, 200, 201, 202, 203, 208, 463, 464, 465, 1100, 1183, 1184, 1185, 1186, 1187, 1188, 1400, 1452];
    for (const length of lengths) {
      const payload = Buffer.alloc(length);
      for (let i = 0; i < length; i++) payload[i] = (i * 7 + length) & 0xff;
      const spec: Ipv6Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 40021, dport: 80, payload };
      await expectPortUnreachable((f) => lb.run(f), ipv6Packet(spec), VIP, CLIENT);
    }
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: BigInt(lengths.length) });
  });

  it('a SYN with data and a datagram whose checksum is 0 are answered all the same', async () => {
    const lb = await emptyService('tcp');
    await expectPortUnreachable((f) => lb.run(f), ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40022, dport: 80, flags: TCP.SYN, payload: Buffer.alloc(1000, 0xff) }), VIP, CLIENT);
    lb.addService6({ address: VIP, port: 53, proto: 'udp', revNatIndex: 8, backends: [] });
    await expectPortUnreachable((f) => lb.run(f), ipv6Packet({ proto: 'udp', src: CLIENT, dst: VIP, sport: 40022, dport: 53, udpNoChecksum: true }), VIP, CLIENT);
  });

  it('answers only a flow’s first packet: other TCP segments are dropped', async () => {
    const lb = await emptyService('tcp');
    for (const flags of [TCP.ACK, TCP.SYN | TCP.ACK, TCP.RST, TCP.FIN | TCP.ACK]) {
      const result = await lb.run(ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40023, dport: 80, flags }));
      expect(result.retval).toBe(SHOT);
    }
    expect(lb.nonZeroCounters()).toEqual({ drop_no_backend: 4n });
  });

  it('never answers a multicast or broadcast frame, or a source that is no one host', async () => {
    const lb = await emptyService('udp');
    const spec: Ipv6Spec = { proto: 'udp', src: CLIENT, dst: VIP, sport: 40024, dport: 80 };
    const broadcast = ipv6Packet(spec).fill(0xff, 0, 6);
    const multicast = ipv6Packet(spec);
    multicast.set([0x33, 0x33, 0, 0, 0, 1], 0);
    for (const frame of [broadcast, multicast, ipv6Packet({ ...spec, src: '::' }), ipv6Packet({ ...spec, src: 'ff02::1' })]) {
      expect((await lb.run(frame)).retval).toBe(SHOT);
    }
    expect(lb.nonZeroCounters()).toEqual({ drop_no_backend: 4n });
  });

  it('from outside: an empty Cluster-policy frontend rejects; Local rejects only without endpoints anywhere', async () => {
    const lb = await loadLb();
    lb.setNodeConfig({ snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535, snatAddress6: '2001:db8::1' });
    lb.addService6({ address: EXTERNAL_IP, port: 80, proto: 'tcp', revNatIndex: 3, backends: [], flags: SVC_FLAGS.external });
    const cluster = ipv6Packet({ proto: 'tcp', src: OUTSIDE, dst: EXTERNAL_IP, sport: 44000, dport: 80 });
    await expectPortUnreachable((f) => lb.runUplink(f), cluster, EXTERNAL_IP, OUTSIDE);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 1n });

    const local = (backends: (typeof BACKEND)[]) => {
      lb.addService6({ address: EXTERNAL_IP, port: 8000, proto: 'tcp', revNatIndex: 4, backends: [], flags: SVC_FLAGS.external | SVC_FLAGS.local });
      lb.addService6({ address: EXTERNAL_IP, port: 8000, proto: 'tcp', revNatIndex: 4, backends, flags: SVC_FLAGS.external, scope: 'internal' });
    };
    // Local, endpoints on other nodes only: kube-proxy drops ("has no local endpoints").
    local([BACKEND]);
    const toLocal = ipv6Packet({ proto: 'tcp', src: OUTSIDE, dst: EXTERNAL_IP, sport: 44001, dport: 8000 });
    expect((await lb.runUplink(toLocal)).retval).toBe(SHOT);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 1n, drop_no_backend: 1n });

    // Local, no endpoints at all: kube-proxy rejects ("has no endpoints").
    local([]);
    await expectPortUnreachable((f) => lb.runUplink(f), toLocal, EXTERNAL_IP, OUTSIDE);
    expect(lb.nonZeroCounters()).toEqual({ reject_no_backend: 2n, drop_no_backend: 1n });
    expect(lb.flows6()).toHaveLength(0);
  });
});
