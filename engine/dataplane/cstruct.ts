// C structs as BPF maps hold them: a field list laid out with C's rules
// (each member at its natural alignment, the size rounded up to the largest),
// and codecs between those bytes and TypeScript values. A codec publishes its
// C type name and every member's offset and size, so a test can compare them
// with the BTF clang wrote for the same struct (test/dataplane/layout.test.ts).
//
// Byte order: map keys and values are raw memory of the machine the program
// runs on, so plain integers are in host order; addresses and ports are
// __be32/__be16 in the C structs and are written in network order here.
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';

/** Encodes values to the exact bytes a map key or value holds, and back. */
export interface Codec<T> {
  readonly size: number;
  encode(value: T): Buffer;
  /** encode() into `buf` at `offset` (its `size` bytes there are overwritten, padding zeroed): no Buffer made. */
  encodeInto(value: T, buf: Buffer, offset: number): void;
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
export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'ipv4' | 'ipv6' | 'mac' | 'pad';

/** [name, kind] or, for padding, [name, 'pad', bytes]. */
export type FieldSpec = readonly [name: string, kind: Exclude<FieldKind, 'pad'>] | readonly [name: string, kind: 'pad', bytes: number];

/** Raw member values: numbers, bigints for u64, dotted quads for ipv4, RFC 5952 text for ipv6, aa:bb:… for mac. */
export type RawValue = number | bigint | string;
export type RawStruct = Record<string, RawValue>;

const SIZE: Record<Exclude<FieldKind, 'pad'>, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, ipv4: 4, ipv6: 16, mac: 6 };
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
    // Padding and a MAC are __u8 arrays; an address is a __be32 or a struct in6_addr (both 4-aligned).
    const align = kind === 'pad' || kind === 'mac' ? 1 : kind === 'ipv6' ? 4 : size;
    offset = alignUp(offset, align);
    fields.push({ name, kind, offset, size });
    offset += size;
    maxAlign = Math.max(maxAlign, align);
  }
  return { fields, size: alignUp(offset, maxAlign) };
}

/**
 * Writes one member's value at its offset, after checking it; throws naming
 * `where`. Made once per member (structCodec, scalarCodec), so an encode
 * does no per-call dispatch on the kind and builds no strings: a daemon's
 * first sync encodes some 330k keys and values (100k backends), and the
 * generic path (a switch per member, net.isIPv4's regex, split('.'), a
 * `where` string per member) was a third of that sync's map writes.
 */
/** Writes a member of the struct that starts at `base` in `buf`. */
type FieldWriter = (buf: Buffer, base: number, value: RawValue | undefined) => void;

function fieldWriter(field: Field, where: string): FieldWriter {
  const { kind, offset } = field;
  switch (kind) {
    case 'pad':
      return () => {};
    case 'ipv4':
      return (buf, base, value) => {
        if (typeof value !== 'string' || !writeIpv4(buf, base + offset, value)) throw new TypeError(`${where} must be an IPv4 address, got ${String(value)}`);
      };
    case 'ipv6':
      return (buf, base, value) => {
        if (typeof value !== 'string' || !value.includes(':') || !ipaddr.IPv6.isValid(value)) throw new TypeError(`${where} must be an IPv6 address, got ${String(value)}`);
        buf.set(ipaddr.IPv6.parse(value).toByteArray(), base + offset);
      };
    case 'mac':
      return (buf, base, value) => {
        if (typeof value !== 'string' || !MAC.test(value)) throw new TypeError(`${where} must be a MAC address like 02:00:00:00:00:01, got ${String(value)}`);
        buf.set(value.split(':').map((b) => parseInt(b, 16)), base + offset);
      };
    case 'u64':
      return (buf, base, value) => {
        if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
          throw new RangeError(`${where} must be a bigint in [0, 2^64-1], got ${String(value)}`);
        }
        if (LE) buf.writeBigUInt64LE(value, base + offset);
        else buf.writeBigUInt64BE(value, base + offset);
      };
  }
  const max = MAX[kind];
  const checked = (value: RawValue | undefined): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
      throw new RangeError(`${where} must be an integer in [0, ${max}], got ${String(value)}`);
    }
    return value;
  };
  // Bytes written one at a time: the value is checked to fit, and this is
  // what Buffer's write*() do, without their own range check.
  switch (kind) {
    case 'u8':
      return (buf, base, value) => {
        buf[base + offset] = checked(value);
      };
    case 'be16':
      return (buf, base, value) => writeUint(buf, base + offset, checked(value), 2, false);
    case 'u16':
      return (buf, base, value) => writeUint(buf, base + offset, checked(value), 2, LE);
    case 'u32':
      return (buf, base, value) => writeUint(buf, base + offset, checked(value), 4, LE);
  }
}

/** `value` (< 2^32) as `bytes` bytes at `offset`, least significant first when `littleEndian`. */
function writeUint(buf: Buffer, offset: number, value: number, bytes: 2 | 4, littleEndian: boolean): void {
  for (let i = 0; i < bytes; i++) {
    buf[littleEndian ? offset + i : offset + bytes - 1 - i] = value & 0xff;
    value >>>= 8;
  }
}

/**
 * Writes a dotted quad's four bytes at `offset`; false (nothing promised
 * about the bytes) for text that is not one. Accepts exactly what
 * net.isIPv4() does: four decimal parts of 0…255, no leading zeros.
 */
function writeIpv4(buf: Buffer, offset: number, text: string): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || part > 3) return false;
      buf[offset + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= ZERO && c <= ZERO + 9) {
      // "0" is a part; "01" is not.
      if (digits === 1 && value === 0) return false;
      value = value * 10 + (c - ZERO);
      if (++digits > 3 || value > 255) return false;
    } else return false;
  }
  return part === 4;
}

const DOT = 0x2e;
const ZERO = 0x30;

function readField(buf: Buffer, field: Field): RawValue {
  const { kind, offset } = field;
  switch (kind) {
    case 'ipv4':
      return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
    case 'ipv6':
      return ipaddr.fromByteArray([...buf.subarray(offset, offset + 16)]).toString();
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

/** `buf` has `size` bytes from `offset` on (encodeInto() writes nothing outside them). */
function checkRoom(where: string, buf: Buffer, offset: number, size: number): void {
  if (!Buffer.isBuffer(buf)) throw new TypeError(`${where}: the target must be a Buffer`);
  if (!Number.isInteger(offset) || offset < 0 || offset + size > buf.length) throw new RangeError(`${where}: ${size} bytes at ${offset} do not fit a Buffer of ${buf.length}`);
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
  // Padding is left as Buffer.alloc() zeroed it (or fill() in encodeInto()).
  const members = fields.filter((f) => f.kind !== 'pad').map((f) => ({ name: f.name, write: fieldWriter(f, `${cType}.${f.name}`) }));
  const write = (value: T, buf: Buffer, base: number) => {
    const raw = toRaw(value);
    for (const m of members) m.write(buf, base, raw[m.name]);
  };
  return Object.freeze({
    cType,
    size,
    fields: Object.freeze(layouts),
    encode(value: T): Buffer {
      const buf = Buffer.alloc(size);
      write(value, buf, 0);
      return buf;
    },
    encodeInto(value: T, buf: Buffer, offset: number): void {
      checkRoom(`struct ${cType}`, buf, offset, size);
      buf.fill(0, offset, offset + size);
      write(value, buf, offset);
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
  const write = fieldWriter(field, cType);
  return Object.freeze({
    cType,
    size: field.size,
    fields: Object.freeze([]),
    encode(value: T): Buffer {
      const buf = Buffer.alloc(field.size);
      write(buf, 0, value);
      return buf;
    },
    encodeInto(value: T, buf: Buffer, offset: number): void {
      checkRoom(cType, buf, offset, field.size);
      write(buf, offset, value);
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
