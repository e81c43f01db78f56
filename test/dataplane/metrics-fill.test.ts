// readSnapshot()'s map fill on lb.o's own maps: each hash map's entries,
// and of the backends maps (arrays indexed by backend id, every slot always
// there) the used slots only, against their capacity; other arrays left out.
import { describe, expect, it } from 'vitest';
import { BpfMap } from '../../engine/bpf/index.js';
import { BACKENDS_MAX, MAPS, type MapRole, type MapSet } from '../../engine/dataplane/layout.js';
import { readSnapshot } from '../../engine/dataplane/metrics.js';
import { isRoot } from '../support/netns.js';
import { loadLb } from './lb-fixture.js';

describe.skipIf(!isRoot)('metrics: the maps’ fill (needs root: BPF maps)', () => {
  it('counts the backends arrays’ used slots, not every slot', async () => {
    const lb = await loadLb();
    lb.addService({ address: '10.96.0.10', port: 80, proto: 'tcp', revNatIndex: 1, backends: [5000, 5001, 5002].map((id, i) => ({ id, address: `10.244.0.${i + 5}`, port: 8080 })) });
    lb.addService6({ address: 'fd00:96::10', port: 80, proto: 'tcp', revNatIndex: 2, backends: [{ id: 5003, address: 'fd00::5', port: 8080 }] });
    lb.removeBackend(5001);
    const maps = Object.fromEntries((Object.keys(MAPS) as MapRole[]).map((role) => [role, lb[role]])) as MapSet<BpfMap>;
    const fills = new Map((await readSnapshot(maps)).maps!.map((f) => [f.map, f]));
    expect(fills.get('backends')).toEqual({ map: 'backends', entries: 2, maxEntries: BACKENDS_MAX });
    expect(fills.get('backends6')).toEqual({ map: 'backends6', entries: 1, maxEntries: BACKENDS_MAX });
    expect(fills.get('services')).toMatchObject({ entries: 4 });
    expect(fills.has('nodeConfig')).toBe(false);
    expect(fills.has('metrics')).toBe(false);
  });
});
