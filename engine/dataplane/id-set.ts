// A set of ids (integers from 0 to 2^32 - 1) as bits, in blocks of 4096
// made as ids are added and dropped when their last id goes. The ids a
// Reconciler hands out lie in a few runs (a cursor hands them out in
// order), so 100k of them take some 13 kB, where a Map keyed by id took
// megabytes (and as much again in the tables it left behind growing).

/** Ids per block: 4096 bits, 512 bytes. */
const BLOCK = 4096;

interface Block {
  bits: Uint32Array;
  count: number;
}

export class IdSet {
  readonly #blocks = new Map<number, Block>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  has(id: number): boolean {
    const block = this.#blocks.get(Math.floor(id / BLOCK));
    const i = id % BLOCK;
    return block !== undefined && (block.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  add(id: number): this {
    const n = Math.floor(id / BLOCK);
    let block = this.#blocks.get(n);
    if (block === undefined) this.#blocks.set(n, (block = { bits: new Uint32Array(BLOCK / 32), count: 0 }));
    const i = id % BLOCK;
    const bit = 1 << (i & 31);
    if ((block.bits[i >>> 5]! & bit) === 0) {
      block.bits[i >>> 5]! |= bit;
      block.count++;
      this.#size++;
    }
    return this;
  }

  /** Removes `id`; false when it was not there. */
  delete(id: number): boolean {
    const n = Math.floor(id / BLOCK);
    const block = this.#blocks.get(n);
    const i = id % BLOCK;
    const bit = 1 << (i & 31);
    if (block === undefined || (block.bits[i >>> 5]! & bit) === 0) return false;
    block.bits[i >>> 5]! &= ~bit;
    this.#size--;
    if (--block.count === 0) this.#blocks.delete(n);
    return true;
  }

  /** The ids, ascending within a block, blocks in the order they were made. */
  *[Symbol.iterator](): Generator<number> {
    for (const [n, block] of this.#blocks) {
      for (let w = 0; w < block.bits.length; w++) {
        let word = block.bits[w]!;
        while (word !== 0) {
          const low = word & -word;
          yield n * BLOCK + w * 32 + (31 - Math.clz32(low));
          word ^= low;
        }
      }
    }
  }
}
