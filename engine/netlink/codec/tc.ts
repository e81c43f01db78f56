// struct tcmsg (20 bytes) and the TCA_* attributes of a filter, with
// cls_bpf's options (TCA_BPF_*) decoded.
import { Attrs } from '../attributes.js';
import * as C from '../constants.js';

export interface TcMsg {
  family: number;
  ifindex: number;
  handle?: number;
  parent?: number;
  /** Filters: TC_H_MAKE(priority << 16, protocol in network byte order). */
  info?: number;
}

export function encodeTcMsg(m: TcMsg): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt8(m.family, 0);
  // bytes 1-3: tcm__pad1, tcm__pad2
  b.writeInt32LE(m.ifindex, 4);
  b.writeUInt32LE(m.handle ?? 0, 8);
  b.writeUInt32LE(m.parent ?? 0, 12);
  b.writeUInt32LE(m.info ?? 0, 16);
  return b;
}

/** A tc filter as `tc filter show dev DEV ingress` lists it. */
export interface TcFilter {
  /** The device's index. */
  dev: number;
  /** The classifier: `bpf`, `u32`, `flower`… */
  kind: string;
  handle: number;
  /** `pref`. */
  priority: number;
  /** The ethertype it matches (`protocol all` is 0x0003, ETH_P_ALL). */
  protocol: number;
  /** cls_bpf's program, for kind `bpf`. */
  bpf?: {
    /** The name the loader gave it: libbpf writes `PROG:[ID]`. */
    name?: string;
    id?: number;
    tag?: string;
    directAction: boolean;
  };
}

/** Decodes one RTM_NEWTFILTER payload. */
export function decodeTcFilter(payload: Buffer): TcFilter {
  const info = payload.readUInt32LE(16);
  const attrs = Attrs.parse(payload, 20);
  const filter: TcFilter = {
    dev: payload.readInt32LE(4),
    kind: attrs.string(C.TCA_KIND) ?? '',
    handle: payload.readUInt32LE(8),
    priority: info >>> 16,
    // The low half holds the protocol as the wire has it (big-endian) in a host-order u32.
    protocol: ((info & 0xff) << 8) | ((info >>> 8) & 0xff),
  };
  const options = attrs.nested(C.TCA_OPTIONS);
  if (filter.kind === 'bpf' && options !== undefined) {
    const name = options.string(C.TCA_BPF_NAME);
    const id = options.u32(C.TCA_BPF_ID);
    const tag = options.get(C.TCA_BPF_TAG);
    filter.bpf = {
      ...(name !== undefined && { name }),
      ...(id !== undefined && { id }),
      ...(tag !== undefined && { tag: tag.toString('hex') }),
      directAction: ((options.u32(C.TCA_BPF_FLAGS) ?? 0) & C.TCA_BPF_FLAG_ACT_DIRECT) !== 0,
    };
  }
  return filter;
}
