// Masquerade under BPF_PROG_TEST_RUN: to_uplink (the uplink's egress) SNATs
// a pod's packets to outside the cluster to the node's address and a port
// (an echo: identifier) claimed in BPF; from_uplink translates the replies
// back. Pod to pod (this node's or another's), the node's own traffic and a
// pod's service flows are left alone. Maps are filled and read only through
// engine/dataplane/layout.ts.
import { describe, expect, it } from 'vitest';

import { collectConntrack } from '../../engine/dataplane/ct-gc.js';
import { listConntrack } from '../../engine/dataplane/inspect.js';
import { clusterNode4, clusterNode4Key, CT_FLAGS, CT_STATE, type Ct4Key } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { echoPacket, parseEcho } from './icmp-packets.js';
import { type LbFixture, loadLb, NEXT, OK, SHOT } from './lb-fixture.js';
import { type Ipv4Spec, ipv4Packet, parseIpv4Packet, TCP } from './packets.js';

const NODE = '192.0.2.1';
const POD = '10.244.0.9';
const OTHER_POD = '10.244.0.10';
/** A pod on another node: in the cluster CIDR, behind the uplink. */
const REMOTE_POD = '10.244.1.5';
const OUTSIDE = '198.18.0.2';
const PORTS = { snatPortMin: 61000, snatPortMax: 65535 };
const MASQ = CT_FLAGS.snat | CT_FLAGS.masq;
const SEC = 1_000_000_000n;

async function withMasq(clusterCidrs = ['10.244.0.0/16', '100.64.0.0/16']): Promise<LbFixture> {
  const lb = await loadLb();
  lb.setNodeConfig({ snatAddress: NODE, ...PORTS, clusterCidrs });
  return lb;
}

/** Runs `spec` through to_uplink; expects only its source rewritten, to NODE and a port of the range; returns the port. */
async function expectMasq(lb: LbFixture, spec: Ipv4Spec): Promise<number> {
  const result = await lb.runEgress(ipv4Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv4Packet(result.data);
  expect(out).toMatchObject({ src: NODE, dst: spec.dst, dport: spec.dport, ipChecksumValid: true, l4ChecksumValid: true });
  expect(out.sport).toBeGreaterThanOrEqual(PORTS.snatPortMin);
  expect(out.sport).toBeLessThanOrEqual(PORTS.snatPortMax);
  expect(result.data).toEqual(ipv4Packet({ ...spec, src: NODE, sport: out.sport }));
  return out.sport;
}

/** Runs the outside's reply to NODE:port through from_uplink; expects it to reach the pod's own address and port. */
async function expectUnmasq(lb: LbFixture, reply: Ipv4Spec, pod: { address: string; port: number }): Promise<void> {
  const result = await lb.runUplink(ipv4Packet(reply));
  expect(result.retval).toBe(OK);
  expect(parseIpv4Packet(result.data)).toMatchObject({ ipChecksumValid: true, l4ChecksumValid: true });
  expect(result.data).toEqual(ipv4Packet({ ...reply, dst: pod.address, dport: pod.port }));
}

const forwardKey = (spec: Ipv4Spec): Ct4Key => ({ saddr: spec.src, daddr: spec.dst, sport: spec.sport, dport: spec.dport, proto: spec.proto, dir: 'forward' });
const reverseKey = (spec: Ipv4Spec, port: number): Ct4Key => ({ saddr: spec.dst, daddr: NODE, sport: spec.dport, dport: port, proto: spec.proto, dir: 'reverse' });

describe.skipIf(!isRoot)('to_uplink: masquerading pods’ traffic to outside the cluster (needs root: BPF_PROG_TEST_RUN)', () => {
  it('SNATs a pod’s SYN to outside to the node address and a port of the range, and records the flow both ways', async () => {
    const lb = await withMasq();
    const syn: Ipv4Spec = { proto: 'tcp', src: POD, dst: OUTSIDE, sport: 40000, dport: 443, flags: TCP.SYN };
    const port = await expectMasq(lb, syn);
    expect(lb.flows()).toHaveLength(2);
    expect(lb.flow(forwardKey(syn))).toMatchObject({ backendId: 0, revNatIndex: 0, flags: MASQ, natAddress: NODE, natPort: port, state: CT_STATE.new });
    expect(lb.flow(reverseKey(syn, port))).toMatchObject({ backendId: 0, revNatIndex: 0, flags: MASQ, natAddress: POD, natPort: 40000 });
    expect(lb.nonZeroCounters()).toEqual({ masqueraded: 1n, ct_created: 1n });
  });

  it('translates replies back through from_uplink; later packets keep the port and establish the flow', async () => {
    const lb = await withMasq();
    const syn: Ipv4Spec = { proto: 'tcp', src: POD, dst: OUTSIDE, sport: 40001, dport: 443, flags: TCP.SYN };
    const port = await expectMasq(lb, syn);
    await expectUnmasq(lb, { proto: 'tcp', src: OUTSIDE, dst: NODE, sport: 443, dport: port, flags: TCP.SYN | TCP.ACK }, { address: POD, port: 40001 });
    expect(await expectMasq(lb, { ...syn, flags: TCP.ACK, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n') })).toBe(port);
    expect(lb.flow(forwardKey(syn))).toMatchObject({ state: CT_STATE.established });
    expect(lb.flows()).toHaveLength(2);
    expect(lb.nonZeroCounters()).toEqual({ masqueraded: 2n, rev_translated: 1n, ct_created: 1n });
  });

  it('masquerades UDP both ways, a checksum of 0 staying 0', async () => {
    const lb = await withMasq();
    const query: Ipv4Spec = { proto: 'udp', src: POD, dst: OUTSIDE, sport: 53000, dport: 53, payload: Buffer.from('query') };
    const port = await expectMasq(lb, query);
    await expectUnmasq(lb, { proto: 'udp', src: OUTSIDE, dst: NODE, sport: 53, dport: port, payload: Buffer.from('answer') }, { address: POD, port: 53000 });
    const none = await lb.runEgress(ipv4Packet({ ...query, sport: 53001, udpNoChecksum: true }));
    expect(parseIpv4Packet(none.data)).toMatchObject({ src: NODE, l4Checksum: 0 });
  });

  it('gives every flow its own reply tuple: two pods from the same ports to one server, 200 flows', async () => {
    const lb = await withMasq();
    const ports = new Set<number>();
    for (let i = 0; i < 200; i++) {
      ports.add(await expectMasq(lb, { proto: 'tcp', src: i % 2 === 0 ? POD : OTHER_POD, dst: OUTSIDE, sport: 41000 + Math.floor(i / 2), dport: 443 }));
    }
    expect(ports.size).toBe(200);
    expect(lb.flows()).toHaveLength(400);
  });

  it('masquerades a pod’s ping: the identifier is the port, replies get their own back', async () => {
    const lb = await withMasq();
    const ids = new Set<number>();
    for (const pod of [POD, OTHER_POD]) {
      const request = await lb.runEgress(echoPacket({ src: pod, dst: OUTSIDE, type: 'request', id: 0x1234 }));
      expect(request.retval).toBe(OK);
      const out = parseEcho(request.data);
      expect(out).toMatchObject({ src: NODE, dst: OUTSIDE, type: 8, icmpChecksumValid: true });
      expect(out.id).toBeGreaterThanOrEqual(PORTS.snatPortMin);
      expect(request.data).toEqual(echoPacket({ src: NODE, dst: OUTSIDE, type: 'request', id: out.id }));
      ids.add(out.id);

      const reply = await lb.runUplink(echoPacket({ src: OUTSIDE, dst: NODE, type: 'reply', id: out.id }));
      expect(reply.retval).toBe(OK);
      expect(reply.data).toEqual(echoPacket({ src: OUTSIDE, dst: pod, type: 'reply', id: 0x1234 }));
      expect(lb.flow({ saddr: pod, daddr: OUTSIDE, sport: 0x1234, dport: 0, proto: 'icmp', dir: 'forward' })).toMatchObject({ flags: MASQ, natPort: out.id });
      expect(lb.flow({ saddr: OUTSIDE, daddr: NODE, sport: 0, dport: out.id, proto: 'icmp', dir: 'reverse' })).toMatchObject({ natAddress: pod, natPort: 0x1234 });
    }
    expect(ids.size).toBe(2);
    expect(lb.nonZeroCounters()).toEqual({ masqueraded: 2n, rev_translated: 2n, ct_created: 2n });
  });

  it('leaves pod to pod (another node’s too), the node’s own and non-pod traffic alone; nothing without cluster CIDRs', async () => {
    const lb = await withMasq();
    const frames = [
      ipv4Packet({ proto: 'tcp', src: POD, dst: REMOTE_POD, sport: 42000, dport: 8080 }),
      ipv4Packet({ proto: 'tcp', src: POD, dst: '100.64.3.4', sport: 42000, dport: 8080 }),
      ipv4Packet({ proto: 'tcp', src: NODE, dst: OUTSIDE, sport: 42000, dport: 443 }),
      ipv4Packet({ proto: 'udp', src: '192.0.2.77', dst: OUTSIDE, sport: 42000, dport: 53 }),
      echoPacket({ src: POD, dst: REMOTE_POD, type: 'request', id: 7 }),
    ];
    for (const frame of frames) {
      const result = await lb.runEgress(frame);
      expect(result.retval).toBe(NEXT);
      expect(result.data).toEqual(frame);
    }
    expect(lb.nonZeroCounters()).toEqual({ pass_no_masq: BigInt(frames.length) });

    const unconfigured = await withMasq([]);
    const toOutside = ipv4Packet({ proto: 'tcp', src: POD, dst: OUTSIDE, sport: 42001, dport: 443 });
    expect((await unconfigured.runEgress(toOutside)).retval).toBe(NEXT);
    expect(unconfigured.flows()).toHaveLength(0);
  });

  it('leaves a pod’s packets to another node of the cluster (ferry_node4) alone, UDP answers to its SNATed flows included', async () => {
    const lb = await withMasq();
    const OTHER_NODE = '192.0.2.2';
    lb.clusterNodes.update(clusterNode4Key.encode({ address: OTHER_NODE }), clusterNode4.encode({}));
    const answer = ipv4Packet({ proto: 'udp', src: POD, dst: OTHER_NODE, sport: 5353, dport: 61520 });
    const result = await lb.runEgress(answer);
    expect(result.retval).toBe(NEXT);
    expect(result.data).toEqual(answer);
    // Anywhere else outside the cluster: masqueraded as before.
    await expectMasq(lb, { proto: 'udp', src: POD, dst: OUTSIDE, sport: 5353, dport: 61520 });
  });

  it('leaves alone a pod’s TCP answer to a connection it did not open (another node’s SNATed NodePort flow, a routed client)', async () => {
    const lb = await withMasq();
    for (const flags of [TCP.SYN | TCP.ACK, TCP.ACK, TCP.RST, TCP.FIN | TCP.ACK]) {
      const frame = ipv4Packet({ proto: 'tcp', src: POD, dst: OUTSIDE, sport: 8080, dport: 61520, flags });
      const result = await lb.runEgress(frame);
      expect(result.retval).toBe(NEXT);
      expect(result.data).toEqual(frame);
    }
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_no_masq: 4n });
  });

  it('leaves alone a pod’s UDP answers to a flow from outside (inbound), and its echo replies; the GC keeps the inbound entry until it expires', async () => {
    const lb = await withMasq();
    const query: Ipv4Spec = { proto: 'udp', src: OUTSIDE, dst: POD, sport: 40000, dport: 53, payload: Buffer.from('query') };
    // The query passes from_uplink untranslated (no service), and is remembered.
    const inbound = await lb.runUplink(ipv4Packet(query));
    expect(inbound.data).toEqual(ipv4Packet(query));
    const answerKey: Ct4Key = { saddr: POD, daddr: OUTSIDE, sport: 53, dport: 40000, proto: 'udp', dir: 'forward' };
    expect(lb.flows()).toEqual([{ key: answerKey, entry: expect.objectContaining({ flags: CT_FLAGS.inbound, backendId: 0, state: CT_STATE.established }) }]);
    for (let i = 0; i < 3; i++) {
      const answer = ipv4Packet({ proto: 'udp', src: POD, dst: OUTSIDE, sport: 53, dport: 40000, payload: Buffer.from(`answer ${i}`) });
      const result = await lb.runEgress(answer);
      expect(result.retval).toBe(NEXT);
      expect(result.data).toEqual(answer);
    }
    const reply = echoPacket({ src: POD, dst: OUTSIDE, type: 'reply', id: 7 });
    expect((await lb.runEgress(reply)).data).toEqual(reply);
    // The pod's own flow to the same client, from another port, is masqueraded as ever.
    await expectMasq(lb, { proto: 'udp', src: POD, dst: OUTSIDE, sport: 45000, dport: 40000 });
    expect(lb.nonZeroCounters()).toEqual({ pass_no_service: 1n, pass_no_masq: 4n, masqueraded: 1n, ct_created: 1n });

    const maps = { conntrack: lb.conntrack, backends: lb.backends, services: lb.services };
    expect(collectConntrack(maps, lb.now())).toMatchObject({ expired: 0, orphaned: 0, remaining: 3 });
    expect(collectConntrack(maps, lb.now() + 61n * SEC)).toMatchObject({ expired: 3, remaining: 0 });
  });

  it('leaves a pod’s service flow to a backend outside the cluster alone; from_uplink reverse-NATs its reply', async () => {
    const lb = await withMasq();
    // The `kubernetes` Service: its endpoints are control-plane nodes' addresses.
    const apiserver = { id: 1, address: '192.0.2.10', port: 6443 };
    lb.addService({ address: '10.96.0.1', port: 443, proto: 'tcp', revNatIndex: 1, backends: [apiserver] });
    const dnat = await lb.run(ipv4Packet({ proto: 'tcp', src: POD, dst: '10.96.0.1', sport: 43000, dport: 443, flags: TCP.SYN }));
    expect(dnat.retval).toBe(OK);
    const egress = await lb.runEgress(dnat.data);
    expect(egress.retval).toBe(NEXT);
    expect(egress.data).toEqual(dnat.data);
    const reply: Ipv4Spec = { proto: 'tcp', src: apiserver.address, dst: POD, sport: apiserver.port, dport: 43000, flags: TCP.SYN | TCP.ACK };
    const back = await lb.runUplink(ipv4Packet(reply));
    expect(back.data).toEqual(ipv4Packet({ ...reply, src: '10.96.0.1', sport: 443 }));
    expect(lb.counters()).toMatchObject({ pass_no_masq: 1n, masqueraded: 0n });
  });

  it('drops new flows without a node address, and when no port is free', async () => {
    const lb = await withMasq();
    lb.setNodeConfig({ snatAddress: '0.0.0.0', ...PORTS, clusterCidrs: ['10.244.0.0/16'] });
    expect((await lb.runEgress(ipv4Packet({ proto: 'tcp', src: POD, dst: OUTSIDE, sport: 44000, dport: 443 }))).retval).toBe(SHOT);
    expect(lb.counters().drop_no_snat_addr).toBe(1n);

    lb.setNodeConfig({ snatAddress: NODE, snatPortMin: 61000, snatPortMax: 61000, clusterCidrs: ['10.244.0.0/16'] });
    expect(await expectMasq(lb, { proto: 'tcp', src: POD, dst: OUTSIDE, sport: 44001, dport: 443 })).toBe(61000);
    expect((await lb.runEgress(ipv4Packet({ proto: 'tcp', src: OTHER_POD, dst: OUTSIDE, sport: 44001, dport: 443 }))).retval).toBe(SHOT);
    expect(lb.counters().drop_no_snat_port).toBe(1n);
    // Another server: another reply tuple, the same port is free for it.
    expect(await expectMasq(lb, { proto: 'tcp', src: OTHER_POD, dst: OUTSIDE, sport: 44001, dport: 80 })).toBe(61000);
  });

  it('inspection lists a masqueraded flow by its pod, its outside peer and the address it became', async () => {
    const lb = await withMasq();
    const port = await expectMasq(lb, { proto: 'udp', src: POD, dst: OUTSIDE, sport: 45000, dport: 53 });
    const views = listConntrack({ conntrack: lb.conntrack, backends: lb.backends, revNat: lb.revNat }, { proto: 'udp', dst: OUTSIDE }, lb.now());
    expect(views.map((v) => ({ dir: v.dir, client: v.client, service: v.service, snat: v.snat, flags: v.flags }))).toEqual(
      ['forward', 'reverse'].map((dir) => ({ dir, client: `${POD}:45000`, service: `${OUTSIDE}:53`, snat: `${NODE}:${port}`, flags: ['snat', 'masq'] })),
    );
  });

  it('the conntrack GC keeps masqueraded flows (no backend, no service) until they expire', async () => {
    const lb = await withMasq();
    await expectMasq(lb, { proto: 'udp', src: POD, dst: OUTSIDE, sport: 45000, dport: 53 });
    const maps = { conntrack: lb.conntrack, backends: lb.backends, services: lb.services };
    expect(collectConntrack(maps, lb.now())).toMatchObject({ expired: 0, orphaned: 0, withdrawn: 0, remaining: 2 });
    expect(collectConntrack(maps, lb.now() + 61n * SEC)).toMatchObject({ expired: 2, remaining: 0 });
  });
});
