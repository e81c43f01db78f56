// An ELF object file as a *spec*: parsed by libbpf, not yet in the kernel.
// load() turns it into a live BpfCollection; the spec is used up by that.
//
//   const spec = BpfObject.open('build/bpf/smoke_counter.o', { pinRoot });
//   const coll = await spec.load();   // maps created + pinned, programs verified
//   try { ... coll.map('smoke_counts') ... } finally { coll.close(); }
import { native, type NativeBpfObject, type NativeMapSpec, type NativeProgramSpec } from '../native/binding.js';
import { BpfCollection } from './collection.js';
import { BpfError, bpfError, wrapNative, wrapNativeAsync } from './errors.js';
import { checkInteger, checkString } from './validate.js';

export type ProgramSpec = NativeProgramSpec;
export type MapSpec = NativeMapSpec;

export interface OpenOptions {
  /**
   * Directory on bpffs where maps declared with LIBBPF_PIN_BY_NAME are pinned
   * (and reused from, when a compatible map is already pinned there).
   * libbpf's default is /sys/fs/bpf; give each run or agent its own.
   */
  pinRoot?: string;
  /**
   * Capacities that replace the object's declared max_entries, by map name
   * (a node sized for more services than the default holds). A pinned map
   * is reused only when its capacity matches.
   */
  maxEntries?: Readonly<Record<string, number>>;
}

type State = 'open' | 'loading' | 'loaded' | 'closed';

export class BpfObject {
  readonly path: string;
  readonly pinRoot: string | undefined;
  readonly #native: NativeBpfObject;
  #state: State = 'open';

  private constructor(path: string, pinRoot: string | undefined, handle: NativeBpfObject) {
    this.path = path;
    this.pinRoot = pinRoot;
    this.#native = handle;
  }

  /** Parses the ELF object at `path` (bpf_object__open_file); nothing reaches the kernel yet. */
  static open(path: string, options: OpenOptions = {}): BpfObject {
    checkString('path', path);
    const { pinRoot } = options;
    if (pinRoot !== undefined) checkString('pinRoot', pinRoot);
    const object = new BpfObject(path, pinRoot, wrapNative(() => new native.BpfObject(path, pinRoot)));
    try {
      for (const [name, n] of Object.entries(options.maxEntries ?? {})) object.setMaxEntries(name, n);
    } catch (e) {
      object.close();
      throw e;
    }
    return object;
  }

  /** Before load(): replaces map `name`'s declared max_entries (bpf_map__set_max_entries). */
  setMaxEntries(name: string, maxEntries: number): void {
    checkInteger(`maxEntries.${name}`, maxEntries, 1, 0xffff_ffff);
    const handle = this.#usable('setMaxEntries');
    wrapNative(() => handle.setMaxEntries(name, maxEntries));
  }

  /** The programs in the file. */
  get programs(): ProgramSpec[] {
    return wrapNative(() => this.#usable('programs').programs());
  }

  /** The maps in the file, with where each will be pinned. */
  get maps(): MapSpec[] {
    return wrapNative(() => this.#usable('maps').maps());
  }

  /**
   * Creates the maps (pinning those declared so), loads and verifies every
   * program, and returns the live collection, which the caller must close().
   * On failure everything is released and the error is a BpfError; a
   * verifier rejection carries `verifierLog` and names the program.
   */
  async load(): Promise<BpfCollection> {
    const handle = this.#usable('load');
    this.#state = 'loading';
    try {
      await wrapNativeAsync(() => handle.load());
      // Kernel names are cut at 15 characters; keep libbpf's full names.
      const programs = handle.programs().filter((p) => p.autoload);
      const maps = handle.maps();
      const collection = BpfCollection.fromLoaded(this.path, handle, programs, maps);
      this.#state = 'loaded';
      return collection;
    } catch (e) {
      // libbpf cannot retry a failed load: the object is spent.
      this.#state = 'closed';
      handle.close();
      throw e;
    }
  }

  /** Releases a spec that will not be loaded; idempotent. After load() the collection owns everything. */
  close(): void {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    this.#native.close();
  }

  #usable(what: string): NativeBpfObject {
    if (this.#state !== 'open') {
      const why = this.#state === 'closed' ? 'the object is closed' : `the object is already ${this.#state}`;
      throw bpfError(BpfError, this.#state === 'closed' ? 'EBADF' : 'EALREADY', what, this.path, why);
    }
    return this.#native;
  }
}
