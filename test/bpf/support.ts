// Fixtures for the BPF tests: the built objects, namespace handles for
// attachTc, a veth pair between two namespaces, per-test pin directories on
// bpffs, and the smoke_counter map layout. Everything made here is removed
// after each test, even when it fails.
import { existsSync } from 'node:fs';
import { endianness, release } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

import type { NetnsRef } from '../../engine/bpf/index.js';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { native } from '../../engine/native/binding.js';
import { inNetns, ipJson, run } from '../support/netns.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** A built object under build/bpf; fails (not skips) when `make` was not run. */
export function bpfObject(name: string): string {
  const path = join(ROOT, 'build', 'bpf', `${name}.o`);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`make -f bpf/bpf.mk\` first`);
  return path;
}

/** Whether the running kernel is at least major.minor (tcx needs 6.6). */
export function kernelAtLeast(major: number, minor: number): boolean {
  const [maj = 0, min = 0] = release().split('.').map((n) => Number.parseInt(n, 10));
  return maj > major || (maj === major && min >= minor);
}

// Everything to undo after the current test, newest first.
const undo: Array<() => unknown> = [];

/** Registers cleanup work for the end of the current test. */
export function defer(fn: () => unknown): void {
  undo.push(fn);
}

afterEach(async () => {
  const errors: unknown[] = [];
  while (undo.length > 0) {
    try {
      await undo.pop()!();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'BPF test cleanup failed');
});

/** An open handle on a namespace made by makeNetns(), closed after the test. */
export function openNetns(name: string): NetnsRef {
  const fd = native.netnsOpen(`/var/run/netns/${name}`);
  defer(() => native.closeFd(fd));
  return { fd, name };
}

/** A fresh pin directory /sys/fs/bpf/ferry-test-XXXXXX, removed after the test. */
export function pinDir(): string {
  const dir = makePinDir('ferry-test');
  defer(() => removePinDir(dir));
  return dir;
}

export interface Veth {
  /** ifindex of `va` in namespace a, and of `vb` in namespace b. */
  ifindexA: number;
  ifindexB: number;
  addrA: string;
  addrB: string;
}

/**
 * `va` in `a` <-> `vb` in `b`, 10.77.0.1/30 and .2, up, with IPv6 off and
 * static neighbours so that only the datagrams a test sends cross the link.
 */
export function vethPair(a: string, b: string): Veth {
  for (const ns of [a, b]) {
    inNetns(ns, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6']);
  }
  run('ip', ['-n', a, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', b]);
  const addrA = '10.77.0.1';
  const addrB = '10.77.0.2';
  run('ip', ['-n', a, 'addr', 'add', `${addrA}/30`, 'dev', 'va']);
  run('ip', ['-n', b, 'addr', 'add', `${addrB}/30`, 'dev', 'vb']);
  run('ip', ['-n', a, 'link', 'set', 'va', 'up']);
  run('ip', ['-n', b, 'link', 'set', 'vb', 'up']);
  const [linkA] = ipJson<Array<{ ifindex: number; address: string }>>(a, ['link', 'show', 'va']);
  const [linkB] = ipJson<Array<{ ifindex: number; address: string }>>(b, ['link', 'show', 'vb']);
  if (!linkA || !linkB) throw new Error('veth pair not created');
  run('ip', ['-n', a, 'neigh', 'replace', addrB, 'lladdr', linkB.address, 'dev', 'va', 'nud', 'permanent']);
  run('ip', ['-n', b, 'neigh', 'replace', addrA, 'lladdr', linkA.address, 'dev', 'vb', 'nud', 'permanent']);
  return { ifindexA: linkA.ifindex, ifindexB: linkB.ifindex, addrA, addrB };
}

/** Sends `count` 1-byte UDP datagrams from namespace `ns` to addr:9 (bash's /dev/udp). */
export function sendUdp(ns: string, addr: string, count: number): void {
  inNetns(ns, 'bash', ['-c', `for ((i = 0; i < ${count}; i++)); do printf x > /dev/udp/${addr}/9; done`]);
}

/** Polls `check` until it holds or `ms` pass (softirq delivery is asynchronous). */
export async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

// --- smoke_counter's map, as declared in bpf/smoke_counter.c ---------------

/** Indices of smoke_counts (enum smoke_direction); checked by test-run.test.ts. */
export const SMOKE_INGRESS = 0;
export const SMOKE_EGRESS = 1;

/** struct smoke_count { __u64 packets; __u64 bytes; }; checked against BTF in test-run.test.ts. */
export const SMOKE_COUNT = { size: 16, packets: 0, bytes: 8 } as const;

export interface SmokeCount {
  packets: bigint;
  bytes: bigint;
}

// Map keys and values are in host byte order.
const LE = endianness() === 'LE';

export function smokeKey(direction: number): Buffer {
  const key = Buffer.alloc(4);
  if (LE) key.writeUInt32LE(direction);
  else key.writeUInt32BE(direction);
  return key;
}

export function decodeSmokeCount(value: Buffer): SmokeCount {
  const read = (offset: number) => (LE ? value.readBigUInt64LE(offset) : value.readBigUInt64BE(offset));
  return { packets: read(SMOKE_COUNT.packets), bytes: read(SMOKE_COUNT.bytes) };
}

/** bpftool's view of every BPF link whose program is `progId` (an oracle independent of ferry). */
export function linksOfProgram(progId: number): unknown[] {
  const links = JSON.parse(run('bpftool', ['-j', 'link', 'show'])) as Array<{ prog_id?: number }>;
  return links.filter((l) => l.prog_id === progId);
}
