// End to end: load smoke_counter with its map pinned under a per-test
// directory, attach it with tcx to a veth between two fresh namespaces,
// send datagrams, read the counters through ferry, detach, clean up.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { attachTc, BpfMap, BpfObject } from '../../engine/bpf/index.js';
import { isRoot, makeNetns } from '../support/netns.js';
import {
  bpfObject,
  decodeSmokeCount,
  defer,
  eventually,
  kernelAtLeast,
  linksOfProgram,
  openNetns,
  pinDir,
  SMOKE_EGRESS,
  SMOKE_INGRESS,
  smokeKey,
  sendUdp,
  vethPair,
} from './support.js';

const hasTcx = kernelAtLeast(6, 6);

describe.skipIf(!isRoot)('smoke_counter over tcx (needs root: namespaces, bpffs, BPF)', () => {
  it.skipIf(!hasTcx)('counts datagrams crossing a veth between two namespaces (needs Linux 6.6+ for tcx)', async () => {
    const a = makeNetns('ferry-bpf-a');
    const b = makeNetns('ferry-bpf-b');
    const veth = vethPair(a, b);
    const pins = pinDir();

    const collection = await BpfObject.open(bpfObject('smoke_counter'), { pinRoot: pins }).load();
    defer(() => collection.close());
    const counts = collection.map('smoke_counts');
    expect(counts.pinPath).toBe(join(pins, 'smoke_counts'));
    expect(readdirSync(pins)).toEqual(['smoke_counts']);

    const ingressProgram = collection.program('smoke_ingress');
    const egressProgram = collection.program('smoke_egress');
    // auto mode must pick tcx on a kernel that has it.
    const ingress = await attachTc({ netns: openNetns(b), ifindex: veth.ifindexB, direction: 'ingress', program: ingressProgram });
    defer(() => ingress.detach());
    const egress = await attachTc({ netns: openNetns(a), ifindex: veth.ifindexA, direction: 'egress', program: egressProgram, mode: 'tcx' });
    defer(() => egress.detach());
    expect(ingress.mode).toBe('tcx');
    expect(egress.mode).toBe('tcx');
    expect(linksOfProgram(ingressProgram.id)).toHaveLength(1);
    expect(linksOfProgram(egressProgram.id)).toHaveLength(1);

    const sent = 5;
    const read = (direction: number) => decodeSmokeCount(counts.lookup(smokeKey(direction))!);
    sendUdp(a, veth.addrB, sent);
    await eventually(() => read(SMOKE_INGRESS).packets >= sent);
    const seenIn = read(SMOKE_INGRESS);
    const seenOut = read(SMOKE_EGRESS);
    // Each datagram is at least Ethernet + IPv4 + UDP + 1 byte on the wire.
    const minFrame = 14n + 20n + 8n + 1n;
    expect(seenIn.packets).toBeGreaterThanOrEqual(BigInt(sent));
    expect(seenIn.bytes).toBeGreaterThanOrEqual(BigInt(sent) * minFrame);
    expect(seenOut.packets).toBeGreaterThanOrEqual(BigInt(sent));
    expect(seenOut.bytes).toBeGreaterThanOrEqual(BigInt(sent) * minFrame);

    // The pinned map is the same map, seen through an independent fd.
    const pinned = BpfMap.openPinned(join(pins, 'smoke_counts'));
    defer(() => pinned.close());
    expect(pinned.id).toBe(counts.id);
    expect(decodeSmokeCount(pinned.lookup(smokeKey(SMOKE_INGRESS))!).packets).toBeGreaterThanOrEqual(BigInt(sent));

    await ingress.detach();
    await egress.detach();
    await ingress.detach(); // idempotent
    expect(ingress.attached).toBe(false);
    expect(linksOfProgram(ingressProgram.id)).toHaveLength(0);
    expect(linksOfProgram(egressProgram.id)).toHaveLength(0);

    // Detached means not counting any more.
    const before = read(SMOKE_INGRESS);
    sendUdp(a, veth.addrB, sent);
    await new Promise((r) => setTimeout(r, 100));
    expect(read(SMOKE_INGRESS)).toEqual(before);

    expect(counts.unpin()).toBe(true);
    collection.close();
    expect(() => counts.lookup(smokeKey(SMOKE_INGRESS))).toThrow(/collection is closed/);
    expect(existsSync(join(pins, 'smoke_counts'))).toBe(false);
  });
});
