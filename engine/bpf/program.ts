// A live (loaded, verified) BPF program: its fd for attaching, pinning, and
// BPF_PROG_TEST_RUN to unit-test it on crafted input without attaching it.
import { native, type NativeProgInfo } from '../native/binding.js';
import { wrapNativeAsync } from './errors.js';
import { PinnableFd, type FdOptions } from './pinnable.js';
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

export class BpfProgram extends PinnableFd {
  readonly name: string;
  /** libbpf's type name: 'sched_cls', 'xdp', ... */
  readonly type: string;
  readonly id: number;
  /** The kernel's tag (hash of the translated instructions), hex. */
  readonly tag: string;

  /** Use BpfCollection.program() or BpfProgram.openPinned(); not for direct use. */
  constructor(fd: number, info: ProgramInfo, options: FdOptions = {}) {
    super(fd, `program ${info.name}`, options);
    this.name = info.name;
    this.type = info.type;
    this.id = info.id;
    this.tag = info.tag;
  }

  /** Opens the program pinned at `path`; the result owns its fd: close() it. */
  static openPinned(path: string): BpfProgram {
    return PinnableFd.fromPin(path, (fd, label) => native.bpfProgInfo(fd, label), (fd, info) => new BpfProgram(fd, info, { pinPath: path }));
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
      native.bpfProgTestRun(fd, data, dataOutSize, ctx ?? null, repeat, this.label),
    );
    return { retval: result.retval | 0, duration: result.duration, data: result.data };
  }
}
