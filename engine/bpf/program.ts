// A live (loaded, verified) BPF program: its fd for attaching, pinning, and
// BPF_PROG_TEST_RUN to unit-test it on crafted input without attaching it.
import { native, type NativeProgInfo } from '../native/binding.js';
import { wrapNative, wrapNativeAsync } from './errors.js';
import { FdHandle, type Owner } from './fd.js';
import { openPinned, pinFd, unpinPath } from './pin.js';
import { checkInteger } from './validate.js';

export type ProgramInfo = NativeProgInfo;

// Ethernet header: the least data an skb program's test run accepts.
const ETH_HLEN = 14;
// Room for programs that grow the packet (bpf_skb_adjust_room, encap).
const DEFAULT_OUT_HEADROOM = 256;

export interface TestRunOptions {
  /** Packet (skb and XDP programs start at the Ethernet header). */
  data: Buffer;
  /** Runs this many times; duration is the mean. Default 1. */
  repeat?: number;
  /** Capacity for the output packet; default data.length + 256. */
  dataOutSize?: number;
  /** Context in, e.g. a struct __sk_buff for skb programs. */
  ctx?: Buffer;
}

export interface TestRunResult {
  /**
   * The program's return value as a signed 32-bit number: tc programs return
   * signed actions (-1 is TC_ACT_UNSPEC / TCX_NEXT); XDP actions are small.
   */
  retval: number;
  /** Mean nanoseconds per run. */
  duration: number;
  /** The packet after the program ran. */
  data: Buffer;
}

export class BpfProgram {
  readonly name: string;
  /** libbpf's type name: 'sched_cls', 'xdp', ... */
  readonly type: string;
  readonly id: number;
  /** The kernel's tag (hash of the translated instructions), hex. */
  readonly tag: string;
  readonly #handle: FdHandle;
  readonly #label: string;
  #pinPath: string | undefined;

  /** Use BpfCollection.program() or BpfProgram.openPinned(); not for direct use. */
  constructor(fd: number, info: ProgramInfo, options: { owner?: Owner; pinPath?: string } = {}) {
    this.name = info.name;
    this.type = info.type;
    this.id = info.id;
    this.tag = info.tag;
    this.#label = `program ${info.name}`;
    this.#handle = new FdHandle(fd, this.#label, options.owner);
    this.#pinPath = options.pinPath;
  }

  /** Opens the program pinned at `path`; the result owns its fd: close() it. */
  static openPinned(path: string): BpfProgram {
    const fd = openPinned(path);
    try {
      const info = wrapNative(() => native.bpfProgInfo(fd, path));
      return new BpfProgram(fd, info, { pinPath: path });
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

  get pinPath(): string | undefined {
    return this.#pinPath;
  }

  /** Runs the program once (or `repeat` times) on `data` with BPF_PROG_TEST_RUN. */
  async testRun(options: TestRunOptions): Promise<TestRunResult> {
    const { data, repeat = 1, ctx } = options;
    if (!Buffer.isBuffer(data)) throw new TypeError('data must be a Buffer');
    if (this.type === 'sched_cls' || this.type === 'sched_act') {
      checkInteger('data.length', data.length, ETH_HLEN, 0xffff);
    }
    checkInteger('repeat', repeat, 1, 0x7fffffff);
    const dataOutSize = options.dataOutSize ?? data.length + DEFAULT_OUT_HEADROOM;
    checkInteger('dataOutSize', dataOutSize, 0, 0x7fffffff);
    if (ctx !== undefined && !Buffer.isBuffer(ctx)) throw new TypeError('ctx must be a Buffer');
    const fd = this.fd;
    const result = await wrapNativeAsync(() =>
      native.bpfProgTestRun(fd, data, dataOutSize, ctx ?? null, repeat, this.#label),
    );
    return { retval: result.retval | 0, duration: result.duration, data: result.data };
  }

  /** Pins the program at `path` on bpffs. */
  pin(path: string): void {
    pinFd(this.fd, path, this.#label);
    this.#pinPath = path;
  }

  /** Removes the program's pin, if any; false when there was none. */
  unpin(): boolean {
    const path = this.#pinPath;
    this.#pinPath = undefined;
    return path !== undefined && unpinPath(path);
  }

  /** Closes a program opened from a pin; a collection's program closes with it. */
  close(): void {
    this.#handle.close();
  }
}
