// What attachTc() returns: a tcx link or a cls_bpf filter, each knowing how
// to remove itself. detach() is idempotent, and an interface or namespace
// that is already gone counts as detached (nothing of ours is left there).
import { closeSync } from 'node:fs';

import { native } from '../native/binding.js';
import { BpfError, wrapNative, wrapNativeAsync } from './errors.js';
import { pinFd, unpinPath } from './pin.js';

export interface AttachPoint {
  ifindex: number;
  direction: 'ingress' | 'egress';
  /** The namespace's name; undefined: the process's own. */
  netnsName: string | undefined;
  programName: string;
}

function describe(at: AttachPoint): string {
  return `program ${at.programName} on ifindex ${at.ifindex} ${at.direction} in netns ${at.netnsName ?? '(current)'}`;
}

interface AttachmentBase extends AttachPoint {
  readonly attached: boolean;
  /** Removes the program from the hook; idempotent. */
  detach(): Promise<void>;
}

/**
 * A tcx link (Linux 6.6+): the program runs until the link is detached, or
 * until every fd and pin of it is gone (an unpinned link ends with this
 * process).
 */
export class TcxAttachment implements AttachmentBase {
  readonly mode = 'tcx' as const;
  readonly ifindex: number;
  readonly direction: 'ingress' | 'egress';
  readonly netnsName: string | undefined;
  readonly programName: string;
  #linkFd: number;
  #pinPath: string | undefined;

  constructor(at: AttachPoint, linkFd: number) {
    ({ ifindex: this.ifindex, direction: this.direction, netnsName: this.netnsName, programName: this.programName } = at);
    this.#linkFd = linkFd;
  }

  get attached(): boolean {
    return this.#linkFd >= 0;
  }

  /** The link's fd (-1 once detached). */
  get linkFd(): number {
    return this.#linkFd;
  }

  /** Pins the link, so the attachment outlives this process. */
  pin(path: string): void {
    pinFd(this.#linkFd, path, describe(this));
    this.#pinPath = path;
  }

  /**
   * Closes this process's fd on the link without detaching it: a pinned link
   * stays attached (the pin holds it), so a short-lived process such as a CNI
   * call can attach, pin and exit. Unpinned, the link ends here.
   */
  release(): void {
    if (this.#linkFd < 0) return;
    native.closeFd(this.#linkFd);
    this.#linkFd = -1;
  }

  async detach(): Promise<void> {
    if (this.#linkFd < 0) return;
    const fd = this.#linkFd;
    this.#linkFd = -1;
    // Detaching the link stops the program even while a pin holds it.
    wrapNative(() => native.bpfLinkDetach(fd, describe(this)));
    if (this.#pinPath !== undefined) unpinPath(this.#pinPath);
    this.#pinPath = undefined;
  }
}

/**
 * A cls_bpf direct-action filter under a clsact qdisc. Unlike a tcx link it
 * stays after this process exits, until detach() (or the interface goes).
 * It holds its own fd on the namespace until detach().
 */
export class TcAttachment implements AttachmentBase {
  readonly mode = 'tc' as const;
  readonly ifindex: number;
  readonly direction: 'ingress' | 'egress';
  readonly netnsName: string | undefined;
  readonly programName: string;
  /** The filter's handle and priority, as `tc filter show` lists them. */
  readonly handle: number;
  readonly priority: number;
  /** Set when 'auto' mode tried tcx first: the errno that made it fall back. */
  readonly tcxErrno: number | undefined;
  #nsFd: number;
  #attached = true;

  constructor(at: AttachPoint, handle: number, priority: number, nsFd: number, tcxErrno?: number) {
    ({ ifindex: this.ifindex, direction: this.direction, netnsName: this.netnsName, programName: this.programName } = at);
    this.handle = handle;
    this.priority = priority;
    this.#nsFd = nsFd;
    this.tcxErrno = tcxErrno;
  }

  get attached(): boolean {
    return this.#attached;
  }

  /**
   * Equivalent to: `tc filter del dev X ingress handle H prio P bpf`. The
   * clsact qdisc stays: other filters may share it.
   */
  async detach(): Promise<void> {
    if (!this.#attached) return;
    try {
      await wrapNativeAsync(() =>
        native.bpfTcDetach(this.#nsFd, this.netnsName ?? '', this.ifindex, this.direction, this.handle, this.priority),
      );
    } catch (e) {
      // ENOENT: the filter is gone; ENODEV/EINVAL: so is the interface (and its clsact).
      if (!(e instanceof BpfError && ['ENOENT', 'ENODEV', 'EINVAL'].includes(e.code))) throw e;
    }
    this.#attached = false;
    if (this.#nsFd >= 0) closeSync(this.#nsFd);
    this.#nsFd = -1;
  }
}

export type Attachment = TcxAttachment | TcAttachment;
