// What the program-cost bench runs through BPF_PROG_RUN, and how.
//
// BPF_PROG_RUN with `repeat` runs the program again on the same skb, as the
// previous run left it: a DNAT rewrites the packet, so the second run would
// see a packet to the backend, not to the Service. Hence:
//
//  - established: two Services that are each other's backend (A:80 → B:8080,
//    B:8080 → A:80) and a client whose flows to both are tracked and
//    established. Every run is an established flow's packet to a ClusterIP,
//    DNATed with address, port and checksum rewrites, and leaves the next
//    run the other flow's packet. Timed with `repeat`.
//  - pod→pod: a packet to a pod address, no Service, nothing rewritten;
//    timed with `repeat`.
//  - new flow (random, Maglev): a run that creates a conntrack entry cannot
//    be repeated on its own output. Each run is a single BPF_PROG_RUN
//    (repeat 1) of a SYN with a tuple never seen before; conntrack is
//    emptied (untimed) every 10,000 flows, so its fill stays below a third.
//    A single run costs more than a run under `repeat`: the timing of the
//    run itself, and the program's code and maps gone cold in between. The
//    established packet is timed both ways in the same round; the
//    difference (the single-run penalty) is subtracted from the new flows'
//    median. (Their penalty is likely somewhat larger: more code and
//    fresh conntrack buckets; the estimate errs high, not low.)
// Each case reads the datapath's counters before and after, and fails
// unless exactly the expected outcomes moved: a figure is known to be the
// path it names.
import type { BpfProgram } from '../../engine/bpf/index.js';
import { ipv4Packet, TCP } from '../../test/dataplane/packets.js';
import { median, quantile } from '../support/stats.js';
import { moved, type LbUnderTest, type ServiceSpec } from './fixture.js';

type CaseKey = 'established' | 'new-random' | 'new-maglev' | 'pod-to-pod';

export interface CaseResult {
  key: CaseKey | 'established-single';
  /** ns per packet, counted as under `repeat` (see above); for established-single the single-run penalty. */
  ns: number;
  method: string;
  /** Single runs: their median, 10th and 90th percentiles (ns), before the correction. */
  single?: { n: number; p10: number; p50: number; p90: number };
  /** Counters that moved. */
  counters: Record<string, number>;
}

export interface Reference {
  /** nop under `repeat`: ns per run, what the test-run loop adds to each. */
  nop: number;
  /** The floor program under `repeat`. */
  floor: number;
}

const CLIENT = '10.244.0.9';
const A = { address: '10.96.0.10', port: 80 };
const B = { address: '10.96.0.11', port: 8080 };
const RANDOM = { address: '10.96.0.20', port: 80 };
const MAGLEV = { address: '10.96.0.30', port: 80 };
export const POD = { address: '10.244.0.50', port: 8080 };
/** How many Services the measured ones are: the scale counts them. */
export const MEASURED_SERVICES = 4;
const CT_CLEAR_EVERY = 10_000;

const backends = (firstId: number, prefix: string) => [1, 2, 3].map((n, i) => ({ id: firstId + i, address: `${prefix}.${n}`, port: 8080 }));

export const SERVICES: ServiceSpec[] = [
  { ...A, revNatIndex: 1, backends: [{ id: 1, ...B }] },
  { ...B, revNatIndex: 2, backends: [{ id: 2, ...A }] },
  { ...RANDOM, revNatIndex: 3, backends: backends(3, '10.244.1') },
  { ...MAGLEV, revNatIndex: 4, backends: backends(6, '10.244.2'), maglev: true },
];

const tcp = (src: string, sport: number, dst: { address: string; port: number }, flags: number) =>
  ipv4Packet({ proto: 'tcp', src, dst: dst.address, sport, dport: dst.port, flags });

function expectMoved(what: string, got: Record<string, number>, want: Record<string, number>): void {
  if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(want).sort())) {
    throw new Error(`${what}: the datapath's counters moved ${JSON.stringify(got)}, expected ${JSON.stringify(want)}: from_pod took another path`);
  }
}

async function repeated(lb: LbUnderTest, frame: Buffer, repeat: number, want: (n: number) => Record<string, number>, what: string): Promise<{ ns: number; counters: Record<string, number> }> {
  const before = lb.counters();
  const r = await lb.program.testRun({ data: frame, repeat });
  const counters = moved(before, lb.counters());
  expectMoved(what, counters, want(repeat));
  return { ns: r.duration, counters };
}

async function singles(program: BpfProgram, n: number, frame: (i: number) => Buffer, between?: (i: number) => void): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    between?.(i);
    out.push((await program.testRun({ data: frame(i) })).duration);
  }
  return out;
}

const spread = (xs: number[]) => ({ n: xs.length, p10: quantile(xs, 0.1), p50: median(xs), p90: quantile(xs, 0.9) });

/** The nop and floor programs of reference.bpf.c. */
export async function measureReference(nop: BpfProgram, floor: BpfProgram, repeat: number): Promise<Reference> {
  const frame = tcp(CLIENT, 40000, POD, TCP.ACK);
  const n = await nop.testRun({ data: frame, repeat });
  const f = await floor.testRun({ data: frame, repeat });
  if (f.retval !== 7) throw new Error(`the floor program returned ${f.retval}, not TC_ACT_REDIRECT (7): its peer entry is missing`);
  return { nop: n.duration, floor: f.duration };
}

/** The established pair's flows, created and established (SYN, then ACK, both ways round). */
async function establish(lb: LbUnderTest): Promise<void> {
  await lb.program.testRun({ data: tcp(CLIENT, 40000, A, TCP.SYN), repeat: 2 });
  await lb.program.testRun({ data: tcp(CLIENT, 40000, A, TCP.ACK), repeat: 2 });
}

export async function measureCases(lb: LbUnderTest, repeat: number, singleRuns: number): Promise<CaseResult[]> {
  const results: CaseResult[] = [];

  lb.clearConntrack();
  await establish(lb);
  const est = await repeated(lb, tcp(CLIENT, 40000, A, TCP.ACK), repeat, (n) => ({ translated: n }), 'established');
  results.push({ key: 'established', ns: est.ns, method: `repeat ${repeat}`, counters: est.counters });

  const estFrame = tcp(CLIENT, 40000, A, TCP.ACK);
  let before = lb.counters();
  const estSingles = await singles(lb.program, singleRuns, () => estFrame);
  let counters = moved(before, lb.counters());
  expectMoved('established, single runs', counters, { translated: singleRuns });
  const penalty = median(estSingles) - est.ns;
  results.push({ key: 'established-single', ns: penalty, method: `${singleRuns} single runs: median − the repeat figure`, single: spread(estSingles), counters });

  const pod = await repeated(lb, tcp(CLIENT, 40000, POD, TCP.ACK), repeat, (n) => ({ pass_no_service: n }), 'pod→pod');
  results.push({ key: 'pod-to-pod', ns: pod.ns, method: `repeat ${repeat}`, counters: pod.counters });

  for (const [key, vip] of [['new-random', RANDOM], ['new-maglev', MAGLEV]] as const) {
    lb.clearConntrack();
    // A tuple never seen before per run: the client's address and port walk a /16 and 50,000 ports.
    const frame = (i: number) => tcp(`10.245.${(i / 50_000) >> 8}.${Math.floor(i / 50_000) & 255}`, 10_000 + (i % 50_000), vip, TCP.SYN);
    before = lb.counters();
    const xs = await singles(lb.program, singleRuns, frame, (i) => {
      if (i > 0 && i % CT_CLEAR_EVERY === 0) lb.clearConntrack();
    });
    counters = moved(before, lb.counters());
    expectMoved(key, counters, { translated: singleRuns, ct_created: singleRuns });
    results.push({ key, ns: median(xs) - penalty, method: `${singleRuns} single runs: median − the single-run penalty`, single: spread(xs), counters });
  }
  lb.clearConntrack();
  return results;
}
