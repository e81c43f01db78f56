// A map's capacity chosen when the object is opened (bpf_map__set_max_entries),
// as the dataplane's loader does for nodes with more Services than lb.o's
// maps declare room for.
import { describe, expect, it } from 'vitest';

import { BpfError, BpfObject } from '../../engine/bpf/index.js';
import { isRoot } from '../support/netns.js';
import { bpfObject, defer, pinDir } from './support.js';

describe.skipIf(!isRoot)('max_entries set at open (needs root: BPF)', () => {
  it('replaces the declared capacity of the maps named, and only theirs', async () => {
    const collection = await BpfObject.open(bpfObject('test_maps'), { pinRoot: pinDir(), maxEntries: { test_hash: 4096 } }).load();
    defer(() => collection.close());
    expect(collection.map('test_hash').maxEntries).toBe(4096);
    expect(collection.map('test_percpu').maxEntries).toBe(4);
  });

  it('names the map that is not in the object, and refuses a zero capacity', () => {
    expect(() => BpfObject.open(bpfObject('test_maps'), { maxEntries: { no_such_map: 16 } })).toThrow(BpfError);
    expect(() => BpfObject.open(bpfObject('test_maps'), { maxEntries: { no_such_map: 16 } })).toThrow(/no_such_map/);
    expect(() => BpfObject.open(bpfObject('test_maps'), { maxEntries: { test_hash: 0 } })).toThrow(RangeError);
  });
});
