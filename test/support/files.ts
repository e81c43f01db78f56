// Writing files another process watches.
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `path`'s content in one rename, as an editor would: writeFileSync
 * truncates then writes, and a watcher woken between the two reads an empty
 * file. The temp file sits in the same folder (a rename does not cross
 * filesystems) under a dotted name a manifest folder's reader skips.
 */
export function replaceFile(path: string, content: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp`);
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}
