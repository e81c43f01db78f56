// cstruct.ts's encoders (one writer made per member) against the generic
// encoder they replaced, kept here as the oracle: every member kind, valid
// values at random and at their bounds, and invalid ones (the same error,
// word for word). Also the bytes of the keys and values the Reconciler
// writes, spelled out from ferry_lb.h's layouts.
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { scalarCodec, structCodec, type FieldSpec, type RawStruct, type RawValue } from '../../engine/dataplane/cstruct.js';
import { backendId, lb4Backend, lb4Key, lb4ReverseNat, lb4Service, lb6Backend, lb6Key, revNatIndex } from '../../engine/dataplane/layout.js';

const LE = endianness() === 'LE';
const MAX = { u8: 0xff, u16: 0xffff, u32: 0xffffffff, be16: 0xffff } as const;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** The encoder before: net.isIPv4, split(), Buffer's write*(), a switch per member. */
function oracleWrite(buf: Buffer, kind: FieldSpec[1], offset: number, value: RawValue | undefined, where: string): void {
  if (kind === 'pad') return;
  if (kind === 'ipv4') {
    if (typeof value !== 'string' || !isIPv4(value)) throw new TypeError(`${where} must be an IPv4 address, got ${String(value)}`);
    buf.set(value.split('.').map(Number), offset);
    return;
  }
  if (kind === 'ipv6') {
    if (typeof value !== 'string' || !isIPv6(value)) throw new TypeError(`${where} must be an IPv6 address, got ${String(value)}`);
    buf.set(ipaddr.IPv6.parse(value).toByteArray(), offset);
    return;
  }
  if (kind === 'mac') {
    if (typeof value !== 'string' || !MAC.test(value)) throw new TypeError(`${where} must be a MAC address like 02:00:00:00:00:01, got ${String(value)}`);
    buf.set(value.split(':').map((b) => parseInt(b, 16)), offset);
    return;
  }
  if (kind === 'u64') {
    if (typeof value !== 'bigint' || value < 0n || value > (1n << 64n) - 1n) throw new RangeError(`${where} must be a bigint in [0, 2^64-1], got ${String(value)}`);
    if (LE) buf.writeBigUInt64LE(value, offset);
    else buf.writeBigUInt64BE(value, offset);
    return;
  }
  const max = MAX[kind];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${where} must be an integer in [0, ${max}], got ${String(value)}`);
  }
  if (kind === 'u8') buf.writeUInt8(value, offset);
  else if (kind === 'be16') buf.writeUInt16BE(value, offset);
  else if (kind === 'u16') (LE ? buf.writeUInt16LE : buf.writeUInt16BE).call(buf, value, offset);
  else (LE ? buf.writeUInt32LE : buf.writeUInt32BE).call(buf, value, offset);
}

// Every kind, at offsets that need alignment padding.
const SPECS: FieldSpec[] = [
  ['a', 'u8'],
  ['b', 'u32'],
  ['c', 'be16'],
  ['d', 'ipv4'],
  ['e', 'u16'],
  ['f', 'mac'],
  ['pad', 'pad', 3],
  ['g', 'u64'],
];
const codec = structCodec<RawStruct>('all_kinds', SPECS, (v) => v, (r) => ({ ...r }));
const offsets = new Map(codec.fields.map((f) => [f.name, f.offset]));

/** What the oracle makes of `raw`: the bytes, or the error it throws. */
function oracle(raw: RawStruct): Buffer | Error {
  const buf = Buffer.alloc(codec.size);
  try {
    for (const [name, kind] of SPECS) oracleWrite(buf, kind, offsets.get(name)!, raw[name], `all_kinds.${name}`);
    return buf;
  } catch (e) {
    return e as Error;
  }
}

function encoded(raw: RawStruct): Buffer | Error {
  try {
    return codec.encode(raw);
  } catch (e) {
    return e as Error;
  }
}

const pick = <T>(values: readonly T[]): T => values[Math.floor(Math.random() * values.length)]!;
const int = (max: number) => Math.floor(Math.random() * (max + 1));

function randomRaw(): RawStruct {
  return {
    a: pick([0, 0xff, int(0xff)]),
    b: pick([0, 0xffffffff, int(0xffffffff)]),
    c: pick([0, 0xffff, int(0xffff)]),
    d: `${int(255)}.${int(255)}.${int(255)}.${int(255)}`,
    e: pick([0, 0xffff, int(0xffff)]),
    f: Array.from({ length: 6 }, () => int(255).toString(16).padStart(2, '0')).join(':'),
    g: BigInt(int(0xffffffff)) * BigInt(int(0xffffffff)),
  };
}

describe('cstruct encoders', () => {
  it('write every kind as the generic encoder did', () => {
    for (let i = 0; i < 5000; i++) {
      const raw = randomRaw();
      expect(encoded(raw)).toEqual(oracle(raw));
      const into = Buffer.alloc(codec.size + 2, 0xff);
      codec.encodeInto(raw, into, 1);
      expect(into.subarray(1, 1 + codec.size)).toEqual(oracle(raw));
    }
  });

  it('take exactly the IPv4 text net.isIPv4 takes', () => {
    const texts = [
      '0.0.0.0', '255.255.255.255', '10.96.0.10', '1.2.3.4', '01.2.3.4', '1.2.3.04', '1.2.3.00', '00.0.0.0', '256.1.1.1', '1.2.3.256',
      '1.2.3.400', '1.2.3.1000', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '', ' 1.2.3.4', '1.2.3.4 ', 'a.b.c.d', '1.2.3.-1',
      '::1', '1.2.3.4/8', '１.2.3.4', '1.2.3.4\n', '199.255.249.9',
    ];
    for (const d of texts) {
      const raw = { ...randomRaw(), d };
      expect(encoded(raw), d).toEqual(oracle(raw));
    }
  });

  it('refuse what the generic encoder refused, with its words', () => {
    const bad: Array<[string, unknown]> = [
      ['a', 256], ['a', -1], ['a', 1.5], ['a', '1'], ['a', undefined], ['b', 2 ** 32], ['b', NaN], ['c', 65536], ['e', 70000],
      ['d', 7], ['d', undefined], ['f', '02:00:00:00:00'], ['f', 5], ['g', -1n], ['g', 1n << 64n], ['g', 5],
    ];
    for (const [name, value] of bad) {
      const raw = { ...randomRaw(), [name]: value } as RawStruct;
      const e = encoded(raw);
      expect(e, `${name} = ${String(value)}`).toBeInstanceOf(Error);
      expect(e).toEqual(oracle(raw));
    }
  });

  it('scalar codecs write host-order integers and check their range', () => {
    const u16 = scalarCodec('__u16', 'u16');
    const u32 = scalarCodec('__u32', 'u32');
    for (const v of [0, 1, 0x1234, 0xffff]) expect(u16.encode(v)).toEqual(LE ? Buffer.from([v & 0xff, v >> 8]) : Buffer.from([v >> 8, v & 0xff]));
    const b = Buffer.alloc(4);
    (LE ? b.writeUInt32LE : b.writeUInt32BE).call(b, 0xdeadbeef, 0);
    expect(u32.encode(0xdeadbeef)).toEqual(b);
    expect(() => u16.encode(0x10000)).toThrow('__u16 must be an integer in [0, 65535], got 65536');
  });
});

describe('the Reconciler\'s keys and values, byte for byte', () => {
  const h16 = (v: number) => (LE ? [v & 0xff, v >> 8] : [v >> 8, v & 0xff]);
  const h32 = (v: number) => (LE ? [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24] : [v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]);

  it('lb4_key: address, be16 port, slot, proto, scope, 2 bytes of padding', () => {
    expect([...lb4Key.encode({ address: '10.96.0.10', port: 53, proto: 'udp', slot: 2, scope: 'internal' })]).toEqual([10, 96, 0, 10, 0, 53, ...h16(2), 17, 1, 0, 0]);
  });

  it('lb4_service: backend id, count, rev-NAT index, flags, 3 bytes of padding, affinity timeout', () => {
    expect([...lb4Service.encode({ backendId: 70000, count: 3, revNatIndex: 513, flags: 5, affinityTimeout: 10800 })]).toEqual([
      ...h32(70000), ...h16(3), ...h16(513), 5, 0, 0, 0, ...h32(10800),
    ]);
  });

  it('encodeInto() writes what encode() makes, at an offset, over whatever was there, and nothing else', () => {
    const cases: Array<[{ size: number; encode(v: never): Buffer; encodeInto(v: never, b: Buffer, o: number): void }, unknown]> = [
      [lb4Key, { address: '10.96.0.10', port: 53, proto: 'udp', slot: 3, scope: 'internal' }],
      [lb6Key, { address: 'fd00::10', port: 443, proto: 'tcp', slot: 0, scope: 'external' }],
      [lb4Service, { backendId: 70000, count: 3, revNatIndex: 513, flags: 5, affinityTimeout: 10800 }],
      [lb4Backend, { address: '10.244.1.7', port: 8080, proto: 'tcp', flags: 0 }],
      [lb6Backend, { address: 'fd00::7', port: 8080, proto: 'udp', flags: 1 }],
      [backendId, 70000],
      [revNatIndex, 513],
    ];
    for (const [codec, value] of cases) {
      const buf = Buffer.alloc(codec.size + 7, 0xee);
      codec.encodeInto(value as never, buf, 3);
      expect(buf.subarray(3, 3 + codec.size)).toEqual(codec.encode(value as never));
      expect([...buf.subarray(0, 3), ...buf.subarray(3 + codec.size)]).toEqual(new Array(7).fill(0xee));
      expect(() => codec.encodeInto(value as never, buf, 8)).toThrow(RangeError);
    }
  });

  it('lb4_backend, lb4_reverse_nat and the backend id and rev-NAT index keys', () => {
    expect([...lb4Backend.encode({ address: '10.244.1.7', port: 8080, proto: 'tcp', flags: 0 })]).toEqual([10, 244, 1, 7, 0x1f, 0x90, 6, 0]);
    expect([...lb4ReverseNat.encode({ address: '10.96.0.10', port: 443 })]).toEqual([10, 96, 0, 10, 1, 0xbb, 0, 0]);
    expect([...backendId.encode(70000)]).toEqual(h32(70000));
    expect([...revNatIndex.encode(513)]).toEqual(h16(513));
  });
});
