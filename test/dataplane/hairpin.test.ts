// Hairpin under BPF_PROG_TEST_RUN: a pod reaching itself through its own
// service. from_pod DNATs it to itself and SNATs its source to the node's
// side (HAIRPIN_ADDRESS, routed mode's gateway) as kube-proxy masquerades
// hairpin traffic, and bounces the packet straight back into the pod; its
// replies come back from the VIP. Maps are filled and read only through
// engine/dataplane/layout.ts.
import { describe, expect, it } from 'vitest';

import { CT_FLAGS, HAIRPIN_ADDRESS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { ICMP, icmpError, macsSwapped, UNREACH } from './icmp-packets.js';
import { type LbFixture, loadLb, OK, REDIRECT, SHOT } from './lb-fixture.js';
import { type Ipv4Spec, ipv4Packet, parseIpv4Packet, TCP } from './packets.js';

const VIP = '10.96.0.10';
const OTHER_VIP = '10.96.0.11';
const POD = { id: 1, address: '10.244.0.9', port: 8080 };
const HAIRPIN = CT_FLAGS.snat | CT_FLAGS.hairpin;

/** A TCP service VIP:80 (and OTHER_VIP:80) whose only backend is POD; no node config unless asked. */
async function withSelfService(nodeConfig = false): Promise<LbFixture> {
  const lb = await loadLb();
  if (nodeConfig) lb.setNodeConfig({ snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535 });
  lb.addService({ address: VIP, port: 80, proto: 'tcp', revNatIndex: 1, backends: [POD] });
  lb.addService({ address: OTHER_VIP, port: 80, proto: 'tcp', revNatIndex: 2, backends: [POD] });
  return lb;
}

/** Runs `spec` through from_pod; expects it bounced back into the pod as `expected` would be sent; returns the frame. */
async function expectBounced(lb: LbFixture, spec: Ipv4Spec, expected: Partial<Ipv4Spec>): Promise<Buffer> {
  const result = await lb.run(ipv4Packet(spec));
  expect(result.retval).toBe(REDIRECT);
  expect(parseIpv4Packet(result.data)).toMatchObject({ ipChecksumValid: true, l4ChecksumValid: true });
  expect(result.data).toEqual(macsSwapped(ipv4Packet({ ...spec, ...expected })));
  return result.data;
}

describe.skipIf(!isRoot)('from_pod: a pod reaching itself through its service (needs root: BPF_PROG_TEST_RUN)', () => {
  it('DNATs to the pod, SNATs to HAIRPIN_ADDRESS keeping its port, and sends it straight back into the pod', async () => {
    const lb = await withSelfService();
    const syn: Ipv4Spec = { proto: 'tcp', src: POD.address, dst: VIP, sport: 40000, dport: 80, flags: TCP.SYN };
    await expectBounced(lb, syn, { src: HAIRPIN_ADDRESS, dst: POD.address, dport: POD.port });
    expect(lb.flow({ saddr: POD.address, daddr: VIP, sport: 40000, dport: 80, proto: 'tcp', dir: 'forward' })).toMatchObject({
      backendId: POD.id,
      flags: HAIRPIN,
      natAddress: HAIRPIN_ADDRESS,
      natPort: 40000,
    });
    expect(lb.flow({ saddr: POD.address, daddr: HAIRPIN_ADDRESS, sport: POD.port, dport: 40000, proto: 'tcp', dir: 'reverse' })).toMatchObject({
      flags: HAIRPIN,
      natAddress: POD.address,
      natPort: 40000,
    });
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, ct_created: 1n, hairpin: 1n });
  });

  it('the pod’s reply comes back to it from the VIP, and later packets follow the flow', async () => {
    const lb = await withSelfService();
    const syn: Ipv4Spec = { proto: 'tcp', src: POD.address, dst: VIP, sport: 40001, dport: 80, flags: TCP.SYN };
    await expectBounced(lb, syn, { src: HAIRPIN_ADDRESS, dst: POD.address, dport: POD.port });
    const reply: Ipv4Spec = { proto: 'tcp', src: POD.address, dst: HAIRPIN_ADDRESS, sport: POD.port, dport: 40001, flags: TCP.SYN | TCP.ACK };
    await expectBounced(lb, reply, { src: VIP, sport: 80, dst: POD.address });
    await expectBounced(lb, { ...syn, flags: TCP.ACK, payload: Buffer.from('hello me') }, { src: HAIRPIN_ADDRESS, dst: POD.address, dport: POD.port });
    expect(lb.nonZeroCounters()).toEqual({ translated: 2n, rev_translated: 1n, ct_created: 1n, hairpin: 3n });
  });

  it('another pod reaching the same service is not hairpinned: its source is kept, the stack routes it', async () => {
    const lb = await withSelfService();
    const spec: Ipv4Spec = { proto: 'tcp', src: '10.244.0.20', dst: VIP, sport: 40002, dport: 80 };
    const result = await lb.run(ipv4Packet(spec));
    expect(result.retval).toBe(OK);
    expect(result.data).toEqual(ipv4Packet({ ...spec, dst: POD.address, dport: POD.port }));
    expect(lb.counters().hairpin).toBe(0n);
  });

  it('keeps the pod’s port unless another flow to it has it: then one of the SNAT range, and without one the flow is dropped', async () => {
    const configured = await withSelfService(true);
    const first: Ipv4Spec = { proto: 'tcp', src: POD.address, dst: VIP, sport: 40003, dport: 80 };
    await expectBounced(configured, first, { src: HAIRPIN_ADDRESS, dst: POD.address, dport: POD.port });
    // The same source port to another service of the pod: the reply tuple is taken.
    const result = await configured.run(ipv4Packet({ ...first, dst: OTHER_VIP }));
    expect(result.retval).toBe(REDIRECT);
    expect(parseIpv4Packet(result.data)).toMatchObject({ src: HAIRPIN_ADDRESS, dst: POD.address });
    expect(parseIpv4Packet(result.data).sport).toBeGreaterThanOrEqual(61000);

    const bare = await withSelfService();
    await expectBounced(bare, first, { src: HAIRPIN_ADDRESS, dst: POD.address, dport: POD.port });
    expect((await bare.run(ipv4Packet({ ...first, dst: OTHER_VIP }))).retval).toBe(SHOT);
    expect(bare.counters().drop_no_snat_port).toBe(1n);
  });

  it('a UDP hairpin to a port nothing listens on: the pod’s port unreachable comes back from the VIP, about what it sent', async () => {
    const lb = await withSelfService();
    lb.addService({ address: VIP, port: 53, proto: 'udp', revNatIndex: 3, backends: [{ ...POD, id: 2, port: 5353 }] });
    const query: Ipv4Spec = { proto: 'udp', src: POD.address, dst: VIP, sport: 40004, dport: 53, payload: Buffer.from('anyone?') };
    const received = macsSwapped(await expectBounced(lb, query, { src: HAIRPIN_ADDRESS, dst: POD.address, dport: 5353 }));
    const error = icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: POD.address, dst: HAIRPIN_ADDRESS, about: received });
    const result = await lb.run(error);
    expect(result.retval).toBe(REDIRECT);
    expect(result.data).toEqual(macsSwapped(icmpError({ type: ICMP.DEST_UNREACH, code: UNREACH.PORT, src: VIP, dst: POD.address, about: ipv4Packet(query) })));
    expect(lb.counters()).toMatchObject({ icmp_translated: 1n, hairpin: 2n });
  });
});
