// A throw-away namespace with a ferry Handle in it, for verb tests: the
// handle is closed and the namespace deleted after each test, even on failure.
import { afterEach } from 'vitest';
import { Handle } from '../../engine/handle.js';
import type { NetlinkError } from '../../engine/netlink/errors.js';
import { makeNetns, run } from './netns.js';

const handles: Handle[] = [];
afterEach(() => {
  for (const h of handles.splice(0)) h.close();
});

/** A fresh namespace (made with `ip netns add`) and a handle bound to it. */
export async function handleIn(prefix: string): Promise<{ ns: string; h: Handle }> {
  const ns = makeNetns(prefix);
  const h = await Handle.open(ns);
  handles.push(h);
  return { ns, h };
}

/** Runs `ip -n NS ARGS…` (fixtures are built with iproute2, not with the code under test). */
export function ip(ns: string, ...args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

/** A veth pair `a`/`b`, both ends up, in `ns` (veth rather than dummy: dummy may be a module the kernel lacks). */
export function vethUp(ns: string, a: string, b: string): void {
  ip(ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
  ip(ns, 'link', 'set', a, 'up');
  ip(ns, 'link', 'set', b, 'up');
}

/** The error `f` rejects with; fails the test when it does not reject. */
export async function thrown(f: () => Promise<unknown>): Promise<NetlinkError> {
  try {
    await f();
  } catch (e) {
    return e as NetlinkError;
  }
  throw new Error('expected an error, none was thrown');
}
