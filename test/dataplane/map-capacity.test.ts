// loadDataplane()'s maxEntries against maps already pinned (a restarted
// daemon with another mapCapacity): a pinned map at least as large is kept
// with its own capacity, a smaller one is refused, naming the map; a map of
// a role not sized by the caller is kept as pinned, and one of another
// layout (another lb.o) is refused by name. Pinned maps of another shape
// are made with bpftool, as an independent tool.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane } from '../../engine/dataplane/loader.js';
import { backendId, ctEntry, ct4Key, lb4Backend, lb6Backend, MAPS, OBJECT_FILE } from '../../engine/dataplane/layout.js';
import { bpfObjectPath } from '../../engine/dataplane/paths.js';
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

  it('keeps a pinned map of a role not sized by the caller with its own capacity, and what it holds', async () => {
    const pinRoot = makePinDir('ferry-capacity-adopt');
    cleanups.push(() => removePinDir(pinRoot));
    const first = await loadDataplane(pinRoot, undefined, { maxEntries: { conntrack: 131_072 } });
    const key = ct4Key.encode({ saddr: '10.244.0.9', daddr: '10.96.0.10', sport: 40000, dport: 80, proto: 'tcp', dir: 'forward' });
    first.maps.conntrack.update(key, Buffer.alloc(ctEntry.size, 1));
    first.close();

    // A restart without the setting (the object declares 65,536) reuses it.
    const again = await loadDataplane(pinRoot);
    cleanups.push(() => again.close());
    expect(again.maps.conntrack.maxEntries).toBe(131_072);
    expect(again.maps.conntrack.lookup(key)).toEqual(Buffer.alloc(ctEntry.size, 1));
  });

  it('refuses a pinned map of another layout, naming it and both shapes', async () => {
    const pinRoot = makePinDir('ferry-capacity-layout');
    cleanups.push(() => removePinDir(pinRoot));
    const pin = `${pinRoot}/${MAPS.conntrack}`;
    const wrongValue = ctEntry.size + 8;
    execFileSync('bpftool', ['map', 'create', pin, 'type', 'lru_hash', 'key', String(ct4Key.size), 'value', String(wrongValue), 'entries', '1024', 'name', MAPS.conntrack]);
    await expect(loadDataplane(pinRoot)).rejects.toThrow(
      `pinned map ${pin} (lru_hash, key ${ct4Key.size} B, value ${wrongValue} B) does not have the layout`,
    );
    await expect(loadDataplane(pinRoot)).rejects.toThrow(`declares for ${MAPS.conntrack} (lru_hash, key ${ct4Key.size} B, value ${ctEntry.size} B)`);
  });

  it('gives both backends maps (arrays of one id space) the larger capacity asked for either', async () => {
    const pinRoot = makePinDir('ferry-capacity-backends');
    cleanups.push(() => removePinDir(pinRoot));
    const dp = await loadDataplane(pinRoot, undefined, { maxEntries: { services: 131_072, backends: 131_072, services6: 65_536, backends6: 65_536 } });
    cleanups.push(() => dp.close());
    expect([dp.maps.backends.type, dp.maps.backends6.type]).toEqual(['array', 'array']);
    expect([dp.maps.backends.maxEntries, dp.maps.backends6.maxEntries]).toEqual([131_072, 131_072]);
    expect([dp.maps.services.maxEntries, dp.maps.services6.maxEntries]).toEqual([131_072, 65_536]);
  });

  it('refuses the hash backends maps an older ferry pinned, naming both pins at once', async () => {
    const pinRoot = makePinDir('ferry-capacity-upgrade');
    cleanups.push(() => removePinDir(pinRoot));
    for (const [name, value] of [[MAPS.backends, lb4Backend], [MAPS.backends6, lb6Backend]] as const) {
      execFileSync('bpftool', ['map', 'create', `${pinRoot}/${name}`, 'type', 'hash', 'key', String(backendId.size), 'value', String(value.size), 'entries', '65536', 'name', name]);
    }
    const refused = loadDataplane(pinRoot);
    await expect(refused).rejects.toThrow(
      `pinned maps do not have the layout ${bpfObjectPath(OBJECT_FILE)} declares: ` +
        `${pinRoot}/${MAPS.backends} (hash, key 4 B, value ${lb4Backend.size} B; ${MAPS.backends} is array, key 4 B, value ${lb4Backend.size} B), ` +
        `${pinRoot}/${MAPS.backends6} (hash, key 4 B, value ${lb6Backend.size} B; ${MAPS.backends6} is array, key 4 B, value ${lb6Backend.size} B). ` +
        "They were made by another version of ferry's dataplane; remove their pins to have them made afresh",
    );
  });
});
