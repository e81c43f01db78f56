// What the program-cost bench runs through BPF_PROG_RUN, and how.
//
// BPF_PROG_RUN with `repeat` runs the program again and again on one skb,
// as the previous run left it, and times the loop in the kernel. Two things
// follow. A DNAT rewrites the packet, so the next run sees a packet to the
// backend, not to the Service. And delivering into a local pod takes the
// TTL down by one, as a router does, so after TTL − 1 runs the packet would
// take another path. Hence every case is timed in calls of BATCH runs
// (frames start with TTL 255), many calls per case, and:
//
//  - established: two Services that are each other's backend (A:80 → B:8080,
//    B:8080 → A:80), both addresses local pods, and a client whose flows to
//    both are tracked and established. Every run is an established flow's
//    packet to a ClusterIP: DNATed (address, port, checksums), delivered
//    into the backend pod with bpf_redirect_peer(), and leaves the next run
//    the other flow's packet.
//  - pod→pod: a packet to a local pod, no Service, nothing rewritten but
//    the MACs and TTL, delivered with bpf_redirect_peer().
//  - new flow (random, Maglev): a ring: one Service with BATCH ports on an
//    address that is also a local pod's, each port's three backends that
//    address at the next port. One call's runs are one client's SYN going
//    round the ring: BATCH new flows (conntrack entries written, one of
//    three backends picked), each from a tuple never seen before.
//    Conntrack is emptied (untimed) before its fill passes a third.
// Each case reads the datapath's counters before and after, and fails
// unless exactly the expected outcomes moved: a figure is known to be the
// path it names. The kernel reports whole ns per run, averaged over a call;
// the figure is the median over the calls.
import type { BpfMap, BpfProgram } from '../../engine/bpf/index.js';
import { ipv4Packet, TCP } from '../../test/dataplane/packets.js';
import { median } from '../support/stats.js';
import { emptyMap, moved, type LbUnderTest, type ServiceSpec } from './fixture.js';

export type CaseKey = 'established' | 'new-random' | 'new-maglev' | 'pod-to-pod';

export interface CaseResult {
  key: CaseKey;
  /** ns per packet: the median over the calls. */
  ns: number;
  /** Packets timed (calls × BATCH). */
  packets: number;
  /** Counters that moved. */
  counters: Record<string, number>;
}

export interface Reference {
  /** nop: ns per run, what the test-run loop adds to each. */
  nop: number;
  /** The floor program. */
  floor: number;
  /** One new conntrack-like entry per run (floor_ct_insert). */
  ctInsert: number;
  /** The same into a small preallocated plain hash (floor_hash_insert). */
  hashInsert: number;
}

/** Runs per BPF_PROG_RUN call: a frame's TTL (255) lasts 254 deliveries. */
export const BATCH = 250;
const TTL = 255;
const CLIENT = '10.244.0.9';
const A = { address: '10.96.0.10', port: 80 };
const B = { address: '10.96.0.11', port: 8080 };
export const POD = { address: '10.244.0.50', port: 8080 };
/** The new-flow rings, one Service each: 10.96.<net>.1, ports RING_PORT…RING_PORT + BATCH − 1. */
const RINGS = { 'new-random': { address: '10.96.1.1', maglev: false }, 'new-maglev': { address: '10.96.2.1', maglev: true } } as const;
const RING_PORT = 1000;
const ringPort = (n: number) => RING_PORT + (n % BATCH);

/** A ring's frontends (one per port of its Service). */
function ringFrontends(address: string, maglev: boolean, firstRevNat: number, firstBackendId: number): ServiceSpec[] {
  return Array.from({ length: BATCH }, (_, n) => ({
    address,
    port: ringPort(n),
    revNatIndex: firstRevNat + n,
    backends: [0, 1, 2].map((slot) => ({ id: firstBackendId + 3 * n + slot, address, port: ringPort(n + 1) })),
    maglev,
  }));
}

/** The measured frontends: A, B and both rings'. */
export const FRONTENDS: ServiceSpec[] = [
  { ...A, revNatIndex: 1, backends: [{ id: 1, ...B }] },
  { ...B, revNatIndex: 2, backends: [{ id: 2, ...A }] },
  ...ringFrontends(RINGS['new-random'].address, false, 10, 10),
  ...ringFrontends(RINGS['new-maglev'].address, true, 10 + BATCH, 10 + 3 * BATCH),
];
/** Addresses the fixture makes local pods: every backend's, and POD's. */
export const LOCAL_PODS = [...new Set([POD.address, ...FRONTENDS.flatMap((s) => s.backends.map((b) => b.address))])];
/** How many Services the measured ones are (A, B, two rings): the scale counts Services. */
export const MEASURED_SERVICES = 4;

const tcp = (src: string, sport: number, dst: { address: string; port: number }, flags: number) =>
  ipv4Packet({ proto: 'tcp', src, dst: dst.address, sport, dport: dst.port, flags, ttl: TTL });

function expectMoved(what: string, got: Record<string, number>, want: Record<string, number>): void {
  if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(want).sort())) {
    throw new Error(`${what}: the datapath's counters moved ${JSON.stringify(got)}, expected ${JSON.stringify(want)}: from_pod took another path`);
  }
}

/** `calls` calls of BATCH runs; `frame(i)` is call i's frame, `between(i)` runs untimed before it. */
async function timeCalls(program: BpfProgram, calls: number, frame: (i: number) => Buffer, between?: (i: number) => void): Promise<number> {
  const ns: number[] = [];
  for (let i = 0; i < calls; i++) {
    between?.(i);
    ns.push((await program.testRun({ data: frame(i), repeat: BATCH })).duration);
  }
  return median(ns);
}

async function timeCase(lb: LbUnderTest, key: CaseKey, calls: number, frame: (i: number) => Buffer, want: Record<string, number>, between?: (i: number) => void): Promise<CaseResult> {
  const before = lb.counters();
  const ns = await timeCalls(lb.program, calls, frame, between);
  const counters = moved(before, lb.counters());
  expectMoved(key, counters, want);
  return { key, ns, packets: calls * BATCH, counters };
}

/** The reference programs (reference.bpf.c), and the maps their inserts fill (emptied as conntrack is in the new-flow cases). */
export async function measureReference(
  programs: Record<'nop' | 'floor' | 'ctInsert' | 'hashInsert', BpfProgram>,
  maps: Record<'ctInsert' | 'hashInsert', BpfMap>,
  calls: number,
): Promise<Reference> {
  const frame = tcp(CLIENT, 40000, POD, TCP.ACK);
  const f = await programs.floor.testRun({ data: frame });
  if (f.retval !== 7) throw new Error(`the floor program returned ${f.retval}, not TC_ACT_REDIRECT (7): its peer entry is missing`);
  const inserts = async (key: 'ctInsert' | 'hashInsert') => {
    const map = maps[key];
    const every = clearEvery(map.maxEntries, 1);
    emptyMap(map);
    const ns = await timeCalls(programs[key], calls, () => frame, (i) => (i > 0 && i % every === 0 ? emptyMap(map) : undefined));
    if ([...map.keys()].length === 0) throw new Error(`the ${key} reference program wrote no entries`);
    emptyMap(map);
    return ns;
  };
  return {
    nop: await timeCalls(programs.nop, calls, () => frame),
    floor: await timeCalls(programs.floor, calls, () => frame),
    ctInsert: await inserts('ctInsert'),
    hashInsert: await inserts('hashInsert'),
  };
}

/** Calls between emptying a table of `capacity` written `perRun` entries a run: its fill stays below a third. */
const clearEvery = (capacity: number, perRun: number) => Math.max(1, Math.floor(capacity / 3 / (perRun * BATCH)));

/** The established pair's flows, created and established (SYN, then ACK, both ways round). */
async function establish(lb: LbUnderTest): Promise<void> {
  await lb.program.testRun({ data: tcp(CLIENT, 40000, A, TCP.SYN), repeat: 2 });
  await lb.program.testRun({ data: tcp(CLIENT, 40000, A, TCP.ACK), repeat: 2 });
}

/**
 * Every case, `calls` calls of BATCH runs each. New flows: call i's client
 * walks 10.245.0.0/16 and ports 10000…59999, so no tuple comes twice.
 */
export async function measureCases(lb: LbUnderTest, calls: number): Promise<CaseResult[]> {
  const n = calls * BATCH;
  const results: CaseResult[] = [];
  lb.clearConntrack();
  await establish(lb);
  results.push(await timeCase(lb, 'established', calls, () => tcp(CLIENT, 40000, A, TCP.ACK), { translated: n, peer_redirect: n }));
  results.push(await timeCase(lb, 'pod-to-pod', calls, () => tcp(CLIENT, 40000, POD, TCP.ACK), { pass_no_service: n, peer_redirect: n }));

  const every = clearEvery(lb.conntrackCapacity, 2);
  for (const key of ['new-random', 'new-maglev'] as const) {
    lb.clearConntrack();
    const first = { address: RINGS[key].address, port: ringPort(0) };
    const frame = (i: number) => tcp(`10.245.${(i >> 8) & 255}.${i & 255}`, 10_000 + (i % 50_000), first, TCP.SYN);
    const between = (i: number) => (i > 0 && i % every === 0 ? lb.clearConntrack() : undefined);
    results.push(await timeCase(lb, key, calls, frame, { translated: n, ct_created: n, peer_redirect: n }, between));
  }
  lb.clearConntrack();
  return results;
}
