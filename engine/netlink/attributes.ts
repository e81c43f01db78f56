// Netlink attributes (struct nlattr): 4-byte aligned type-length-value
// records, possibly nested. Encoding builds a Buffer; decoding walks one.

const NLA_HDRLEN = 4;
const NLA_F_NESTED = 1 << 15;
const NLA_F_NET_BYTEORDER = 1 << 14;
const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export const align4 = (n: number): number => (n + 3) & ~3;

/** Accumulates attributes in wire order. Nested attributes are built with `nest`. */
export class AttrWriter {
  private readonly parts: Buffer[] = [];

  /** Appends raw bytes as one attribute. */
  bytes(type: number, value: Buffer | Uint8Array): this {
    const header = Buffer.alloc(NLA_HDRLEN);
    header.writeUInt16LE(NLA_HDRLEN + value.length, 0);
    header.writeUInt16LE(type, 2);
    this.parts.push(header, Buffer.from(value));
    const pad = align4(value.length) - value.length;
    if (pad > 0) this.parts.push(Buffer.alloc(pad));
    return this;
  }

  u8(type: number, value: number): this {
    return this.bytes(type, Buffer.of(value));
  }

  u16(type: number, value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value);
    return this.bytes(type, b);
  }

  /** A 16-bit value in network byte order (ports). */
  be16(type: number, value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    return this.bytes(type, b);
  }

  u32(type: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    return this.bytes(type, b);
  }

  s32(type: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    return this.bytes(type, b);
  }

  /** A NUL-terminated string, as the kernel expects for names. */
  string(type: number, value: string): this {
    return this.bytes(type, Buffer.from(`${value}\0`, 'utf8'));
  }

  /** A nested attribute whose payload is written by `build`. */
  nest(type: number, build: (w: AttrWriter) => void): this {
    const inner = new AttrWriter();
    build(inner);
    return this.bytes(type | NLA_F_NESTED, inner.toBuffer());
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Decoded attributes: the last value of each type, plus all values in order. */
export class Attrs {
  constructor(readonly list: ReadonlyArray<readonly [type: number, value: Buffer]>) {}

  static parse(buf: Buffer, offset = 0, end = buf.length): Attrs {
    const list: Array<[number, Buffer]> = [];
    let pos = offset;
    while (pos + NLA_HDRLEN <= end) {
      const len = buf.readUInt16LE(pos);
      const type = buf.readUInt16LE(pos + 2) & NLA_TYPE_MASK;
      if (len < NLA_HDRLEN || pos + len > end) break; // truncated: stop rather than misread
      list.push([type, buf.subarray(pos + NLA_HDRLEN, pos + len)]);
      pos += align4(len);
    }
    return new Attrs(list);
  }

  get(type: number): Buffer | undefined {
    for (let i = this.list.length - 1; i >= 0; i--) {
      const entry = this.list[i]!;
      if (entry[0] === type) return entry[1];
    }
    return undefined;
  }

  has(type: number): boolean {
    return this.get(type) !== undefined;
  }

  all(type: number): Buffer[] {
    return this.list.filter(([t]) => t === type).map(([, v]) => v);
  }

  nested(type: number): Attrs | undefined {
    const v = this.get(type);
    return v === undefined ? undefined : Attrs.parse(v);
  }

  u8(type: number): number | undefined {
    return this.get(type)?.readUInt8(0);
  }

  u16(type: number): number | undefined {
    return this.get(type)?.readUInt16LE(0);
  }

  be16(type: number): number | undefined {
    return this.get(type)?.readUInt16BE(0);
  }

  u32(type: number): number | undefined {
    return this.get(type)?.readUInt32LE(0);
  }

  s32(type: number): number | undefined {
    return this.get(type)?.readInt32LE(0);
  }

  string(type: number): string | undefined {
    const v = this.get(type);
    if (v === undefined) return undefined;
    const nul = v.indexOf(0);
    return v.toString('utf8', 0, nul === -1 ? v.length : nul);
  }
}
