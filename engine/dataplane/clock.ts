// The datapath's clock as user space reads it. Conntrack, affinity, SNAT
// and fragment records hold lb_now() times (bpf/lib/common.h): jiffies in
// ns, which run with CLOCK_MONOTONIC but from a start of their own. So
// whoever compares a record's time with "now" (conntrack GC, the CLI's
// ages and flushes, tests) must take now from this clock, not from
// process.hrtime().
//
// datapathClock() runs bpf/clock.c's program a few times with BPF_PROG_RUN,
// each between two process.hrtime() readings, and keeps the offset of the
// tightest pair: the clock it returns is process.hrtime() plus that offset,
// synchronous and a syscall cheaper than running the program each time.
// The offset holds for as long as the kernel runs (jiffies are advanced from
// the same timekeeping CLOCK_MONOTONIC is), within one tick (1–10 ms).
import { BpfObject } from '../bpf/index.js';
import { bpfObjectPath } from './paths.js';

/** The datapath's now, in ns (lb_now()'s scale and start). */
export type Clock = () => bigint;

export const CLOCK_OBJECT_FILE = 'clock.o';
const PROGRAM = 'clock_now';
/** Runs of the probe; the one with the shortest hrtime window wins. */
const SAMPLES = 5;
/** An Ethernet header's worth: what BPF_PROG_RUN wants of a tc program's frame, and room for the 8 bytes. */
const FRAME = 14;

/** Measures the datapath's clock against process.hrtime() (needs CAP_BPF, as every map read does). */
export async function datapathClock(objectPath = bpfObjectPath(CLOCK_OBJECT_FILE)): Promise<Clock> {
  const collection = await BpfObject.open(objectPath).load();
  try {
    const program = collection.program(PROGRAM);
    let best: { window: bigint; offset: bigint } | undefined;
    for (let i = 0; i < SAMPLES; i++) {
      const before = process.hrtime.bigint();
      const run = await program.testRun({ data: Buffer.alloc(FRAME) });
      const after = process.hrtime.bigint();
      if (run.retval !== 0) throw new Error(`${objectPath}: ${PROGRAM} returned ${run.retval}: it could not write the time into its frame`);
      const offset = run.data.readBigUInt64LE(0) - (before + after) / 2n;
      if (best === undefined || after - before < best.window) best = { window: after - before, offset };
    }
    const { offset } = best!;
    return () => process.hrtime.bigint() + offset;
  } finally {
    collection.close();
  }
}
