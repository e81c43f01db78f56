// Test fixtures: throw-away network namespaces with unique names, created
// and deleted with iproute2 (an oracle independent of ferry's own code), and
// removed in teardown even when the test fails.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach } from 'vitest';

/** A unique, short (≤ 15 chars is not needed for netns, but keep logs tidy) name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Runs a command and returns stdout; throws with stderr on failure. */
export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip -n NS -j ARGS` parsed. */
export function ipJson<T = any>(ns: string, args: string[]): T {
  const out = run('ip', ['-n', ns, '-j', ...args]).trim();
  return (out === '' ? [] : JSON.parse(out)) as T;
}

/** Runs a command inside `ns` (network namespace only; /sys and bpffs stay the host's). */
export function inNetns(ns: string, cmd: string, args: string[]): string {
  return run('nsenter', [`--net=/var/run/netns/${ns}`, cmd, ...args]);
}

export const isRoot = process.getuid?.() === 0;

const created = new Set<string>();

/** Creates a namespace named after `prefix`, deleted after the current test. */
export function makeNetns(prefix: string): string {
  const name = uniqueName(prefix);
  run('ip', ['netns', 'add', name]);
  created.add(name);
  return name;
}

/** Deletes every namespace this file made; registered once per test file. */
export function cleanupNetns(): void {
  for (const name of created) {
    try {
      run('ip', ['netns', 'del', name]);
    } catch {
      // already gone
    }
  }
  created.clear();
}

afterEach(cleanupNetns);
