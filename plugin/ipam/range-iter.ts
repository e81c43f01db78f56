// host-local's round robin over one range set: start just after the last IP
// reserved in the set (or at the first range's start), walk each range to
// its end, go on to the next range, wrap from the last range to the first,
// and stop on coming back to the start. Gateways are skipped.
import type { ResolvedRange, ResolvedRangeSet } from './config.js';

export interface Candidate {
  range: ResolvedRange;
  value: bigint;
}

/**
 * Yields every allocatable address of the set once, in round-robin order.
 * Lazy: the caller stops at the first free one, so a huge IPv6 range costs
 * only as many steps as there are taken addresses in the way.
 */
export function* roundRobin(set: ResolvedRangeSet, lastReserved: bigint | undefined): Generator<Candidate> {
  const { ranges } = set;
  const gateways = new Set(ranges.map((r) => r.gateway));
  const next = (i: number, v: bigint): [number, bigint] => {
    if (v < ranges[i]!.last) return [i, v + 1n];
    const j = (i + 1) % ranges.length;
    return [j, ranges[j]!.first];
  };

  let i = 0;
  let v = ranges[0]!.first;
  const holder = lastReserved === undefined ? -1 : ranges.findIndex((r) => lastReserved >= r.first && lastReserved <= r.last);
  if (holder >= 0) [i, v] = next(holder, lastReserved!);

  const [startI, startV] = [i, v];
  do {
    if (!gateways.has(v)) yield { range: ranges[i]!, value: v };
    [i, v] = next(i, v);
  } while (i !== startI || v !== startV);
}
