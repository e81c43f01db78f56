// Stable numeric ids for string keys: backend ids ("10.0.0.5:8080/tcp") and
// rev-NAT indices ("10.96.0.10:53/udp"). An id keeps its key until released
// and is handed out again only after that — and as late as possible: a cursor
// walks the range round-robin, so a released id is reused only once every
// other free id has been, which gives conntrack entries that still name it
// the most time to expire. The tables are rebuilt from the maps after a
// restart with restore(), so nothing is renumbered.
//
// Keys are looked up by a Map; ids only as bits (id-set.ts): a Map from id
// to key was megabytes at 100k backends. keysById() makes that index for a
// caller that needs it.
import { IdSet } from './id-set.js';

/** An id or key is already bound to something else (restore() from inconsistent maps). */
export class IdConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdConflictError';
  }
}

/** Every id in the range is in use. */
export class IdsExhaustedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdsExhaustedError';
  }
}

export class IdAllocator {
  readonly #byKey = new Map<string, number>();
  readonly #bound = new IdSet();
  readonly #exhausted: string | undefined;
  #cursor: number;

  /**
   * `what` names the ids in errors ("backend id"); ids run from `min` to `max`
   * inclusive (0 is best kept out: the datapath reads it as "none").
   * `exhausted`: what IdsExhaustedError adds, e.g. what bounds the range and
   * how to widen it.
   */
  constructor(
    readonly what: string,
    readonly min: number,
    readonly max: number,
    options: { exhausted?: string } = {},
  ) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) {
      throw new RangeError(`${what}: invalid id range ${min}..${max}`);
    }
    this.#cursor = min;
    this.#exhausted = options.exhausted;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** The id of `key`, if it has one. */
  get(key: string): number | undefined {
    return this.#byKey.get(key);
  }

  /** Whether `id` is bound to a key. */
  has(id: number): boolean {
    return this.#bound.has(id);
  }

  /** The key bound to each id: a pass over the bindings (there is no index by id), for a caller with many to look up. */
  keysById(): Map<number, string> {
    const keys = new Map<number, string>();
    this.#byKey.forEach((id, key) => keys.set(id, key));
    return keys;
  }

  /** The id of `key`, binding a free one first when it has none. */
  acquire(key: string): number {
    const existing = this.#byKey.get(key);
    if (existing !== undefined) return existing;
    const span = this.max - this.min + 1;
    if (this.#byKey.size >= span) {
      const more = this.#exhausted === undefined ? '' : `: ${this.#exhausted}`;
      throw new IdsExhaustedError(`${this.what}: all ${span} ids (${this.min}–${this.max}) are in use, none for ${key}${more}`);
    }
    let id = this.#cursor;
    while (this.#bound.has(id)) id = this.#after(id);
    this.#bind(key, id);
    this.#cursor = this.#after(id);
    return id;
  }

  /**
   * Binds `key` to `id` as found in a map after a restart. Binding the same
   * pair twice is fine; anything else already bound is an IdConflictError.
   */
  restore(key: string, id: number): void {
    if (!Number.isInteger(id) || id < this.min || id > this.max) {
      throw new IdConflictError(`${this.what} ${id} of ${key} is outside ${this.min}..${this.max}`);
    }
    const idOfKey = this.#byKey.get(key);
    if (idOfKey === id) return;
    if (idOfKey !== undefined) throw new IdConflictError(`${key} has ${this.what}s ${idOfKey} and ${id}`);
    if (this.#bound.has(id)) throw new IdConflictError(`${this.what} ${id} is bound to both ${this.#keyOf(id)} and ${key}`);
    this.#bind(key, id);
    // New ids continue after the highest restored one.
    if (id >= this.#cursor) this.#cursor = this.#after(id);
  }

  /** Frees the id of `key`; false when it had none. */
  release(key: string): boolean {
    const id = this.#byKey.get(key);
    if (id === undefined) return false;
    this.#byKey.delete(key);
    this.#bound.delete(id);
    return true;
  }

  /** Every [key, id], in binding order. */
  entries(): IterableIterator<[string, number]> {
    return this.#byKey.entries();
  }

  /** Frees every id `keep` says no to (a pass over the bindings that makes no [key, id] pair per binding). */
  releaseUnless(keep: (id: number) => boolean): void {
    const gone: string[] = [];
    this.#byKey.forEach((id, key) => {
      if (!keep(id)) gone.push(key);
    });
    for (const key of gone) this.release(key);
  }

  #bind(key: string, id: number): void {
    this.#byKey.set(key, id);
    this.#bound.add(id);
  }

  /** The key bound to `id` (bound: has(id)), by a search: for an error message. */
  #keyOf(id: number): string {
    for (const [key, bound] of this.#byKey) if (bound === id) return key;
    throw new Error(`${this.what} ${id} is not bound`);
  }

  #after(id: number): number {
    return id === this.max ? this.min : id + 1;
  }
}
