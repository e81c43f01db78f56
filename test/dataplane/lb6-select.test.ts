// How from_pod (build/bpf/lb.o) picks a new IPv6 flow's backend, under
// BPF_PROG_TEST_RUN: Maglev (a table from engine/dataplane/maglev.ts in
// ferry_lb4_maglv, which both families share) indexed by jhash2 of the
// tuple's nine words, and ClientIP session affinity (ferry_lb6_aff). Maps
// are filled and read through layout.ts.
import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';

import { backendId, lb4Affinity, lb4Maglev, lb4MaglevKey, lb6AffinityKey, lb6Key, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { maglevTable } from '../../engine/dataplane/maglev.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, OK } from './lb-fixture.js';
import { address6, ipv6Packet, parseIpv6Packet, TCP } from './packets6.js';

const VIP = 'fd00:10:96::10';
const REV_NAT = 7;
const M = 251;
const SEED = 0x5eed;
const BACKENDS = [
  { id: 1, address: 'fd00:10:244:1::5', port: 8080 },
  { id: 2, address: 'fd00:10:244:2::6', port: 8080 },
  { id: 3, address: 'fd00:10:244:3::7', port: 8080 },
];
type Backend = (typeof BACKENDS)[number];
const nameOf = (b: Backend) => `[${b.address}]:${b.port}/tcp`;

/** Writes the service's Maglev table over `backends`, as the Reconciler would; returns it as backend ids. */
function writeMaglev(lb: LbFixture, backends: readonly Backend[]): number[] {
  const byName = new Map(backends.map((b) => [nameOf(b), b.id]));
  const ids = maglevTable(byName.keys(), { size: M, seed: SEED }).map((name) => byName.get(name)!);
  lb.maglev.update(lb4MaglevKey.encode({ revNatIndex: REV_NAT, scope: 'external' }), lb4Maglev.encode({ seed: SEED, backendIds: ids }));
  return ids;
}

async function withService(options: { maglev?: boolean; affinityTimeout?: number } = {}): Promise<LbFixture> {
  const lb = await loadLb();
  lb.addService6({
    address: VIP,
    port: 80,
    proto: 'tcp',
    revNatIndex: REV_NAT,
    backends: BACKENDS,
    flags: options.maglev ? SVC_FLAGS.maglev : 0,
    affinityTimeout: options.affinityTimeout ?? 0,
  });
  return lb;
}

/** A SYN from client:sport to the service through from_pod; the backend id it was DNATed to. */
async function pick(lb: LbFixture, client: string, sport: number): Promise<number> {
  const result = await lb.run(ipv6Packet({ proto: 'tcp', src: client, dst: VIP, sport, dport: 80, flags: TCP.SYN }));
  expect(result.retval).toBe(OK);
  const dst = parseIpv6Packet(result.data).dst;
  const backend = BACKENDS.find((b) => b.address === dst);
  if (!backend) throw new Error(`DNATed to ${dst}, no backend`);
  return backend.id;
}

function flushConntrack(lb: LbFixture): void {
  for (const key of [...lb.conntrack6.keys()]) lb.conntrack6.delete(key);
}

/** Flow i's client address and source port: distinct 5-tuples. */
function tuple(i: number): [string, number] {
  return [`fd00:10:240:${(i >> 6) & 255}::${(i & 63) + 1}`, 20000 + ((i * 7919) % 40000)];
}

// The kernel's jhash2() (lookup3), written apart from lib/jhash.h.
const rol = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
function jhash2(k: readonly number[], initval: number): number {
  let a = (0xdeadbeef + (k.length << 2) + initval) >>> 0;
  let b = a;
  let c = a;
  let i = 0;
  let left = k.length;
  while (left > 3) {
    a = (a + k[i]!) >>> 0;
    b = (b + k[i + 1]!) >>> 0;
    c = (c + k[i + 2]!) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rol(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rol(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol(b, 4)) >>> 0; b = (b + a) >>> 0;
    left -= 3;
    i += 3;
  }
  if (left === 0) return c;
  if (left === 3) c = (c + k[i + 2]!) >>> 0;
  if (left >= 2) b = (b + k[i + 1]!) >>> 0;
  a = (a + k[i]!) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol(b, 24)) >>> 0;
  return c;
}

/**
 * The table index lib/lb6.h takes for a TCP tuple: jhash2 of the nine words
 * as the program loads them (the addresses' 32-bit words and the ports'
 * 16-bit halves in host order, here little-endian), seed ^ protocol.
 */
function maglevIndex(src: string, sport: number, dst: string, dport: number): number {
  const words: number[] = [];
  for (const address of [src, dst]) for (let w = 0; w < 4; w++) words.push(address6(address).readUInt32LE(w * 4));
  const port = (p: number) => ((p & 0xff) << 8) | (p >> 8);
  words.push(((port(sport) << 16) | port(dport)) >>> 0);
  return jhash2(words, (SEED ^ 6) >>> 0) % M;
}

describe.skipIf(!isRoot)('Maglev backend selection for IPv6 in from_pod (needs root: BPF_PROG_TEST_RUN)', () => {
  it.skipIf(endianness() !== 'LE')('takes each flow’s backend from the table entry jhash2 of its tuple names (3000 flows)', async () => {
    const lb = await withService({ maglev: true });
    const table = writeMaglev(lb, BACKENDS);
    const counts: Record<number, number> = {};
    for (let i = 0; i < 3000; i++) {
      const [client, sport] = tuple(i);
      const id = await pick(lb, client, sport);
      expect(id, `flow ${i}`).toBe(table[maglevIndex(client, sport, VIP, 80)]);
      counts[id] = (counts[id] ?? 0) + 1;
    }
    // Within ±10% of uniform.
    expect(Object.keys(counts).sort()).toEqual(['1', '2', '3']);
    for (const count of Object.values(counts)) {
      expect(count).toBeGreaterThanOrEqual(900);
      expect(count).toBeLessThanOrEqual(1100);
    }
    expect(lb.nonZeroCounters()).toEqual({ translated: 3000n, ct_created: 3000n });
  });

  it('sends a 5-tuple to the same backend every time, with conntrack flushed in between, on another copy too', async () => {
    const lb = await withService({ maglev: true });
    writeMaglev(lb, BACKENDS);
    const other = await withService({ maglev: true });
    writeMaglev(other, BACKENDS);
    for (let i = 0; i < 100; i++) {
      const first = await pick(lb, ...tuple(i));
      for (let again = 0; again < 3; again++) {
        flushConntrack(lb);
        expect(await pick(lb, ...tuple(i))).toBe(first);
      }
      expect(await pick(other, ...tuple(i))).toBe(first);
    }
  });

  it('keeps ≥ 90% of the flows on surviving backends where they were when a backend goes', async () => {
    const lb = await withService({ maglev: true });
    writeMaglev(lb, BACKENDS);
    const before: number[] = [];
    for (let i = 0; i < 1500; i++) before.push(await pick(lb, ...tuple(i)));
    const survivors = [BACKENDS[0]!, BACKENDS[2]!];
    writeMaglev(lb, survivors);
    lb.addService6({ address: VIP, port: 80, proto: 'tcp', revNatIndex: REV_NAT, backends: survivors, flags: SVC_FLAGS.maglev });
    lb.services6.delete(lb6Key.encode({ address: VIP, port: 80, proto: 'tcp', slot: 3, scope: 'external' }));
    lb.removeBackend6(2);
    flushConntrack(lb);
    let stayed = 0;
    let onSurvivors = 0;
    for (let i = 0; i < 1500; i++) {
      const now = await pick(lb, ...tuple(i));
      expect(now).not.toBe(2);
      if (before[i] === 2) continue;
      onSurvivors++;
      if (now === before[i]) stayed++;
    }
    expect(onSurvivors).toBeGreaterThan(750);
    expect(stayed / onSurvivors).toBeGreaterThanOrEqual(0.9);
  });

  it('falls back to a random slot while the table is missing', async () => {
    const lb = await withService({ maglev: true });
    const ids = new Set<number>();
    for (let i = 0; i < 60; i++) ids.add(await pick(lb, ...tuple(i)));
    expect(ids.size).toBeGreaterThan(1);
  });
});

describe.skipIf(!isRoot)('ClientIP session affinity for IPv6 in from_pod (needs root: BPF_PROG_TEST_RUN)', () => {
  const CLIENT = 'fd00:10:244::9';
  const affinityKey = (client = CLIENT) => lb6AffinityKey.encode({ clientAddress: client, revNatIndex: REV_NAT, scope: 'external' });
  const record = (lb: LbFixture, client = CLIENT) => {
    const value = lb.affinity6.lookup(affinityKey(client));
    return value === undefined ? undefined : lb4Affinity.decode(value);
  };
  const slotOf = (id: number) => BACKENDS.findIndex((b) => b.id === id) + 1;

  it('sends one client, from any source port, to one backend, and records it in ferry_lb6_aff', async () => {
    const lb = await withService({ affinityTimeout: 10800 });
    const before = lb.clockFloor();
    const first = await pick(lb, CLIENT, 30000);
    for (let sport = 30001; sport < 30050; sport++) expect(await pick(lb, CLIENT, sport)).toBe(first);
    const entry = record(lb)!;
    expect(entry).toMatchObject({ backendId: first, slot: slotOf(first) });
    expect(entry.lastUsedNs).toBeGreaterThanOrEqual(before);
    const others = new Set<number>();
    for (let i = 0; i < 40; i++) others.add(await pick(lb, `fd00:10:244:7::${i + 1}`, 30000));
    expect(others.size).toBeGreaterThan(1);
    expect([...lb.affinity6.keys()]).toHaveLength(41);
    // IPv4's affinity map is not IPv6's.
    expect([...lb.affinity.keys()]).toHaveLength(0);
  });

  it('without affinity, one client’s flows spread', async () => {
    const lb = await withService();
    const ids = new Set<number>();
    for (let sport = 30000; sport < 30040; sport++) ids.add(await pick(lb, CLIENT, sport));
    expect(ids.size).toBeGreaterThan(1);
    expect([...lb.affinity6.keys()]).toEqual([]);
  });

  it('follows a planted record while it holds; chooses anew once idle past the timeout or its slot names another backend', async () => {
    const lb = await withService({ affinityTimeout: 60 });
    const timeout = 60n * 1_000_000_000n;
    const plant = (idleNs: bigint, slot = 1) => lb.affinity6.update(affinityKey(), lb4Affinity.encode({ lastUsedNs: lb.now() - idleNs, backendId: 1, slot }));
    for (let i = 0; i < 10; i++) {
      plant(timeout - 5_000_000_000n);
      expect(await pick(lb, CLIENT, 31000 + i)).toBe(1);
    }
    const expired = new Set<number>();
    for (let i = 0; i < 20; i++) {
      plant(timeout + 1_000_000_000n);
      expired.add(await pick(lb, CLIENT, 32000 + i));
    }
    expect(expired.size).toBeGreaterThan(1);
    // Slot 2 holds backend 2, not the recorded 1: not reused.
    const moved = new Set<number>();
    for (let i = 0; i < 20; i++) {
      plant(0n, 2);
      moved.add(await pick(lb, CLIENT, 33000 + i));
    }
    expect(moved.size).toBeGreaterThan(1);
  });

  it('with Maglev, affinity still pins the client across source ports', async () => {
    const lb = await withService({ maglev: true, affinityTimeout: 10800 });
    writeMaglev(lb, BACKENDS);
    const first = await pick(lb, CLIENT, 34000);
    for (let sport = 34001; sport < 34040; sport++) expect(await pick(lb, CLIENT, sport)).toBe(first);
    expect(record(lb)).toMatchObject({ backendId: first, slot: 0 });
  });
});
