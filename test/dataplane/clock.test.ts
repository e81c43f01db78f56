// engine/dataplane/clock.ts: user space's reading of the programs' clock
// (lib/common.h lb_now(): jiffies in ns, not CLOCK_MONOTONIC).
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { datapathClock } from '../../engine/dataplane/clock.js';
import { bpfObject } from '../bpf/support.js';
import { isRoot } from '../support/netns.js';

const MS = 1_000_000n;
/** A tick at the slowest rate a kernel is built with (HZ=100), and then some. */
const SLACK = 20n * MS;

describe.skipIf(!isRoot)('the datapath clock (needs root: BPF_PROG_RUN)', () => {
  it('runs at the pace of CLOCK_MONOTONIC, and two measurements of it agree', async () => {
    const clock = await datapathClock(bpfObject('clock'));
    const start = { datapath: clock(), monotonic: process.hrtime.bigint() };
    await sleep(300);
    const again = await datapathClock(bpfObject('clock'));
    const datapathElapsed = again() - start.datapath;
    const monotonicElapsed = process.hrtime.bigint() - start.monotonic;
    expect(datapathElapsed).toBeGreaterThanOrEqual(monotonicElapsed - SLACK);
    expect(datapathElapsed).toBeLessThanOrEqual(monotonicElapsed + SLACK);
    // The offset each measurement found is the same, within a tick.
    const gap = again() - clock();
    expect(gap < 0n ? -gap : gap).toBeLessThanOrEqual(SLACK);
  });

  it('names the object when it cannot load it', async () => {
    // Not an object with pinned maps: without a pin root they would be pinned in /sys/fs/bpf itself.
    await expect(datapathClock('/nonexistent/clock.o')).rejects.toThrow(/\/nonexistent\/clock\.o/);
  });
});
