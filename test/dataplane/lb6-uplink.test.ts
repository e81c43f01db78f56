// from_uplink (build/bpf/lb.o) on IPv6 under BPF_PROG_TEST_RUN: traffic from
// outside the node to IPv6 NodePorts and external IPs, DNAT with or without
// SNAT to node_cfg.snat_addr6, port allocation from the range IPv4 uses
// too, replies through from_pod (local backend) and from_uplink (remote
// backend). Maps are filled and read only through engine/dataplane/layout.ts.
//
// A test run has no ingress interface, so the FIB lookup that would
// redirect a translated packet of an external frontend's flow finds no
// device: the programs hand it to the stack (TC_ACT_OK) and count fib_miss.
import { describe, expect, it } from 'vitest';

import { CT_FLAGS, CT_STATE, type Ct4Key, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, NEXT, OK, SHOT } from './lb-fixture.js';
import { ipv4Packet, parseIpv4Packet } from './packets.js';
import { type Ipv6Spec, ipv6Packet, parseIpv6Packet, TCP } from './packets6.js';

const NODE = '2001:db8::1';
const CLIENT = '2001:db8:1::7';
const EXTERNAL_IP = '2001:db8:2::10';
const VIP = 'fd00:10:96::10';
const BACKENDS = [
  { id: 1, address: 'fd00:10:244::5', port: 8080 },
  { id: 2, address: 'fd00:10:244::6', port: 8080 },
];
const PORTS = { snatPortMin: 61000, snatPortMax: 65535 };
const NODE_PORT = { address: NODE, port: 30080 };
const REV_NAT = { nodePort: 3, externalIp: 4, clusterIp: 5, local: 6 };
const SNAT_REDIRECT = CT_FLAGS.snat | CT_FLAGS.redirect;

async function withServices(options: { snatAddress6?: string; proto?: 'tcp' | 'udp' } = {}): Promise<LbFixture> {
  const lb = await loadLb();
  const proto = options.proto ?? 'tcp';
  lb.setNodeConfig({ snatAddress: '192.0.2.1', ...PORTS, snatAddress6: options.snatAddress6 ?? NODE });
  lb.addService6({ ...NODE_PORT, proto, revNatIndex: REV_NAT.nodePort, backends: BACKENDS, flags: SVC_FLAGS.external });
  lb.addService6({ address: EXTERNAL_IP, port: 80, proto, revNatIndex: REV_NAT.externalIp, backends: BACKENDS, flags: SVC_FLAGS.external });
  lb.addService6({ address: VIP, port: 80, proto, revNatIndex: REV_NAT.clusterIp, backends: BACKENDS });
  return lb;
}

/** An externalTrafficPolicy Local frontend as the reconciler writes it: this node's backends outside, every backend inside. */
function addLocal(lb: LbFixture, local: typeof BACKENDS): void {
  lb.addService6({ address: EXTERNAL_IP, port: 8000, proto: 'tcp', revNatIndex: REV_NAT.local, backends: local, flags: SVC_FLAGS.external | SVC_FLAGS.local });
  lb.addService6({ address: EXTERNAL_IP, port: 8000, proto: 'tcp', revNatIndex: REV_NAT.local, backends: BACKENDS, flags: SVC_FLAGS.external, scope: 'internal' });
}

function backendAt(address: string): (typeof BACKENDS)[number] {
  const b = BACKENDS.find((x) => x.address === address);
  if (!b) throw new Error(`${address} is no backend`);
  return b;
}

interface Snat {
  backend: (typeof BACKENDS)[number];
  port: number;
}

/** Runs `spec` through from_uplink; expects DNAT to a backend and SNAT to NODE:port, nothing else changed. */
async function expectSnat(lb: LbFixture, spec: Ipv6Spec): Promise<Snat> {
  const result = await lb.runUplink(ipv6Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv6Packet(result.data);
  const backend = backendAt(out.dst);
  expect(out).toMatchObject({ src: NODE, dport: backend.port, l4ChecksumValid: true });
  expect(out.sport).toBeGreaterThanOrEqual(PORTS.snatPortMin);
  expect(out.sport).toBeLessThanOrEqual(PORTS.snatPortMax);
  expect(result.data).toEqual(ipv6Packet({ ...spec, src: NODE, sport: out.sport, dst: backend.address, dport: backend.port }));
  return { backend, port: out.sport };
}

/** Runs a reply through `run`; expects it to come from `frontend` and go to `client`, checksum valid. */
async function expectReply(run: (frame: Buffer) => Promise<{ retval: number; data: Buffer }>, spec: Ipv6Spec, frontend: { address: string; port: number }, client: { address: string; port: number }): Promise<void> {
  const result = await run(ipv6Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv6Packet(result.data);
  expect(out).toMatchObject({ src: frontend.address, sport: frontend.port, dst: client.address, dport: client.port, l4ChecksumValid: true });
  expect(result.data).toEqual(ipv6Packet({ ...spec, src: frontend.address, sport: frontend.port, dst: client.address, dport: client.port }));
}

function forwardKey(sport: number, frontend = NODE_PORT, client = CLIENT): Ct4Key {
  return { saddr: client, daddr: frontend.address, sport, dport: frontend.port, proto: 'tcp', dir: 'forward' };
}

function reverseKey(backend: { address: string; port: number }, to: string, dport: number): Ct4Key {
  return { saddr: backend.address, daddr: to, sport: backend.port, dport, proto: 'tcp', dir: 'reverse' };
}

describe.skipIf(!isRoot)('from_uplink: IPv6 Services from outside the node (needs root: BPF_PROG_TEST_RUN)', () => {
  it('DNATs a SYN to a NodePort and SNATs it to snat_addr6 and a port of the range; both entries know the flow', async () => {
    const lb = await withServices();
    const { backend, port } = await expectSnat(lb, { proto: 'tcp', src: CLIENT, dst: NODE, sport: 40000, dport: 30080, flags: TCP.SYN });
    expect(lb.flows6()).toHaveLength(2);
    expect(lb.flow6(forwardKey(40000))).toMatchObject({
      backendId: backend.id,
      revNatIndex: REV_NAT.nodePort,
      state: CT_STATE.new,
      tcpFlags: TCP.SYN,
      flags: SNAT_REDIRECT,
      natAddress: NODE,
      natPort: port,
    });
    expect(lb.flow6(reverseKey(backend, NODE, port))).toMatchObject({
      backendId: backend.id,
      revNatIndex: REV_NAT.nodePort,
      state: CT_STATE.new,
      flags: SNAT_REDIRECT,
      natAddress: CLIENT,
      natPort: 40000,
    });
    expect(lb.nonZeroCounters()).toEqual({ translated: 1n, ct_created: 1n, fib_miss: 1n });
  });

  it('undoes both translations on replies: through from_pod (a local backend) and from_uplink (a remote one)', async () => {
    const lb = await withServices();
    const syn: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: NODE, sport: 40001, dport: 30080, flags: TCP.SYN };
    const { backend, port } = await expectSnat(lb, syn);
    const reply: Ipv6Spec = { proto: 'tcp', src: backend.address, dst: NODE, sport: backend.port, dport: port, flags: TCP.SYN | TCP.ACK };
    await expectReply((f) => lb.run(f), reply, NODE_PORT, { address: CLIENT, port: 40001 });
    await expectReply((f) => lb.runUplink(f), { ...reply, flags: TCP.ACK, payload: Buffer.from('pong') }, NODE_PORT, { address: CLIENT, port: 40001 });
    expect(await expectSnat(lb, { ...syn, flags: TCP.ACK })).toEqual({ backend, port });
    for (const key of [forwardKey(40001), reverseKey(backend, NODE, port)]) {
      expect(lb.flow6(key)).toMatchObject({ state: CT_STATE.established, flags: SNAT_REDIRECT });
    }
    expect(lb.nonZeroCounters()).toEqual({ translated: 2n, rev_translated: 2n, ct_created: 1n, fib_miss: 4n });
  });

  it('UDP to an external IP, both ways', async () => {
    const lb = await withServices({ proto: 'udp' });
    const query: Ipv6Spec = { proto: 'udp', src: CLIENT, dst: EXTERNAL_IP, sport: 5353, dport: 80, payload: Buffer.from('query') };
    const { backend, port } = await expectSnat(lb, query);
    await expectReply((f) => lb.run(f), { proto: 'udp', src: backend.address, dst: NODE, sport: backend.port, dport: port, payload: Buffer.from('an answer') }, { address: EXTERNAL_IP, port: 80 }, { address: CLIENT, port: 5353 });
  });

  it('gives every flow its own reply tuple: 300 flows, from one client port of several clients', async () => {
    const lb = await withServices();
    const tuples = new Set<string>();
    const flows: Array<{ spec: Ipv6Spec; snat: Snat }> = [];
    for (let i = 0; i < 300; i++) {
      const spec: Ipv6Spec = { proto: 'tcp', src: `2001:db8:1::${1 + (i % 3)}`, dst: NODE, sport: 41000 + Math.floor(i / 3), dport: 30080 };
      const snat = await expectSnat(lb, spec);
      tuples.add(`[${snat.backend.address}]:${snat.backend.port} -> [${NODE}]:${snat.port}`);
      flows.push({ spec, snat });
    }
    expect(tuples.size).toBe(300);
    for (const { spec, snat } of flows.slice(0, 20)) expect(await expectSnat(lb, { ...spec, flags: TCP.ACK })).toEqual(snat);
    expect(lb.flows6()).toHaveLength(600);
  });

  it('shares the port range with IPv4 SNAT: both families’ flows take ports from it', async () => {
    const lb = await withServices();
    lb.addService({ address: '192.0.2.1', port: 30080, proto: 'tcp', revNatIndex: 9, backends: [{ id: 5, address: '10.244.0.5', port: 8080 }], flags: SVC_FLAGS.external });
    const v4 = await lb.runUplink(ipv4Packet({ proto: 'tcp', src: '203.0.113.7', dst: '192.0.2.1', sport: 40002, dport: 30080 }));
    expect(v4.retval).toBe(OK);
    const v4port = parseIpv4Packet(v4.data).sport;
    expect(v4port).toBeGreaterThanOrEqual(PORTS.snatPortMin);
    await expectSnat(lb, { proto: 'tcp', src: CLIENT, dst: NODE, sport: 40002, dport: 30080 });
    expect(lb.flows()).toHaveLength(2);
    expect(lb.flows6()).toHaveLength(2);
  });

  it('drops new Cluster-policy flows while snat_addr6 is ::, as IPv4 does without an address', async () => {
    const lb = await withServices({ snatAddress6: '::' });
    const result = await lb.runUplink(ipv6Packet({ proto: 'tcp', src: CLIENT, dst: NODE, sport: 40003, dport: 30080 }));
    expect(result.retval).toBe(SHOT);
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ drop_no_snat_addr: 1n });
  });

  it('Local keeps the client’s address, to this node’s endpoints only; none here drops', async () => {
    const lb = await withServices();
    addLocal(lb, [BACKENDS[0]!]);
    const spec: Ipv6Spec = { proto: 'tcp', src: CLIENT, dst: EXTERNAL_IP, sport: 40004, dport: 8000 };
    const result = await lb.runUplink(ipv6Packet(spec));
    expect(result.retval).toBe(OK);
    expect(result.data).toEqual(ipv6Packet({ ...spec, dst: BACKENDS[0]!.address, dport: BACKENDS[0]!.port }));
    expect(lb.flow6(forwardKey(40004, { address: EXTERNAL_IP, port: 8000 }))).toMatchObject({ backendId: 1, flags: CT_FLAGS.redirect, natAddress: '::', natPort: 0 });
    expect(lb.flow6(reverseKey(BACKENDS[0]!, CLIENT, 40004))).toMatchObject({ flags: CT_FLAGS.redirect });
    await expectReply((f) => lb.run(f), { proto: 'tcp', src: BACKENDS[0]!.address, dst: CLIENT, sport: 8080, dport: 40004, flags: TCP.SYN | TCP.ACK }, { address: EXTERNAL_IP, port: 8000 }, { address: CLIENT, port: 40004 });

    // From a pod, the same frontend balances over every endpoint (the internal scope), without SNAT.
    const fromPod = await lb.run(ipv6Packet({ proto: 'tcp', src: 'fd00:10:244::20', dst: EXTERNAL_IP, sport: 40005, dport: 8000 }));
    expect(fromPod.retval).toBe(OK);
    expect(parseIpv6Packet(fromPod.data).src).toBe('fd00:10:244::20');

    addLocal(lb, []);
    expect((await lb.runUplink(ipv6Packet({ ...spec, sport: 40006 }))).retval).toBe(SHOT);
    expect(lb.counters().drop_no_backend).toBe(1n);
  });

  it('passes a ClusterIP from outside (served to pods only) and what is no service', async () => {
    const lb = await withServices();
    for (const frame of [ipv6Packet({ proto: 'tcp', src: CLIENT, dst: VIP, sport: 40007, dport: 80 }), ipv6Packet({ proto: 'tcp', src: CLIENT, dst: NODE, sport: 40007, dport: 22 })]) {
      const result = await lb.runUplink(frame);
      expect(result.retval).toBe(NEXT);
      expect(result.data).toEqual(frame);
    }
    expect(lb.flows6()).toHaveLength(0);
    expect(lb.nonZeroCounters()).toEqual({ pass_not_external: 1n, pass_no_service: 1n });
  });

  it('drops a packet of an external frontend’s flow whose hop limit runs out instead of forwarding it', async () => {
    const lb = await withServices();
    const result = await lb.runUplink(ipv6Packet({ proto: 'tcp', src: CLIENT, dst: NODE, sport: 40008, dport: 30080, hopLimit: 1 }));
    expect(result.retval).toBe(SHOT);
    expect(lb.counters()).toMatchObject({ drop_ttl: 1n, ct_created: 1n, translated: 0n });
    // A ClusterIP flow's goes to the stack, which answers it.
    const pod = await lb.run(ipv6Packet({ proto: 'tcp', src: 'fd00:10:244::20', dst: VIP, sport: 40009, dport: 80, hopLimit: 1 }));
    expect(pod.retval).toBe(OK);
  });
});
