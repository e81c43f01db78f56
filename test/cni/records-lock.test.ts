// The endpoint records' lock (plugin/commands/records-lock.ts) within one
// process: shared holders run together, an exclusive one waits for them and
// they for it, first come first served; a missing folder is made for ADD and
// left alone for DEL and GC. No root needed.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withRecordsLock, type LockMode } from '../../plugin/commands/records-lock.js';

describe('records lock', () => {
  let dir: string;
  beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'ferry-records-lock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Takes the lock, notes when it holds and lets go, and holds it until `release` is called. */
  function holder(records: string, mode: LockMode, events: string[], name: string) {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const done = withRecordsLock(records, mode, async () => {
      events.push(`${name} in`);
      await held;
      events.push(`${name} out`);
    });
    return { release, done };
  }

  const tick = () => new Promise((r) => setTimeout(r, 20));

  it('shares between shared holders, excludes with an exclusive one, in arrival order', async () => {
    const records = join(dir, 'endpoints', 'net');
    const events: string[] = [];
    const a = holder(records, 'shared', events, 'a');
    const b = holder(records, 'shared', events, 'b');
    await tick();
    expect(events).toEqual(['a in', 'b in']);
    const x = holder(records, 'exclusive', events, 'x');
    const c = holder(records, 'shared', events, 'c'); // behind x: waits for it
    await tick();
    expect(events).toEqual(['a in', 'b in']);
    a.release();
    b.release();
    await Promise.all([a.done, b.done]);
    await tick();
    expect(events).toEqual(['a in', 'b in', 'a out', 'b out', 'x in']);
    x.release();
    await x.done;
    await tick();
    expect(events.at(-1)).toBe('c in');
    c.release();
    await c.done;
    expect(existsSync(join(records, 'lock'))).toBe(true);
  });

  it('makes the folder when asked to, and otherwise runs without the lock when there is none', async () => {
    const missing = join(dir, 'endpoints', 'none');
    expect(await withRecordsLock(missing, 'shared', async () => 'ran', { create: false })).toBe('ran');
    expect(existsSync(missing)).toBe(false);
    await withRecordsLock(missing, 'shared', async () => undefined);
    expect(existsSync(join(missing, 'lock'))).toBe(true);
  });

  it('lets go when fn throws', async () => {
    const records = join(dir, 'endpoints', 'net');
    await expect(withRecordsLock(records, 'exclusive', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await withRecordsLock(records, 'exclusive', async () => 'again')).toBe('again');
  });
});
