// Writes to one map as they are decided, a BPF_MAP_UPDATE_BATCH per chunk:
// a big apply() (a daemon's first sync: 200k entries) then never holds
// more than a chunk of encoded entries, which would otherwise live long
// enough to be promoted to V8's old space and swell the heap.
import type { MapLike } from './reconcile.js';

/** Entries per BPF_MAP_UPDATE_BATCH call. */
export const BATCH_CHUNK = 1024;

export class MapWriter {
  readonly #map: MapLike;
  #pending: Array<[Buffer, Buffer]> = [];

  constructor(map: MapLike) {
    this.#map = map;
  }

  /** Queues one entry; the chunk is written once full. Entries reach the map in the order given. */
  push(key: Buffer, value: Buffer): void {
    this.#pending.push([key, value]);
    if (this.#pending.length === BATCH_CHUNK) this.flush();
  }

  /** Writes what is queued: one update for a single entry, a batch for more. */
  flush(): void {
    const entries = this.#pending;
    if (entries.length === 0) return;
    this.#pending = [];
    if (entries.length === 1) this.#map.update(entries[0]![0], entries[0]![1], 'any');
    else this.#map.updateBatch(entries);
  }
}
