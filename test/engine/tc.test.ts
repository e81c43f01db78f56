// `tc filter show` through ferry's rtnetlink engine (engine/tc.ts) against
// iproute2's `tc -j filter show` as the oracle: cls_bpf filters attached by
// engine/bpf (the clsact + cls_bpf path), with the program's name, id and tag,
// per hook; none on a device without a clsact qdisc.
import { describe, expect, it } from 'vitest';

import { attachTc, BpfObject } from '../../engine/bpf/index.js';
import { Handle } from '../../engine/handle.js';
import { bpfObject, defer, openNetns, pinDir, vethPair } from '../bpf/support.js';
import { isRoot, makeNetns, run } from '../support/netns.js';

interface TcJson {
  protocol: string;
  pref: number;
  kind: string;
  options?: { handle: string; bpf_name: string; 'direct-action'?: boolean; prog: { id: number; tag: string } };
}

describe.skipIf(!isRoot)('tc filter show (needs root)', () => {
  it('lists the cls_bpf filters of a hook as tc does', async () => {
    const a = makeNetns('ferry-tcf-a');
    const b = makeNetns('ferry-tcf-b');
    vethPair(a, b);
    const node = await Handle.open(a);
    defer(() => node.close());
    expect(await node.tc.filters('va', 'ingress')).toEqual([]); // no clsact qdisc yet

    const collection = await BpfObject.open(bpfObject('smoke_counter'), { pinRoot: pinDir() }).load();
    defer(() => collection.close());
    const program = collection.program('smoke_ingress');
    const ns = openNetns(a);
    const ifindex = (await node.link.get('va')).index;
    for (let i = 0; i < 2; i++) {
      const at = await attachTc({ netns: ns, ifindex, direction: 'ingress', program, mode: 'tc' });
      defer(() => at.detach());
    }

    const oracle = (JSON.parse(run('tc', ['-n', a, '-j', 'filter', 'show', 'dev', 'va', 'ingress'])) as TcJson[]).filter((f) => f.options !== undefined);
    expect(oracle).toHaveLength(2);
    const filters = await node.tc.filters('va', 'ingress');
    expect(filters).toEqual(
      oracle.map((f) => ({
        dev: ifindex,
        kind: 'bpf',
        handle: Number(f.options!.handle),
        priority: f.pref,
        protocol: 0x0003, // all
        bpf: { name: f.options!.bpf_name, id: f.options!.prog.id, tag: f.options!.prog.tag, directAction: f.options!['direct-action'] === true },
      })),
    );
    expect(filters.every((f) => f.bpf?.id === program.id && f.bpf.name?.startsWith('smoke_ingress'))).toBe(true);
    expect(await node.tc.filters('va', 'egress')).toEqual([]);
    await expect(node.tc.filters('nope0', 'ingress')).rejects.toThrow(/tc filter show dev nope0 ingress in netns .*: .*ENODEV/);
  });
});
