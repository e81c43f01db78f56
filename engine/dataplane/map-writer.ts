// Writes to one map as they are decided, a BPF_MAP_UPDATE_BATCH per chunk:
// a big apply() (a daemon's first sync: 200k entries) then never holds
// more than a chunk of encoded entries, which would otherwise live long
// enough to be promoted to V8's old space and swell the heap.
//
// Entries given by codec and value (add()) are encoded straight into the
// chunk: one Buffer of keys and one of values, kept from chunk to chunk
// and handed to the map whole (MapLike.updatePacked) — no Buffer, pair or
// copy per entry, which were most of what a first sync allocated.
import type { Codec } from './cstruct.js';
import type { MapLike } from './reconcile.js';

/** Entries per BPF_MAP_UPDATE_BATCH call. */
export const BATCH_CHUNK = 1024;

/** Room for this many entries first: a sync that changes a few entries makes small buffers. */
const FIRST_ROOM = 16;

interface Packed {
  keySize: number;
  valueSize: number;
  keys: Buffer;
  values: Buffer;
  count: number;
}

export class MapWriter {
  readonly #map: MapLike;
  #pending: Array<[Buffer, Buffer]> = [];
  #packed: Packed | undefined;

  constructor(map: MapLike) {
    this.#map = map;
  }

  /** Queues one entry; the chunk is written once full. Entries reach the map in the order given. */
  push(key: Buffer, value: Buffer): void {
    this.#flushPacked();
    this.#pending.push([key, value]);
    if (this.#pending.length === BATCH_CHUNK) this.#flushPending();
  }

  /** push() of `keyCodec.encode(key)` and `valueCodec.encode(value)`, encoded into the chunk itself. */
  add<K, V>(keyCodec: Codec<K>, key: K, valueCodec: Codec<V>, value: V): void {
    this.#flushPending();
    let p = this.#packed;
    if (p === undefined || p.keySize !== keyCodec.size || p.valueSize !== valueCodec.size) {
      this.#flushPacked();
      p = this.#packed = { keySize: keyCodec.size, valueSize: valueCodec.size, keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0 };
    }
    if (p.count * p.keySize === p.keys.length) {
      const room = Math.min(BATCH_CHUNK, Math.max(FIRST_ROOM, p.count * 4));
      p.keys = grown(p.keys, room * p.keySize);
      p.values = grown(p.values, room * p.valueSize);
    }
    keyCodec.encodeInto(key, p.keys, p.count * p.keySize);
    valueCodec.encodeInto(value, p.values, p.count * p.valueSize);
    if (++p.count === BATCH_CHUNK) this.#flushPacked();
  }

  /** Writes what is queued: one update for a single entry, a batch for more. */
  flush(): void {
    this.#flushPending();
    this.#flushPacked();
  }

  #flushPending(): void {
    const entries = this.#pending;
    if (entries.length === 0) return;
    this.#pending = [];
    if (entries.length === 1) this.#map.update(entries[0]![0], entries[0]![1], 'any');
    else this.#map.updateBatch(entries);
  }

  #flushPacked(): void {
    const p = this.#packed;
    if (p === undefined || p.count === 0) return;
    const n = p.count;
    p.count = 0;
    const keys = p.keys.subarray(0, n * p.keySize);
    const values = p.values.subarray(0, n * p.valueSize);
    // The chunk's buffers are written over next: a map that keeps what it is given gets copies.
    const entry = (i: number): [Buffer, Buffer] => [
      Buffer.from(keys.subarray(i * p.keySize, (i + 1) * p.keySize)),
      Buffer.from(values.subarray(i * p.valueSize, (i + 1) * p.valueSize)),
    ];
    if (n === 1) this.#map.update(...entry(0), 'any');
    else if (this.#map.updatePacked !== undefined) this.#map.updatePacked(keys, values, n);
    else this.#map.updateBatch(Array.from({ length: n }, (_, i) => entry(i)));
  }
}

/** `buf`'s bytes in a Buffer of `size` (the rest zero). */
function grown(buf: Buffer, size: number): Buffer {
  const out = Buffer.alloc(size);
  buf.copy(out);
  return out;
}
