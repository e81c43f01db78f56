// An in-memory hash map with BpfMap's verbs, for dry runs and tests: the
// Reconciler can diff against it and write to it exactly as to a kernel map.
import type { UpdateMode } from '../bpf/map.js';
import type { MapLike } from './reconcile.js';

export class MemoryMap implements MapLike {
  readonly #entries = new Map<string, [Buffer, Buffer]>();

  /** `keySize` / `valueSize`, when given, are checked like the kernel's. */
  constructor(
    readonly name: string,
    readonly keySize?: number,
    readonly valueSize?: number,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  lookup(key: Buffer): Buffer | undefined {
    this.#check('key', key, this.keySize);
    const value = this.#entries.get(key.toString('hex'))?.[1];
    return value === undefined ? undefined : Buffer.from(value);
  }

  update(key: Buffer, value: Buffer, mode: UpdateMode = 'any'): void {
    this.#check('key', key, this.keySize);
    this.#check('value', value, this.valueSize);
    const id = key.toString('hex');
    if (mode === 'noexist' && this.#entries.has(id)) throw new Error(`map ${this.name}: key ${id} exists`);
    if (mode === 'exist' && !this.#entries.has(id)) throw new Error(`map ${this.name}: key ${id} does not exist`);
    this.#entries.set(id, [Buffer.from(key), Buffer.from(value)]);
  }

  delete(key: Buffer): boolean {
    this.#check('key', key, this.keySize);
    return this.#entries.delete(key.toString('hex'));
  }

  *keys(): Generator<Buffer, void, undefined> {
    for (const [key] of this.#entries.values()) yield Buffer.from(key);
  }

  *entries(): Generator<[Buffer, Buffer], void, undefined> {
    for (const [key, value] of this.#entries.values()) yield [Buffer.from(key), Buffer.from(value)];
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
