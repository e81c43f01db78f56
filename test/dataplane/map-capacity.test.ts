// loadDataplane()'s maxEntries against maps already pinned (a restarted
// daemon with another mapCapacity): a pinned map at least as large is kept
// with its own capacity, a smaller one is refused, naming the map.
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane } from '../../engine/dataplane/loader.js';
import { MAPS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!isRoot)('map capacity (needs root)', () => {
  it('sizes the maps; a restart keeps larger pinned maps and refuses smaller ones', async () => {
    const pinRoot = makePinDir('ferry-capacity');
    cleanups.push(() => removePinDir(pinRoot));
    // The IPv6 maps are sized alike (the daemon's mapCapacity6, plugin/daemon/node.ts).
    const first = await loadDataplane(pinRoot, undefined, { maxEntries: { services: 131_072, backends: 131_072, services6: 131_072, backends6: 131_072 } });
    expect([first.maps.services.maxEntries, first.maps.backends.maxEntries, first.maps.revNat.maxEntries]).toEqual([131_072, 131_072, 65_536]);
    expect([first.maps.services6.maxEntries, first.maps.backends6.maxEntries, first.maps.revNat6.maxEntries]).toEqual([131_072, 131_072, 65_536]);
    first.close();

    const smaller = await loadDataplane(pinRoot, undefined, { maxEntries: { services: 65_536, backends: 65_536, services6: 65_536, backends6: 65_536 } });
    cleanups.push(() => smaller.close());
    expect([smaller.maps.services.maxEntries, smaller.maps.backends.maxEntries]).toEqual([131_072, 131_072]);
    expect([smaller.maps.services6.maxEntries, smaller.maps.backends6.maxEntries]).toEqual([131_072, 131_072]);

    await expect(loadDataplane(pinRoot, undefined, { maxEntries: { services: 262_144 } })).rejects.toThrow(
      `pinned map ${pinRoot}/${MAPS.services} holds 131072 entries, fewer than the 262144 asked for: a pinned map cannot grow`,
    );
  });
});
