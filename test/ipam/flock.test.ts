// The addon's flock: locks belong to the open file description, so a second
// open of the same file waits even in the same process; shared locks coexist.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type NativeError, native } from '../../engine/native/binding.js';
import { tempDataDir } from './tmpdir.js';

const settled = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('flock', () => {
  it('an exclusive lock makes another open of the same file wait until funlock', async () => {
    const path = join(tempDataDir(), 'lock');
    const a = openSync(path, 'a');
    const b = openSync(path, 'a');
    try {
      await native.flock(a, true, path);
      const waiting = native.flock(b, true, path);
      expect(await settled(waiting, 200)).toBe(false);
      native.funlock(a, path);
      expect(await settled(waiting, 5_000)).toBe(true);
    } finally {
      closeSync(a); // closing also releases, so a failed test cannot leave b waiting
      closeSync(b);
    }
  });

  it('tryFlock takes a free lock at once and says false, without waiting, when another open holds it', () => {
    const path = join(tempDataDir(), 'lock');
    const a = openSync(path, 'a');
    const b = openSync(path, 'a');
    try {
      expect(native.tryFlock(a, true, path)).toBe(true);
      expect(native.tryFlock(b, true, path)).toBe(false);
      expect(native.tryFlock(b, false, path)).toBe(false);
      native.funlock(a, path);
      expect(native.tryFlock(b, true, path)).toBe(true);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  it('shared locks coexist; an exclusive one waits for them', async () => {
    const path = join(tempDataDir(), 'lock');
    const [a, b, c] = [openSync(path, 'a'), openSync(path, 'a'), openSync(path, 'a')];
    try {
      await native.flock(a, false);
      expect(await settled(native.flock(b, false), 5_000)).toBe(true);
      const exclusive = native.flock(c, true);
      expect(await settled(exclusive, 200)).toBe(false);
      native.funlock(a);
      expect(await settled(exclusive, 200)).toBe(false);
      native.funlock(b);
      expect(await settled(exclusive, 5_000)).toBe(true);
    } finally {
      for (const fd of [a, b, c]) closeSync(fd);
    }
  });

  it('errors keep errno and name the object', async () => {
    const e = (await native.flock(1_000_000, true, '/x/lock').catch((x: unknown) => x)) as NativeError;
    expect(e.code).toBe('EBADF');
    expect(e.syscall).toBe('flock(LOCK_EX)');
    expect(e.message).toBe('flock(LOCK_EX) /x/lock: Bad file descriptor');
    expect(() => native.funlock(1_000_000)).toThrow('flock(LOCK_UN) fd 1000000: Bad file descriptor');
  });
});
