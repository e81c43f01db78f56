// Throw-away network namespaces for benches, made and removed with iproute2
// (`ip netns add/del`). Names are unique per run; nothing here touches the
// host's own namespace.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const NETNS_DIR = '/var/run/netns';

/** A prefix unique to this run, e.g. "fb-1a2b-9f3e01". */
export function runPrefix(tag: string): string {
  return `${tag}-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Equivalent to: `ip netns add NAME`. */
export function addNetns(name: string): void {
  execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Equivalent to: `ip netns del NAME…`, in one `ip -force -batch` process (a
 * bench makes a hundred namespaces; one exec each is slow on a cleanup path).
 * Namespaces that are already gone are fine; other failures are thrown.
 */
export function delNetns(names: readonly string[]): void {
  if (names.length === 0) return;
  try {
    execFileSync('ip', ['-force', '-batch', '-'], { input: names.map((n) => `netns del ${n}\n`).join(''), stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? '');
    const real = stderr.split('\n').filter((l) => l.trim() !== '' && !/No such file|not exist|Command failed/i.test(l));
    if (real.length > 0) throw new Error(`ip netns del: ${real.join('; ')}`);
  }
}

export const netnsPath = (name: string): string => `${NETNS_DIR}/${name}`;
