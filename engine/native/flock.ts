// Holding flock(2) on an open fd, for the file locks ferry shares with
// other processes (host-local's IPAM store, the CNI's endpoint records).
import { native } from './binding.js';

/**
 * Runs fn holding flock on `fd` (exclusive or shared), and unlocks however
 * fn ends. Uncontended, the lock is taken at once without a pool thread;
 * only a holder elsewhere makes it wait in a blocking flock on the libuv
 * pool (callers queue their own process's holders first). An error taking
 * the lock goes through `lockError`; `path` names the file in errors.
 */
export async function withFlock<T>(fd: number, path: string, exclusive: boolean, fn: () => Promise<T>, lockError: (e: unknown) => unknown = (e) => e): Promise<T> {
  try {
    if (!native.tryFlock(fd, exclusive, path)) await native.flock(fd, exclusive, path);
  } catch (e) {
    throw lockError(e);
  }
  try {
    return await fn();
  } finally {
    // Closing the fd drops the lock anyway; unlocking first says so and cannot fail usefully.
    try {
      native.funlock(fd, path);
    } catch {
      /* the caller's close releases it */
    }
  }
}
