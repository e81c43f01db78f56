// The BPF filesystem: where pinned maps, programs and links live beyond the
// process that made them. ferry mounts it when a node has not, and gives
// each run its own pin directory so runs never see each other's maps.
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';

import { native } from '../native/binding.js';
import { wrapNative } from './errors.js';
import { checkString } from './validate.js';

export const BPFFS_ROOT = '/sys/fs/bpf';

// statfs(2) f_type of bpffs (BPF_FS_MAGIC in <linux/magic.h>).
const BPF_FS_MAGIC = 0xcafe4a11;

/** Whether `path` is on a mounted bpffs. */
export function isBpffs(path: string): boolean {
  return statfsSync(path).type === BPF_FS_MAGIC;
}

/**
 * Makes sure bpffs is mounted at `root`; true when this call mounted it.
 * Equivalent to: `mount -t bpf bpf /sys/fs/bpf -o mode=0700` (when absent).
 */
export function ensureBpffs(root: string = BPFFS_ROOT): boolean {
  checkString('root', root);
  mkdirSync(root, { recursive: true });
  return wrapNative(() => native.bpffsEnsure(root));
}

/**
 * Creates a fresh directory `<root>/<prefix>-XXXXXX` on bpffs (mounting it
 * first when needed), e.g. a per-run pin root for BpfObject.open().
 */
export function makePinDir(prefix: string, root: string = BPFFS_ROOT): string {
  checkString('prefix', prefix);
  ensureBpffs(root);
  return mkdtempSync(join(root, `${prefix}-`));
}

/**
 * Removes a pin directory and everything pinned in it (maps stay alive while
 * something still holds them). Refuses any path that is not on bpffs, so a
 * wrong argument can never delete ordinary files. Missing: nothing to do.
 */
export function removePinDir(path: string): void {
  checkString('path', path);
  let onBpffs: boolean;
  try {
    onBpffs = isBpffs(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!onBpffs) throw new Error(`removePinDir: ${path} is not on bpffs; refusing to delete it`);
  rmSync(path, { recursive: true, force: true });
}
