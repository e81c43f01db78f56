// The number of possible CPUs, which sizes every per-CPU map value: the
// kernel copies round_up(value_size, 8) bytes for each possible CPU.
import { readFileSync } from 'node:fs';

const POSSIBLE = '/sys/devices/system/cpu/possible';

/** Counts the CPUs in a kernel cpu list such as "0-3,8-11" (what libbpf does). */
export function countCpuList(list: string): number {
  let count = 0;
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const [from, to = from] = part.split('-');
    const first = Number.parseInt(from ?? '', 10);
    const last = Number.parseInt(to ?? '', 10);
    if (Number.isNaN(first) || Number.isNaN(last) || last < first) {
      throw new Error(`cannot parse cpu list ${JSON.stringify(list)}`);
    }
    count += last - first + 1;
  }
  return count;
}

let cached: number | undefined;

/** libbpf_num_possible_cpus(), read once. */
export function possibleCpus(): number {
  cached ??= countCpuList(readFileSync(POSSIBLE, 'utf8'));
  return cached;
}
