// The clsact + cls_bpf path, forced: it is what 'auto' falls back to on
// kernels without tcx, so it must work on kernels that have tcx too.
import { describe, expect, it } from 'vitest';

import { attachTc, BpfObject, TcAttachment } from '../../engine/bpf/index.js';
import { inNetns, isRoot, makeNetns, run } from '../support/netns.js';
import {
  bpfObject,
  decodeSmokeCount,
  defer,
  eventually,
  openNetns,
  pinDir,
  SMOKE_INGRESS,
  smokeKey,
  sendUdp,
  vethPair,
} from './support.js';

describe.skipIf(!isRoot)('tc fallback (needs root: namespaces, bpffs, BPF)', () => {
  it('attaches a cls_bpf filter under clsact when mode is forced to tc, and removes it', async () => {
    const a = makeNetns('ferry-tc-a');
    const b = makeNetns('ferry-tc-b');
    const veth = vethPair(a, b);
    const collection = await BpfObject.open(bpfObject('smoke_counter'), { pinRoot: pinDir() }).load();
    defer(() => collection.close());
    const program = collection.program('smoke_ingress');

    const attachment = await attachTc({ netns: openNetns(b), ifindex: veth.ifindexB, direction: 'ingress', program, mode: 'tc' });
    defer(() => attachment.detach());
    expect(attachment).toBeInstanceOf(TcAttachment);
    if (!(attachment instanceof TcAttachment)) return;
    expect(attachment.tcxErrno).toBeUndefined(); // forced, not a fallback

    // Oracle: iproute2 sees our filter, with the handle and priority we got back.
    const filters = run('tc', ['-n', b, 'filter', 'show', 'dev', 'vb', 'ingress']);
    expect(filters).toContain('smoke_ingress');
    expect(filters).toContain('direct-action');
    expect(filters).toContain(`pref ${attachment.priority}`);
    expect(filters).toContain(`handle 0x${attachment.handle.toString(16)}`);
    // bpftool (run with nsenter --net so /sys stays the host's) agrees.
    const net = JSON.parse(inNetns(b, 'bpftool', ['-j', 'net', 'show', 'dev', 'vb'])) as Array<{
      tc: Array<{ kind: string; id: number }>;
    }>;
    expect(net[0]?.tc).toContainEqual(expect.objectContaining({ kind: 'clsact/ingress', id: program.id }));

    const counts = collection.map('smoke_counts');
    sendUdp(a, veth.addrB, 3);
    await eventually(() => decodeSmokeCount(counts.lookup(smokeKey(SMOKE_INGRESS))!).packets >= 3n);
    expect(decodeSmokeCount(counts.lookup(smokeKey(SMOKE_INGRESS))!).packets).toBeGreaterThanOrEqual(3n);

    await attachment.detach();
    await attachment.detach(); // idempotent
    expect(run('tc', ['-n', b, 'filter', 'show', 'dev', 'vb', 'ingress']).trim()).toBe('');
  });
});
