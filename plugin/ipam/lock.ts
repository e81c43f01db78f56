// The store's lock: flock(LOCK_EX) on a `lock` file in the store directory,
// the same file host-local locks, so ferry and host-local exclude each other.
import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';

import { withFlock } from '../../engine/native/flock.js';
import { IpamStoreError } from './errors.js';

// Callers of one lock path in this process wait here before they wait in
// flock. The blocking flock occupies a libuv pool thread (4 by default); were
// several callers blocked in flock at once, the holder's own file I/O, which
// needs the same pool, could starve and never release the lock. With this
// queue each process has at most one thread waiting per lock path, and it
// waits only for other processes. Each holder still opens its own fd, so
// the flock itself excludes other processes and other opens.
const queues = new Map<string, Promise<void>>();

async function inTurn<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = queues.get(key) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((settle) => (done = settle));
  const tail = before.then(() => mine);
  queues.set(key, tail);
  await before;
  try {
    return await fn();
  } finally {
    done();
    if (queues.get(key) === tail) queues.delete(key);
  }
}

/** Runs fn holding an exclusive flock on `path` (created when missing); released however fn ends. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  return inTurn(resolve(path), async () => {
    let fd: number;
    try {
      fd = openSync(path, 'a', 0o644);
    } catch (e) {
      throw new IpamStoreError('open', path, e);
    }
    try {
      // The queue above serializes this process: only another process's holder makes us wait.
      return await withFlock(fd, path, true, fn, (e) => new IpamStoreError('flock', path, e));
    } finally {
      closeSync(fd);
    }
  });
}
