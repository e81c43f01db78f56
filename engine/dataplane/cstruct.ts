// C structs as BPF maps hold them: a field list laid out with C's rules
// (each member at its natural alignment, the size rounded up to the largest),
// and codecs between those bytes and TypeScript values. A codec publishes its
// C type name and every member's offset and size, so a test can compare them
// with the BTF clang wrote for the same struct (test/dataplane/layout.test.ts).
//
// Byte order: map keys and values are raw memory of the machine the program
// runs on, so plain integers are in host order; addresses and ports are
// __be32/__be16 in the C structs and are written in network order here.
import { isIPv4 } from 'node:net';
import { endianness } from 'node:os';

/** Encodes values to the exact bytes a map key or value holds, and back. */
export interface Codec<T> {
  readonly size: number;
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

/** One member of a C struct: where it is and how wide. */
export interface FieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/** A codec for a C type, with the layout it assumes. */
export interface CCodec<T> extends Codec<T> {
  /** The C type's name in BTF: a struct tag ('lb4_key') or a typedef ('__u32'). */
  readonly cType: string;
  /** The struct's members, in order; empty for a scalar. */
  readonly fields: readonly FieldLayout[];
}

/**
 * How a member is stored: host-order integers, network-order port/address,
 * an Ethernet address (__u8[6], written aa:bb:cc:dd:ee:ff), or explicit
 * padding (always written as zeros: hash keys compare every byte).
 */
export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'ipv4' | 'mac' | 'pad';

/** [name, kind] or, for padding, [name, 'pad', bytes]. */
export type FieldSpec = readonly [name: string, kind: Exclude<FieldKind, 'pad'>] | readonly [name: string, kind: 'pad', bytes: number];

/** Raw member values: numbers, bigints for u64, dotted quads for ipv4, aa:bb:… for mac. */
export type RawValue = number | bigint | string;
export type RawStruct = Record<string, RawValue>;

const SIZE: Record<Exclude<FieldKind, 'pad'>, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, ipv4: 4, mac: 6 };
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const MAX: Record<'u8' | 'u16' | 'u32' | 'be16', number> = { u8: 0xff, u16: 0xffff, u32: 0xffffffff, be16: 0xffff };
const U64_MAX = (1n << 64n) - 1n;
const LE = endianness() === 'LE';

interface Field extends FieldLayout {
  readonly kind: FieldKind;
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** Lays out `specs` as clang would for `struct cType { ... }` (no packing). */
function layOut(specs: readonly FieldSpec[]): { fields: Field[]; size: number } {
  const fields: Field[] = [];
  let offset = 0;
  let maxAlign = 1;
  for (const spec of specs) {
    const [name, kind] = spec;
    const size = spec[1] === 'pad' ? spec[2] : SIZE[spec[1]];
    // Padding and a MAC are __u8 arrays; an address is a __be32 (4-aligned).
    const align = kind === 'pad' || kind === 'mac' ? 1 : size;
    offset = alignUp(offset, align);
    fields.push({ name, kind, offset, size });
    offset += size;
    maxAlign = Math.max(maxAlign, align);
  }
  return { fields, size: alignUp(offset, maxAlign) };
}

function writeField(buf: Buffer, field: Field, value: RawValue | undefined, where: string): void {
  const { kind, offset } = field;
  if (kind === 'pad') return;
  if (kind === 'ipv4') {
    if (typeof value !== 'string' || !isIPv4(value)) throw new TypeError(`${where} must be an IPv4 address, got ${String(value)}`);
    buf.set(value.split('.').map(Number), offset);
    return;
  }
  if (kind === 'mac') {
    if (typeof value !== 'string' || !MAC.test(value)) throw new TypeError(`${where} must be a MAC address like 02:00:00:00:00:01, got ${String(value)}`);
    buf.set(value.split(':').map((b) => parseInt(b, 16)), offset);
    return;
  }
  if (kind === 'u64') {
    if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
      throw new RangeError(`${where} must be a bigint in [0, 2^64-1], got ${String(value)}`);
    }
    if (LE) buf.writeBigUInt64LE(value, offset);
    else buf.writeBigUInt64BE(value, offset);
    return;
  }
  const max = MAX[kind];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${where} must be an integer in [0, ${max}], got ${String(value)}`);
  }
  switch (kind) {
    case 'u8':
      buf.writeUInt8(value, offset);
      break;
    case 'be16':
      buf.writeUInt16BE(value, offset);
      break;
    case 'u16':
      if (LE) buf.writeUInt16LE(value, offset);
      else buf.writeUInt16BE(value, offset);
      break;
    case 'u32':
      if (LE) buf.writeUInt32LE(value, offset);
      else buf.writeUInt32BE(value, offset);
      break;
  }
}

function readField(buf: Buffer, field: Field): RawValue {
  const { kind, offset } = field;
  switch (kind) {
    case 'ipv4':
      return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
    case 'mac':
      return [...buf.subarray(offset, offset + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    case 'u64':
      return LE ? buf.readBigUInt64LE(offset) : buf.readBigUInt64BE(offset);
    case 'u8':
      return buf.readUInt8(offset);
    case 'be16':
      return buf.readUInt16BE(offset);
    case 'u16':
      return LE ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset);
    case 'u32':
      return LE ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
    case 'pad':
      return 0;
  }
}

function checkLength(where: string, bytes: Buffer, size: number): void {
  if (!Buffer.isBuffer(bytes)) throw new TypeError(`${where} must be a Buffer`);
  if (bytes.length !== size) throw new RangeError(`${where} must be ${size} bytes, got ${bytes.length}`);
}

/**
 * A codec for `struct cType`: `toRaw` maps a value to its members (padding
 * left out: it is zero), `fromRaw` maps members back.
 */
export function structCodec<T>(
  cType: string,
  specs: readonly FieldSpec[],
  toRaw: (value: T) => RawStruct,
  fromRaw: (raw: Readonly<RawStruct>) => T,
): CCodec<T> {
  const { fields, size } = layOut(specs);
  const layouts: FieldLayout[] = fields.map(({ name, offset, size: bytes }) => Object.freeze({ name, offset, size: bytes }));
  return Object.freeze({
    cType,
    size,
    fields: Object.freeze(layouts),
    encode(value: T): Buffer {
      const raw = toRaw(value);
      const buf = Buffer.alloc(size);
      for (const field of fields) writeField(buf, field, raw[field.name], `${cType}.${field.name}`);
      return buf;
    },
    decode(bytes: Buffer): T {
      checkLength(`struct ${cType}`, bytes, size);
      const raw: RawStruct = {};
      for (const field of fields) if (field.kind !== 'pad') raw[field.name] = readField(bytes, field);
      return fromRaw(raw);
    },
  });
}

/** A codec for a host-order integer typedef ('__u16', '__u32', '__u64'). */
export function scalarCodec(cType: string, kind: 'u16' | 'u32'): CCodec<number>;
export function scalarCodec(cType: string, kind: 'u64'): CCodec<bigint>;
export function scalarCodec(cType: string, kind: 'u16' | 'u32' | 'u64'): CCodec<number> | CCodec<bigint> {
  return kind === 'u64' ? scalar<bigint>(cType, kind) : scalar<number>(cType, kind);
}

function scalar<T extends number | bigint>(cType: string, kind: 'u16' | 'u32' | 'u64'): CCodec<T> {
  const field: Field = { name: cType, kind, offset: 0, size: SIZE[kind] };
  return Object.freeze({
    cType,
    size: field.size,
    fields: Object.freeze([]),
    encode(value: T): Buffer {
      const buf = Buffer.alloc(field.size);
      writeField(buf, field, value, cType);
      return buf;
    },
    decode(bytes: Buffer): T {
      checkLength(cType, bytes, field.size);
      // readField yields a bigint for u64 and a number otherwise: T by construction.
      return readField(bytes, field) as T;
    },
  });
}

/** Looks a decoded number up in a name → value table; throws naming the field when unknown. */
export function nameOf<K extends string>(table: Readonly<Record<K, number>>, value: RawValue | undefined, where: string): K {
  for (const [name, v] of Object.entries(table) as Array<[K, number]>) if (v === value) return name;
  throw new RangeError(`${where}: unknown value ${String(value)}`);
}

/** The number for a name; throws naming the field when the name is not in the table. */
export function valueOf<K extends string>(table: Readonly<Record<K, number>>, name: K, where: string): number {
  if (!Object.hasOwn(table, name)) {
    throw new TypeError(`${where} must be one of ${Object.keys(table).map((k) => `'${k}'`).join(', ')}, got ${String(name)}`);
  }
  return table[name];
}
