// Pinning: giving a map, program or link fd a name on bpffs so it outlives
// the fd, and getting a new fd for a pinned name.
import { unlinkSync } from 'node:fs';

import { native } from '../native/binding.js';
import { wrapNative } from './errors.js';
import { checkInteger, checkString, FD_MAX } from './validate.js';

/** Pins `fd` at `path` (on bpffs; the parent directory must exist). */
export function pinFd(fd: number, path: string, label: string): void {
  checkInteger('fd', fd, 0, FD_MAX);
  checkString('path', path);
  wrapNative(() => native.bpfObjPin(fd, path, label));
}

/** Removes a pin; false when nothing was pinned there (idempotent). */
export function unpinPath(path: string): boolean {
  checkString('path', path);
  try {
    unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** A new fd for the object pinned at `path`; the caller closes it. */
export function openPinned(path: string): number {
  checkString('path', path);
  return wrapNative(() => native.bpfObjGet(path));
}
