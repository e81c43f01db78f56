// An in-memory map with BpfMap's verbs, for dry runs and tests: the
// Reconciler can diff against it and write to it exactly as to a kernel map.
// A hash by default; an array (BPF_MAP_TYPE_ARRAY, as the backends maps
// are) when asked, with the kernel's rules: every index below maxEntries
// exists, all zero until written, none can be deleted, and iteration
// yields them all.
import type { UpdateMode } from '../bpf/map.js';
import type { MapLike } from './reconcile.js';

export interface MemoryMapOptions {
  /** The capacity the map reports (BpfMap.maxEntries); an array's number of slots. A hash is not held to it. */
  maxEntries?: number;
  /** An array of maxEntries slots, keyed by a __u32 index (keySize 4, valueSize given). */
  array?: boolean;
}

export class MemoryMap implements MapLike {
  /** A hash's entries by hex(key). */
  readonly #entries = new Map<string, [Buffer, Buffer]>();
  /** An array's written slots by index. */
  readonly #slots = new Map<number, Buffer>();
  /** libbpf's type name, as BpfMap.type. */
  readonly type: 'hash' | 'array';
  readonly maxEntries?: number;
  /** An array's unwritten slot. */
  readonly #zero: Buffer | undefined;

  /** `keySize` / `valueSize`, when given, are checked like the kernel's. */
  constructor(
    readonly name: string,
    readonly keySize?: number,
    readonly valueSize?: number,
    options: MemoryMapOptions = {},
  ) {
    this.type = options.array === true ? 'array' : 'hash';
    if (options.maxEntries !== undefined) this.maxEntries = options.maxEntries;
    if (this.type === 'array') {
      if (keySize !== 4 || valueSize === undefined || options.maxEntries === undefined) {
        throw new TypeError(`map ${name}: an array needs a 4-byte key, a value size and maxEntries`);
      }
      this.#zero = Buffer.alloc(valueSize);
    }
  }

  /** Entries held: a hash's, or every slot of an array. */
  get size(): number {
    return this.#zero !== undefined ? this.maxEntries! : this.#entries.size;
  }

  lookup(key: Buffer): Buffer | undefined {
    this.#check('key', key, this.keySize);
    if (this.#zero !== undefined) {
      const i = key.readUInt32LE(0);
      return i < this.maxEntries! ? Buffer.from(this.#slots.get(i) ?? this.#zero) : undefined;
    }
    const value = this.#entries.get(key.toString('hex'))?.[1];
    return value === undefined ? undefined : Buffer.from(value);
  }

  update(key: Buffer, value: Buffer, mode: UpdateMode = 'any'): void {
    this.#check('key', key, this.keySize);
    this.#check('value', value, this.valueSize);
    const id = key.toString('hex');
    if (this.#zero !== undefined) {
      const i = key.readUInt32LE(0);
      if (i >= this.maxEntries!) throw new RangeError(`map ${this.name}: index ${i} is past its ${this.maxEntries} slots (E2BIG)`);
      if (mode === 'noexist') throw new Error(`map ${this.name}: key ${id} exists`);
      this.#slots.set(i, Buffer.from(value));
      return;
    }
    const exists = this.#entries.has(id);
    if (mode === 'noexist' && exists) throw new Error(`map ${this.name}: key ${id} exists`);
    if (mode === 'exist' && !exists) throw new Error(`map ${this.name}: key ${id} does not exist`);
    this.#entries.set(id, [Buffer.from(key), Buffer.from(value)]);
  }

  delete(key: Buffer): boolean {
    this.#check('key', key, this.keySize);
    if (this.#zero !== undefined) throw new Error(`map ${this.name}: an array's slots cannot be deleted (EINVAL)`);
    return this.#entries.delete(key.toString('hex'));
  }

  *keys(): Generator<Buffer, void, undefined> {
    for (const [key] of this.entries()) yield key;
  }

  *entries(): Generator<[Buffer, Buffer], void, undefined> {
    if (this.#zero === undefined) {
      for (const [key, value] of this.#entries.values()) yield [Buffer.from(key), Buffer.from(value)];
      return;
    }
    for (let i = 0; i < this.maxEntries!; i++) {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(i);
      yield [key, this.lookup(key)!];
    }
  }

  /**
   * entries() as BpfMap.lookupBatch() gives them: with `keep`, only those it
   * says yes to, each shown it before a copy is made (so scanning an
   * array's unwritten slots allocates nothing).
   */
  lookupBatch(_chunk?: number, keep?: (key: Buffer, value: Buffer) => boolean): Array<[Buffer, Buffer]> {
    if (this.#zero === undefined) return [...this.entries()].filter(([key, value]) => keep === undefined || keep(key, value));
    const out: Array<[Buffer, Buffer]> = [];
    const key = Buffer.alloc(4);
    for (let i = 0; i < this.maxEntries!; i++) {
      key.writeUInt32LE(i);
      const value = this.#slots.get(i) ?? this.#zero;
      if (keep === undefined || keep(key, value)) out.push([Buffer.from(key), Buffer.from(value)]);
    }
    return out;
  }

  updateBatch(entries: Iterable<readonly [Buffer, Buffer]>): number {
    let n = 0;
    for (const [key, value] of entries) {
      this.update(key, value, 'any');
      n++;
    }
    return n;
  }

  #check(what: string, b: Buffer, size: number | undefined): void {
    if (size !== undefined && b.length !== size) throw new RangeError(`map ${this.name}: ${what} is ${b.length} bytes, not ${size}`);
  }
}
