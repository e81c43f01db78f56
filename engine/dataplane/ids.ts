// Stable numeric ids for string keys: backend ids ("10.0.0.5:8080/tcp") and
// rev-NAT indices ("10.96.0.10:53/udp"). An id keeps its key until released
// and is handed out again only after that — and as late as possible: a cursor
// walks the range round-robin, so a released id is reused only once every
// other free id has been, which gives conntrack entries that still name it
// the most time to expire. The tables are rebuilt from the maps after a
// restart with restore(), so nothing is renumbered.

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
  readonly #byId = new Map<number, string>();
  #cursor: number;

  /**
   * `what` names the ids in errors ("backend id"); ids run from `min` to `max`
   * inclusive (0 is best kept out: the datapath reads it as "none").
   */
  constructor(
    readonly what: string,
    readonly min: number,
    readonly max: number,
  ) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) {
      throw new RangeError(`${what}: invalid id range ${min}..${max}`);
    }
    this.#cursor = min;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** The id of `key`, if it has one. */
  get(key: string): number | undefined {
    return this.#byKey.get(key);
  }

  /** The key bound to `id`, if any. */
  keyOf(id: number): string | undefined {
    return this.#byId.get(id);
  }

  /** The id of `key`, binding a free one first when it has none. */
  acquire(key: string): number {
    const existing = this.#byKey.get(key);
    if (existing !== undefined) return existing;
    const span = this.max - this.min + 1;
    if (this.#byId.size >= span) throw new IdsExhaustedError(`${this.what}: all ${span} ids are in use, none for ${key}`);
    let id = this.#cursor;
    while (this.#byId.has(id)) id = this.#after(id);
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
    const keyOfId = this.#byId.get(id);
    if (idOfKey === id) return;
    if (idOfKey !== undefined) throw new IdConflictError(`${key} has ${this.what}s ${idOfKey} and ${id}`);
    if (keyOfId !== undefined) throw new IdConflictError(`${this.what} ${id} is bound to both ${keyOfId} and ${key}`);
    this.#bind(key, id);
    // New ids continue after the highest restored one.
    if (id >= this.#cursor) this.#cursor = this.#after(id);
  }

  /** Frees the id of `key`; false when it had none. */
  release(key: string): boolean {
    const id = this.#byKey.get(key);
    if (id === undefined) return false;
    this.#byKey.delete(key);
    this.#byId.delete(id);
    return true;
  }

  /** Every [key, id], in binding order. */
  entries(): IterableIterator<[string, number]> {
    return this.#byKey.entries();
  }

  #bind(key: string, id: number): void {
    this.#byKey.set(key, id);
    this.#byId.set(id, key);
  }

  #after(id: number): number {
    return id === this.max ? this.min : id + 1;
  }
}
