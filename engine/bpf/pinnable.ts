// What a live map and a live program share: an fd owned by a collection or
// by the object itself, a name for errors, and a pin on bpffs.
import { native } from '../native/binding.js';
import { wrapNative } from './errors.js';
import { FdHandle, type Owner } from './fd.js';
import { openPinned, pinFd, unpinPath } from './pin.js';

export interface FdOptions {
  owner?: Owner;
  pinPath?: string;
}

export abstract class PinnableFd {
  /** `map NAME` / `program NAME`, for errors. */
  protected readonly label: string;
  readonly #handle: FdHandle;
  #pinPath: string | undefined;

  protected constructor(fd: number, label: string, options: FdOptions) {
    this.label = label;
    this.#handle = new FdHandle(fd, label, options.owner);
    this.#pinPath = options.pinPath;
  }

  /**
   * Opens the object pinned at `path` and builds it from its kernel info;
   * the result owns its fd (close() it). The fd is closed when that fails.
   */
  protected static fromPin<I, T>(path: string, info: (fd: number, label: string) => I, make: (fd: number, info: I) => T): T {
    const fd = openPinned(path);
    try {
      return make(fd, wrapNative(() => info(fd, path)));
    } catch (e) {
      native.closeFd(fd);
      throw e;
    }
  }

  get fd(): number {
    return this.#handle.fd;
  }

  get closed(): boolean {
    return this.#handle.closed;
  }

  /** Where the object is pinned, when it is. */
  get pinPath(): string | undefined {
    return this.#pinPath;
  }

  /** Pins the object at `path` on bpffs. */
  pin(path: string): void {
    pinFd(this.fd, path, this.label);
    this.#pinPath = path;
  }

  /** Removes the object's pin, if any; false when there was none. */
  unpin(): boolean {
    const path = this.#pinPath;
    this.#pinPath = undefined;
    return path !== undefined && unpinPath(path);
  }

  /** Closes an object opened from a pin; a collection's object closes with the collection. */
  close(): void {
    this.#handle.close();
  }
}
