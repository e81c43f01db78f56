// The endpoint records' lock, one per network: flock(2) on `lock` in the
// network's records folder. CNI calls that change attachments (ADD, DEL, GC)
// hold it shared, so they still run side by side; the node daemon holds it
// exclusive while it hooks the recorded pods to the dataplane it has just
// pinned (plugin/daemon/pod-hooks.ts). An ADD is then either done with its
// record before the daemon reads the records, or looks for the dataplane
// after the daemon pinned it and hooks the pod itself; and a DEL never pulls
// a veth out from under the daemon while it hooks it.
//
// Within one process a reader-writer queue comes first, so that callers wait
// for this process's own exclusive holder here rather than in a blocking
// flock on a libuv pool thread (that holder needs the pool to finish; see
// ipam/lock.ts). Each holder opens its own fd: flock then excludes other
// processes, and shared holders share.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { withFlock } from '../../engine/native/flock.js';

export const RECORDS_LOCK_FILE = 'lock';

export type LockMode = 'shared' | 'exclusive';

interface Waiter {
  exclusive: boolean;
  go: () => void;
}

interface Gate {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

const gates = new Map<string, Gate>();

async function enter(key: string, exclusive: boolean): Promise<void> {
  let gate = gates.get(key);
  if (gate === undefined) gates.set(key, (gate = { readers: 0, writer: false, queue: [] }));
  const free = !gate.writer && gate.queue.length === 0 && (!exclusive || gate.readers === 0);
  if (free) {
    if (exclusive) gate.writer = true;
    else gate.readers++;
    return;
  }
  const g = gate;
  await new Promise<void>((go) => g.queue.push({ exclusive, go }));
}

function leave(key: string, exclusive: boolean): void {
  const gate = gates.get(key)!;
  if (exclusive) gate.writer = false;
  else gate.readers--;
  // First come, first served: a writer waits for the readers before it, and readers behind a writer wait for it.
  while (gate.queue.length > 0 && !gate.writer) {
    const next = gate.queue[0]!;
    if (next.exclusive && gate.readers > 0) break;
    gate.queue.shift();
    if (next.exclusive) gate.writer = true;
    else gate.readers++;
    next.go();
  }
  if (!gate.writer && gate.readers === 0 && gate.queue.length === 0) gates.delete(key);
}

/**
 * Runs fn holding the records lock of the network whose records are in
 * `dir`, shared or exclusive. `dir` is created when missing (mode 0700, as
 * writeEndpoint() makes it), unless `create` is false: then a missing `dir`
 * means there are no records to guard, and fn runs without the lock (DEL
 * and GC, which must not fail on state that was never made). Errors keep
 * the errno and name the path.
 */
export async function withRecordsLock<T>(dir: string, mode: LockMode, fn: () => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const path = join(dir, RECORDS_LOCK_FILE);
  const key = resolve(path);
  const exclusive = mode === 'exclusive';
  if (options.create === false && !existsSync(dir)) return fn();
  await enter(key, exclusive);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(path, 'a', 0o600);
    try {
      return await withFlock(fd, path, exclusive, fn);
    } finally {
      closeSync(fd);
    }
  } finally {
    leave(key, exclusive);
  }
}
