// A throw-away data directory per test under the OS temp dir, removed after
// the test even when it fails; IPAM tests never touch /var/lib/cni.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ipam-'));
  made.push(dir);
  return dir;
}
