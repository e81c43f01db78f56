// A live BPF map: lookups, updates, deletes, iteration and batches on raw
// key/value Buffers. Decoding the bytes is the caller's business; this class
// only guarantees every Buffer has exactly the size the kernel will copy.
import { native, type NativeMapInfo } from '../native/binding.js';
import { possibleCpus } from './cpus.js';
import { BpfError, KeyExistsError, KeyNotFoundError, wrapNative } from './errors.js';
import { PinnableFd, type FdOptions } from './pinnable.js';
import { checkBuffer, checkInteger, checkOneOf } from './validate.js';

export type MapInfo = NativeMapInfo;

/** BPF_ANY: create or replace; BPF_NOEXIST: create only; BPF_EXIST: replace only. */
export type UpdateMode = 'any' | 'noexist' | 'exist';
const UPDATE_MODES: readonly UpdateMode[] = ['any', 'noexist', 'exist'];

// Map types whose values hold one slot per possible CPU.
const PER_CPU_TYPES = new Set(['percpu_array', 'percpu_hash', 'lru_percpu_hash', 'percpu_cgroup_storage']);

const DEFAULT_BATCH = 64;
/** At most this many bytes of keys and values per BPF_MAP_LOOKUP_BATCH (a Maglev table is 64 KiB). */
const BATCH_BYTES = 1 << 20;

/** ENOENT / EEXIST from an update mean something callers branch on. */
function keyError(e: unknown): unknown {
  if (!(e instanceof BpfError) || (e.code !== 'ENOENT' && e.code !== 'EEXIST')) return e;
  const Class = e.code === 'ENOENT' ? KeyNotFoundError : KeyExistsError;
  return new Class(e.message, e, { cause: e });
}

export class BpfMap extends PinnableFd {
  readonly name: string;
  /** libbpf's type name: 'array', 'hash', 'percpu_array', ... */
  readonly type: string;
  readonly id: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** True for per-CPU maps: values hold one slot per possible CPU. */
  readonly perCpu: boolean;
  /**
   * Bytes of the Buffer lookup() returns and update() takes: valueSize, or
   * for per-CPU maps round_up(valueSize, 8) × possible CPUs.
   */
  readonly valueBufferSize: number;
  /**
   * What lookupBatch() reads into, kept from call to call: it copies out
   * what it finds, so they are free again when it returns. A daemon scans
   * its conntrack maps on every sync that removes a backend; buffers of
   * hundreds of kB made (and zeroed) each time churned the C heap, which
   * grew with them.
   */
  #batch: { size: number; cursors: [Buffer, Buffer]; keys: Buffer; values: Buffer } | undefined;

  /** Use BpfCollection.map() or BpfMap.openPinned(); not for direct use. */
  constructor(fd: number, info: MapInfo, options: FdOptions = {}) {
    super(fd, `map ${info.name}`, options);
    this.name = info.name;
    this.type = info.type;
    this.id = info.id;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.perCpu = PER_CPU_TYPES.has(info.type);
    this.valueBufferSize = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * possibleCpus() : info.valueSize;
  }

  /** Opens the map pinned at `path`; the result owns its fd: close() it. */
  static openPinned(path: string): BpfMap {
    return PinnableFd.fromPin(path, (fd, label) => native.bpfMapInfo(fd, label), (fd, info) => new BpfMap(fd, info, { pinPath: path }));
  }


  /** The value stored under `key`, or undefined when there is none. */
  lookup(key: Buffer): Buffer | undefined {
    checkBuffer('key', key, this.keySize);
    const value = Buffer.alloc(this.valueBufferSize);
    const found = wrapNative(() => native.bpfMapLookup(this.fd, key, value, this.label));
    return found ? value : undefined;
  }

  /**
   * Stores `value` under `key`. Throws KeyNotFoundError for mode 'exist' on
   * a missing key and KeyExistsError for mode 'noexist' on a present one.
   */
  update(key: Buffer, value: Buffer, mode: UpdateMode = 'any'): void {
    checkBuffer('key', key, this.keySize);
    checkBuffer('value', value, this.valueBufferSize);
    checkOneOf('mode', mode, UPDATE_MODES);
    try {
      wrapNative(() => native.bpfMapUpdate(this.fd, key, value, native.bpfUpdateFlags[mode], this.label));
    } catch (e) {
      throw keyError(e);
    }
  }

  /** Removes `key`; false when it was not there. (Array entries cannot be deleted: EINVAL.) */
  delete(key: Buffer): boolean {
    checkBuffer('key', key, this.keySize);
    return wrapNative(() => native.bpfMapDelete(this.fd, key, this.label));
  }

  /**
   * Every key, through BPF_MAP_GET_NEXT_KEY. As with the kernel's iteration,
   * a hash map changed meanwhile may yield a key twice or miss one.
   */
  *keys(): Generator<Buffer, void, undefined> {
    let previous: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const prev = previous;
      if (!wrapNative(() => native.bpfMapNextKey(this.fd, prev, next, this.label))) return;
      yield next;
      previous = next;
    }
  }

  /** Every [key, value]; keys deleted during iteration are skipped. */
  *entries(): Generator<[Buffer, Buffer], void, undefined> {
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value !== undefined) yield [key, value];
    }
  }

  [Symbol.iterator](): Generator<[Buffer, Buffer], void, undefined> {
    return this.entries();
  }

  /**
   * Creates or replaces many entries with one BPF_MAP_UPDATE_BATCH (Linux
   * 5.6+); returns how many. The kernel has no 'noexist'/'exist' for batches.
   * On a partial failure the error's detail says how many were written.
   */
  updateBatch(entries: Iterable<readonly [Buffer, Buffer]>): number {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    for (const [key, value] of entries) {
      checkBuffer(`key #${keys.length}`, key, this.keySize);
      checkBuffer(`value #${values.length}`, value, this.valueBufferSize);
      keys.push(key);
      values.push(value);
    }
    if (keys.length === 0) return 0;
    return this.updatePacked(Buffer.concat(keys), Buffer.concat(values), keys.length);
  }

  /**
   * updateBatch() of `count` entries given packed: `keys` holds their keys
   * end to end (count × keySize bytes), `values` their values. No Buffer
   * per entry is made or copied.
   */
  updatePacked(keys: Buffer, values: Buffer, count: number): number {
    checkInteger('count', count, 0, 0xffff_ffff);
    checkBuffer('keys', keys, count * this.keySize);
    checkBuffer('values', values, count * this.valueBufferSize);
    if (count === 0) return 0;
    const fd = this.fd;
    return wrapNative(() => native.bpfMapUpdateBatch(fd, keys, values, count, 0, this.label));
  }

  /**
   * Every [key, value] through BPF_MAP_LOOKUP_BATCH, `chunk` entries per
   * syscall. Faster than entries() for big maps; needs Linux 5.6+. With
   * `keep`, only the entries it says yes to are copied out: it sees each
   * key and value in the batch's buffers, valid during the call only (an
   * array's unused slots are skipped so).
   */
  lookupBatch(chunk: number = DEFAULT_BATCH, keep?: (key: Buffer, value: Buffer) => boolean): Array<[Buffer, Buffer]> {
    checkInteger('chunk', chunk, 1, 1 << 20);
    const result: Array<[Buffer, Buffer]> = [];
    let cursor: Buffer | null = null;
    let size = Math.max(1, Math.min(chunk, Math.floor(BATCH_BYTES / (this.keySize + this.valueBufferSize))));
    for (let turn = 0; ; turn++) {
      const { cursors, keys, values } = this.#batchBuffers(size);
      // The cursor read from (the last call's) and the one written are not the same Buffer.
      const next = cursors[turn % 2]!;
      let batch: { count: number; done: boolean };
      try {
        const from = cursor;
        batch = wrapNative(() => native.bpfMapLookupBatch(this.fd, from, next, keys, values, size, this.label));
      } catch (e) {
        // A hash bucket holds more entries than `size`: retry it with room.
        if (e instanceof BpfError && e.code === 'ENOSPC' && size < this.maxEntries) {
          size = Math.min(size * 2, Math.max(this.maxEntries, 1));
          continue;
        }
        throw e;
      }
      for (let i = 0; i < batch.count; i++) {
        const key = keys.subarray(i * this.keySize, (i + 1) * this.keySize);
        const value = values.subarray(i * this.valueBufferSize, (i + 1) * this.valueBufferSize);
        if (keep === undefined || keep(key, value)) result.push([Buffer.from(key), Buffer.from(value)]);
      }
      if (batch.done) return result;
      cursor = next;
    }
  }

  /** lookupBatch()'s buffers for `size` entries (see #batch). */
  #batchBuffers(size: number): { cursors: [Buffer, Buffer]; keys: Buffer; values: Buffer } {
    if (this.#batch?.size === size) return this.#batch;
    // The kernel's batch cursor is a u32 bucket for hash maps and a key for
    // the generic (array) implementation.
    const cursorSize = Math.max(this.keySize, 4);
    // Not zeroed: only the entries the kernel reports are read.
    this.#batch = {
      size,
      cursors: [Buffer.alloc(cursorSize), Buffer.alloc(cursorSize)],
      keys: Buffer.allocUnsafeSlow(size * this.keySize),
      values: Buffer.allocUnsafeSlow(size * this.valueBufferSize),
    };
    return this.#batch;
  }

  /** Splits a per-CPU value Buffer into one valueSize Buffer per possible CPU. */
  perCpuValues(value: Buffer): Buffer[] {
    if (!this.perCpu) throw new TypeError(`${this.label} (${this.type}) is not a per-CPU map`);
    checkBuffer('value', value, this.valueBufferSize);
    const stride = Math.ceil(this.valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let offset = 0; offset < value.length; offset += stride) out.push(value.subarray(offset, offset + this.valueSize));
    return out;
  }
}
