// Who owns a program's or map's fd. Fds of a loaded collection belong to it
// (closing the collection closes them all, like cilium/ebpf); an object
// opened from a pin owns its fd and is closed on its own.
import { native } from '../native/binding.js';
import { BpfError, bpfError, wrapNative } from './errors.js';

export interface Owner {
  readonly closed: boolean;
}

export class FdHandle {
  readonly #fd: number;
  readonly #label: string;
  readonly #owner: Owner | undefined;
  #closed = false;

  constructor(fd: number, label: string, owner?: Owner) {
    this.#fd = fd;
    this.#label = label;
    this.#owner = owner;
  }

  /** The fd; throws EBADF once it (or its collection) is closed. */
  get fd(): number {
    if (this.closed) {
      const why = this.#owner?.closed ? 'its collection is closed' : 'it is closed';
      throw bpfError(BpfError, 'EBADF', 'fd', this.#label, why);
    }
    return this.#fd;
  }

  get closed(): boolean {
    return this.#closed || (this.#owner?.closed ?? false);
  }

  /** Whether close() releases the fd (false: the collection does). */
  get owned(): boolean {
    return this.#owner === undefined;
  }

  /** Closes an owned fd; idempotent. A collection's fd is left to it. */
  close(): void {
    if (this.#owner !== undefined || this.#closed) return;
    this.#closed = true;
    wrapNative(() => native.closeFd(this.#fd));
  }
}
