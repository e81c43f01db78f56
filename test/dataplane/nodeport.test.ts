// from_uplink (build/bpf/lb.o) under BPF_PROG_TEST_RUN: traffic from outside
// the node to NodePorts and external IPs, DNAT with or without SNAT, port
// allocation, replies through from_pod (local backend) and from_uplink
// (remote backend). Maps are filled and read only through
// engine/dataplane/layout.ts.
//
// A test run has no ingress interface (skb->ingress_ifindex is 0), so the
// FIB lookup that would redirect a translated packet finds no device: the
// programs hand it to the stack (TC_ACT_OK) and count fib_miss. The
// redirect itself is exercised end to end in nodeport-e2e.test.ts.
import { describe, expect, it } from 'vitest';

import { CT_FLAGS, CT_STATE, type Ct4Key, ct4Key, LB_EVENTS, LB_METRICS, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, NEXT, OK, SHOT } from './lb-fixture.js';
import { type Ipv4Spec, ipv4Packet, parseIpv4Packet, TCP } from './packets.js';

const NODE = '192.0.2.1';
const CLIENT = '203.0.113.7';
const EXTERNAL_IP = '198.51.100.10';
const VIP = '10.96.0.10';
const POD = '10.244.0.9';
const BACKENDS = [
  { id: 1, address: '10.244.0.5', port: 8080 },
  { id: 2, address: '10.244.0.6', port: 8080 },
];
const PORTS = { snatPortMin: 61000, snatPortMax: 65535 };
const NODE_PORT = { address: NODE, port: 30080 };
const REV_NAT = { nodePort: 3, externalIp: 4, clusterIp: 5, local: 6 };
const SNAT_REDIRECT = CT_FLAGS.snat | CT_FLAGS.redirect;

async function withServices(options: { config?: boolean; proto?: 'tcp' | 'udp' } = {}): Promise<LbFixture> {
  const lb = await loadLb();
  const proto = options.proto ?? 'tcp';
  if (options.config ?? true) lb.setNodeConfig({ snatAddress: NODE, ...PORTS });
  lb.addService({ ...NODE_PORT, proto, revNatIndex: REV_NAT.nodePort, backends: BACKENDS, flags: SVC_FLAGS.external });
  lb.addService({ address: EXTERNAL_IP, port: 80, proto, revNatIndex: REV_NAT.externalIp, backends: BACKENDS, flags: SVC_FLAGS.external });
  lb.addService({ address: VIP, port: 80, proto, revNatIndex: REV_NAT.clusterIp, backends: BACKENDS });
  return lb;
}

/** An externalTrafficPolicy Local frontend as the reconciler writes it: this node's backend outside, every backend inside. */
function addLocal(lb: LbFixture, local: typeof BACKENDS, address = EXTERNAL_IP, port = 8000): void {
  lb.addService({ address, port, proto: 'tcp', revNatIndex: REV_NAT.local, backends: local, flags: SVC_FLAGS.external | SVC_FLAGS.local });
  lb.addService({ address, port, proto: 'tcp', revNatIndex: REV_NAT.local, backends: BACKENDS, flags: SVC_FLAGS.external, scope: 'internal' });
}

function backendAt(address: string): (typeof BACKENDS)[number] {
  const b = BACKENDS.find((x) => x.address === address);
  if (!b) throw new Error(`${address} is no backend`);
  return b;
}

interface Snat {
  backend: (typeof BACKENDS)[number];
  /** The source port the flow was given. */
  port: number;
}

/** Runs `spec` through from_uplink; expects DNAT to a backend and SNAT to NODE:port, nothing else changed. */
async function expectSnat(lb: LbFixture, spec: Ipv4Spec): Promise<Snat> {
  const result = await lb.runUplink(ipv4Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv4Packet(result.data);
  const backend = backendAt(out.dst);
  expect(out).toMatchObject({ src: NODE, dport: backend.port, ipChecksumValid: true, l4ChecksumValid: true });
  expect(out.sport).toBeGreaterThanOrEqual(PORTS.snatPortMin);
  expect(out.sport).toBeLessThanOrEqual(PORTS.snatPortMax);
  expect(result.data).toEqual(ipv4Packet({ ...spec, src: NODE, sport: out.sport, dst: backend.address, dport: backend.port }));
  return { backend, port: out.sport };
}

/** Runs a reply through `run`; expects it to come from `frontend` and go to `client`, checksums valid. */
async function expectReply(run: (frame: Buffer) => Promise<{ retval: number; data: Buffer }>, spec: Ipv4Spec, frontend: { address: string; port: number }, client: { address: string; port: number }): Promise<void> {
  const result = await run(ipv4Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv4Packet(result.data);
  expect(out).toMatchObject({ src: frontend.address, sport: frontend.port, dst: client.address, dport: client.port, ipChecksumValid: true, l4ChecksumValid: true });
  expect(result.data).toEqual(ipv4Packet({ ...spec, src: frontend.address, sport: frontend.port, dst: client.address, dport: client.port }));
}

function forwardKey(sport: number, frontend = NODE_PORT, client = CLIENT): Ct4Key {
  return { saddr: client, daddr: frontend.address, sport, dport: frontend.port, proto: 'tcp', dir: 'forward' };
}

function reverseKey(backend: { address: string; port: number }, to: string, dport: number): Ct4Key {
  return { saddr: backend.address, daddr: to, sport: backend.port, dport, proto: 'tcp', dir: 'reverse' };
}

describe.skipIf(!isRoot)('from_uplink: Services from outside the node (needs root: BPF_PROG_TEST_RUN)', () => {
  it('DNATs a SYN to a NodePort and SNATs it to the node address and a port of the range; both entries know the flow', async () => {
    const lb = await withServices();
    const { backend, port } = await expectSnat(lb, { proto: 'tcp', src: CLIENT, dst: NODE, sport: 40000, dport: 30080, flags: TCP.SYN });

    expect(lb.flows()).toHaveLength(2);
    expect(lb.flow(forwardKey(40000))).toMatchObject({
      backendId: backend.id,
      revNatIndex: REV_NAT.nodePort,
      state: CT_STATE.new,
      tcpFlags: TCP.SYN,
      flags: SNAT_REDIRECT,
      natAddress: NODE,
      natPort: port,
    });
    expect(lb.flow(reverseKey(backend, NODE, port))).toMatchObject({
      backendId: backend.id,
      revNatIndex: REV_NAT.nodePort,
      state: CT_STATE.new,
      tcpFlags: 0,
      flags: SNAT_REDIRECT,
      natAddress: CLIENT,
      natPort: 40000,
    });
    // No ingress device in a test run: the FIB has no answer, the stack gets the packet.
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, ct_created: 1n, fib_miss: 1n });
  });

  it('undoes both translations on replies: through from_pod (a local backend) and from_uplink (a remote one)', async () => {
    const lb = await withServices();
    const syn: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: NODE, sport: 40001, dport: 30080, flags: TCP.SYN };
    const { backend, port } = await expectSnat(lb, syn);
    const reply: Ipv4Spec = { proto: 'tcp', src: backend.address, dst: NODE, sport: backend.port, dport: port, flags: TCP.SYN | TCP.ACK };
    await expectReply((f) => lb.run(f), reply, NODE_PORT, { address: CLIENT, port: 40001 });
    await expectReply((f) => lb.runUplink(f), { ...reply, flags: TCP.ACK, payload: Buffer.from('pong') }, NODE_PORT, { address: CLIENT, port: 40001 });
    // The client's ACK: same backend, same port; the handshake is done.
    expect(await expectSnat(lb, { ...syn, flags: TCP.ACK })).toEqual({ backend, port });
    for (const key of [forwardKey(40001), reverseKey(backend, NODE, port)]) {
      expect(lb.flow(key)).toMatchObject({ state: CT_STATE.established, flags: SNAT_REDIRECT });
    }
    expect(lb.flows()).toHaveLength(2);
    expect(lb.nonZeroCounters()).toEqual({ translated: 2n, rev_translated: 2n, ct_created: 1n, fib_miss: 4n });
  });

  it('gives every flow its own reply tuple: 300 flows, also from one client port of several clients', async () => {
    const lb = await withServices();
    const tuples = new Set<string>();
    const flows: Array<{ spec: Ipv4Spec; snat: Snat }> = [];
    for (let i = 0; i < 300; i++) {
      // 100 client ports, each used by three clients.
      const spec: Ipv4Spec = { proto: 'tcp', src: `203.0.113.${1 + (i % 3)}`, dst: NODE, sport: 41000 + Math.floor(i / 3), dport: 30080 };
      const snat = await expectSnat(lb, spec);
      tuples.add(`${snat.backend.address}:${snat.backend.port} -> ${NODE}:${snat.port}`);
      flows.push({ spec, snat });
    }
    expect(tuples.size).toBe(300);
    // Later packets keep their flow's port.
    for (const { spec, snat } of flows.slice(0, 20)) expect(await expectSnat(lb, { ...spec, flags: TCP.ACK })).toEqual(snat);
    expect(lb.flows()).toHaveLength(600);
  });

  it('claims a port only while no other flow to the same backend holds it; drops when none is free', async () => {
    const lb = await loadLb();
    lb.setNodeConfig({ snatAddress: NODE, snatPortMin: 61000, snatPortMax: 61000 });
    const [only] = BACKENDS;
    lb.addService({ ...NODE_PORT, proto: 'tcp', revNatIndex: REV_NAT.nodePort, backends: [only!], flags: SVC_FLAGS.external });
    expect(await expectSnat(lb, { proto: 'tcp', src: CLIENT, dst: NODE, sport: 40010, dport: 30080 })).toEqual({ backend: only, port: 61000 });
    const second = ipv4Packet({ proto: 'tcp', src: '203.0.113.8', dst: NODE, sport: 40010, dport: 30080 });
    expect((await lb.runUplink(second)).retval).toBe(SHOT);
    expect(lb.counters().drop_no_snat_port).toBe(1n);
    // The first flow's entries collected: the port is free again.
    expect(lb.conntrack.delete(ct4Key.encode(reverseKey(only!, NODE, 61000)))).toBe(true);
    expect(lb.conntrack.delete(ct4Key.encode(forwardKey(40010)))).toBe(true);
    expect(parseIpv4Packet((await lb.runUplink(second)).data)).toMatchObject({ src: NODE, sport: 61000 });
  });

  it('takes its port again for a flow whose reverse entry was evicted, unless another flow has it', async () => {
    const lb = await withServices();
    const syn: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: NODE, sport: 40020, dport: 30080 };
    const first = await expectSnat(lb, syn);
    const reverse = ct4Key.encode(reverseKey(first.backend, NODE, first.port));
    expect(lb.conntrack.delete(reverse)).toBe(true);
    expect(await expectSnat(lb, { ...syn, flags: TCP.ACK })).toEqual(first);
    expect(lb.flow(reverseKey(first.backend, NODE, first.port))).toMatchObject({ natAddress: CLIENT, natPort: 40020 });
    // Another flow's reverse entry now sits on the tuple: this flow moves to a new port.
    const other = lb.conntrack.lookup(reverse)!;
    const taken = Buffer.from(other);
    taken.set([203, 0, 113, 99], 24); // nat_addr: some other client
    lb.conntrack.update(reverse, taken);
    const moved = await expectSnat(lb, { ...syn, flags: TCP.ACK });
    expect(moved.backend).toEqual(first.backend);
    expect(moved.port).not.toBe(first.port);
    expect(lb.flow(forwardKey(40020))).toMatchObject({ natPort: moved.port });
  });

  it('serves external IPs like NodePorts', async () => {
    const lb = await withServices();
    const frontend = { address: EXTERNAL_IP, port: 80 };
    const { backend, port } = await expectSnat(lb, { proto: 'tcp', src: CLIENT, dst: EXTERNAL_IP, sport: 40030, dport: 80 });
    expect(lb.flow(forwardKey(40030, frontend))).toMatchObject({ revNatIndex: REV_NAT.externalIp, flags: SNAT_REDIRECT, natPort: port });
    await expectReply((f) => lb.run(f), { proto: 'tcp', src: backend.address, dst: NODE, sport: backend.port, dport: port, flags: TCP.ACK }, frontend, {
      address: CLIENT,
      port: 40030,
    });
  });

  it('SNATs UDP, and keeps a UDP checksum of 0 at 0 both ways', async () => {
    const lb = await withServices({ proto: 'udp' });
    const query: Ipv4Spec = { proto: 'udp', src: CLIENT, dst: NODE, sport: 53000, dport: 30080, payload: Buffer.from('query') };
    const result = await lb.runUplink(ipv4Packet(query));
    expect(result.retval).toBe(OK);
    const out = parseIpv4Packet(result.data);
    expect(out).toMatchObject({ src: NODE, ipChecksumValid: true, l4ChecksumValid: true });
    const backend = backendAt(out.dst);
    const none = await lb.runUplink(ipv4Packet({ ...query, sport: 53001, udpNoChecksum: true }));
    expect(parseIpv4Packet(none.data)).toMatchObject({ src: NODE, l4Checksum: 0 });
    const answer: Ipv4Spec = { proto: 'udp', src: backend.address, dst: NODE, sport: backend.port, dport: out.sport, payload: Buffer.from('answer') };
    const back = await lb.run(ipv4Packet(answer));
    expect(back.data).toEqual(ipv4Packet({ ...answer, src: NODE, sport: 30080, dst: CLIENT, dport: 53000 }));
  });

  it('externalTrafficPolicy Local: keeps the client address, uses this node’s backends only; pods get every backend', async () => {
    const lb = await withServices();
    const [local, remote] = BACKENDS;
    addLocal(lb, [local!]);
    const frontend = { address: EXTERNAL_IP, port: 8000 };
    for (let i = 0; i < 30; i++) {
      const spec: Ipv4Spec = { proto: 'tcp', src: CLIENT, dst: EXTERNAL_IP, sport: 42000 + i, dport: 8000 };
      const result = await lb.runUplink(ipv4Packet(spec));
      expect(result.retval).toBe(OK);
      // Only the destination changed: the backend sees the client.
      expect(result.data).toEqual(ipv4Packet({ ...spec, dst: local!.address, dport: local!.port }));
    }
    expect(lb.flow(forwardKey(42000, frontend))).toMatchObject({ backendId: local!.id, flags: CT_FLAGS.redirect, natAddress: '0.0.0.0', natPort: 0 });
    expect(lb.flow(reverseKey(local!, CLIENT, 42000))).toMatchObject({ backendId: local!.id, flags: CT_FLAGS.redirect, natAddress: '0.0.0.0' });
    await expectReply((f) => lb.run(f), { proto: 'tcp', src: local!.address, dst: CLIENT, sport: local!.port, dport: 42000, flags: TCP.ACK }, frontend, {
      address: CLIENT,
      port: 42000,
    });

    // From a pod: the internal scope, both backends, no SNAT.
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const result = await lb.run(ipv4Packet({ proto: 'tcp', src: POD, dst: EXTERNAL_IP, sport: 43000 + i, dport: 8000 }));
      expect(result.retval).toBe(OK);
      const out = parseIpv4Packet(result.data);
      expect(out.src).toBe(POD);
      seen.add(out.dst);
    }
    expect([...seen].sort()).toEqual([local!.address, remote!.address]);
    expect(lb.flow(forwardKey(43000, frontend, POD))).toMatchObject({ flags: CT_FLAGS.redirect });
  });

  it('externalTrafficPolicy Local without a local endpoint: drops new flows from outside', async () => {
    const lb = await withServices();
    addLocal(lb, []);
    const result = await lb.runUplink(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: EXTERNAL_IP, sport: 44000, dport: 8000 }));
    expect(result.retval).toBe(SHOT);
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ drop_no_backend: 1n });
  });

  it('drops new SNAT flows without a node address, but serves Local ones', async () => {
    const lb = await withServices({ config: false });
    addLocal(lb, [BACKENDS[0]!]);
    expect((await lb.runUplink(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: NODE, sport: 45000, dport: 30080 }))).retval).toBe(SHOT);
    expect(lb.flows()).toHaveLength(0);
    expect((await lb.runUplink(ipv4Packet({ proto: 'tcp', src: CLIENT, dst: EXTERNAL_IP, sport: 45000, dport: 8000 }))).retval).toBe(OK);
    expect(lb.nonZeroCounters()).toEqual({ drop_no_snat_addr: 1n, translated: 1n, ct_created: 1n, fib_miss: 1n });
  });

  it('passes ClusterIPs (pods only) and everything that is no frontend, untouched', async () => {
    const lb = await withServices();
    const frames = [
      ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 46000, dport: 80 }),
      ipv4Packet({ proto: 'tcp', src: CLIENT, dst: NODE, sport: 46000, dport: 22 }),
      ipv4Packet({ proto: 'udp', src: CLIENT, dst: NODE, sport: 46000, dport: 30080 }),
      ipv4Packet({ proto: 'tcp', src: CLIENT, dst: '192.0.2.2', sport: 46000, dport: 30080 }),
    ];
    for (const frame of frames) {
      const result = await lb.runUplink(frame);
      expect(result.retval).toBe(NEXT);
      expect(result.data).toEqual(frame);
    }
    expect(lb.flows()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_not_external: 1n, pass_no_service: 3n });
  });

  it('reverse-NATs a pod’s ClusterIP reply that comes back from a remote backend over the uplink', async () => {
    const lb = await withServices();
    const forward = await lb.run(ipv4Packet({ proto: 'tcp', src: POD, dst: VIP, sport: 47000, dport: 80, flags: TCP.SYN }));
    expect(forward.retval).toBe(OK);
    const backend = backendAt(parseIpv4Packet(forward.data).dst);
    const reply: Ipv4Spec = { proto: 'tcp', src: backend.address, dst: POD, sport: backend.port, dport: 47000, flags: TCP.SYN | TCP.ACK };
    const result = await lb.runUplink(ipv4Packet(reply));
    // A ClusterIP flow has no CT_F_REDIRECT: on into the stack, which routes it to the pod.
    expect(result.retval).toBe(OK);
    expect(result.data).toEqual(ipv4Packet({ ...reply, src: VIP, sport: 80 }));
    expect(lb.counters()).toMatchObject({ translated: 1n, rev_translated: 1n, fib_miss: 0n, fib_redirect: 0n });
  });

  it('counts every packet under exactly one outcome', async () => {
    const lb = await withServices();
    addLocal(lb, []);
    const sent = [
      ipv4Packet({ proto: 'tcp', src: CLIENT, dst: NODE, sport: 48000, dport: 30080 }),
      ipv4Packet({ proto: 'tcp', src: CLIENT, dst: EXTERNAL_IP, sport: 48000, dport: 8000 }),
      ipv4Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 48000, dport: 80 }),
      ipv4Packet({ proto: 'tcp', src: CLIENT, dst: NODE, sport: 48000, dport: 22 }),
    ];
    for (const frame of sent) await lb.runUplink(frame);
    const counters = lb.counters();
    const outcomes = LB_METRICS.filter((m) => !LB_EVENTS.has(m));
    expect(outcomes.reduce((sum, m) => sum + counters[m], 0n)).toBe(BigInt(sent.length));
  });
});
