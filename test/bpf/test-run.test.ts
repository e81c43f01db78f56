// BPF_PROG_TEST_RUN on smoke_counter with a crafted frame: the retval tcx
// and cls_bpf both read as "continue", the counters it bumps, and the map
// layout the tests decode, checked against the object's own BTF.
import { describe, expect, it } from 'vitest';

import { BpfObject } from '../../engine/bpf/index.js';
import { isRoot, run } from '../support/netns.js';
import {
  bpfObject,
  decodeSmokeCount,
  defer,
  pinDir,
  SMOKE_COUNT,
  SMOKE_EGRESS,
  SMOKE_INGRESS,
  smokeKey,
} from './support.js';

// TC_ACT_UNSPEC == TCX_NEXT == -1; see bpf/smoke_counter.c.
const CONTINUE = -1;

/** 14-byte Ethernet + 20-byte IPv4 + 8-byte UDP + payload, `length` bytes in all. */
function udpFrame(length: number): Buffer {
  const frame = Buffer.alloc(length);
  frame.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1], 0); // dst, src MAC
  frame.writeUInt16BE(0x0800, 12); // ETH_P_IP
  frame.writeUInt8(0x45, 14); // IPv4, IHL 5
  frame.writeUInt16BE(length - 14, 16); // total length
  frame.writeUInt8(64, 22); // TTL
  frame.writeUInt8(17, 23); // UDP
  frame.set([10, 77, 0, 1, 10, 77, 0, 2], 26); // saddr, daddr
  frame.writeUInt16BE(12345, 34);
  frame.writeUInt16BE(9, 36);
  frame.writeUInt16BE(length - 34, 38);
  return frame;
}

describe.skipIf(!isRoot)('BPF_PROG_TEST_RUN (needs root: BPF)', () => {
  it('runs each smoke program on a crafted frame, returning -1 and counting it in its own slot', async () => {
    const collection = await BpfObject.open(bpfObject('smoke_counter'), { pinRoot: pinDir() }).load();
    defer(() => collection.close());
    const counts = collection.map('smoke_counts');
    const frame = udpFrame(64);

    const ingress = await collection.program('smoke_ingress').testRun({ data: frame });
    expect(ingress.retval).toBe(CONTINUE);
    expect(ingress.data).toEqual(frame); // counting never touches the packet
    expect(decodeSmokeCount(counts.lookup(smokeKey(SMOKE_INGRESS))!)).toEqual({ packets: 1n, bytes: 64n });
    expect(decodeSmokeCount(counts.lookup(smokeKey(SMOKE_EGRESS))!)).toEqual({ packets: 0n, bytes: 0n });

    const egress = await collection.program('smoke_egress').testRun({ data: frame, repeat: 10 });
    expect(egress.retval).toBe(CONTINUE);
    expect(egress.duration).toBeGreaterThanOrEqual(0);
    expect(decodeSmokeCount(counts.lookup(smokeKey(SMOKE_EGRESS))!)).toEqual({ packets: 10n, bytes: 640n });
  });

  it('rejects a frame shorter than an Ethernet header before running', async () => {
    const collection = await BpfObject.open(bpfObject('smoke_counter'), { pinRoot: pinDir() }).load();
    defer(() => collection.close());
    await expect(collection.program('smoke_ingress').testRun({ data: Buffer.alloc(10) })).rejects.toThrow(RangeError);
  });
});

describe('smoke_counter map layout', () => {
  it('matches struct smoke_count in the object BTF (bpftool as the oracle)', () => {
    const btf = JSON.parse(run('bpftool', ['-j', 'btf', 'dump', 'file', bpfObject('smoke_counter')])) as {
      types: Array<{ kind: string; name?: string; size?: number; members?: Array<{ name: string; bits_offset: number }> }>;
    };
    const struct = btf.types.find((t) => t.kind === 'STRUCT' && t.name === 'smoke_count');
    expect(struct?.size).toBe(SMOKE_COUNT.size);
    const offsets = Object.fromEntries(struct?.members?.map((m) => [m.name, m.bits_offset / 8]) ?? []);
    expect(offsets).toEqual({ packets: SMOKE_COUNT.packets, bytes: SMOKE_COUNT.bytes });
  });
});
