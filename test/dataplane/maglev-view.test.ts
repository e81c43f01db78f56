// `ferry maglev`'s view: the tables the Reconciler writes, summarised per
// frontend scope (size, seed, each backend's share of entries), and the
// inconsistencies it must flag when the maps disagree.
import { describe, expect, it } from 'vitest';
import { backendId, lb4Backend, lb4Maglev, lb4MaglevKey, lb6Backend } from '../../engine/dataplane/layout.js';
import { listMaglevTables } from '../../engine/dataplane/maglev-view.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { parseEndpoints, parseService } from '../../engine/dataplane/model.js';
import { desiredState, Reconciler } from '../../engine/dataplane/reconcile.js';

/** A backends map as the kernel's: an array, whose unused slots (an id it lacks) are all zero. */
const backendsMap = (family: 4 | 6 = 4) => new MemoryMap(`backends${family}`, backendId.size, family === 4 ? lb4Backend.size : lb6Backend.size, { array: true, maxEntries: 8192 });

function programmed(addresses: string[]) {
  const maps = { services: new MemoryMap('services'), backends: backendsMap(), revNat: new MemoryMap('revNat'), maglev: new MemoryMap('maglev') };
  const service = parseService({ namespace: 'default', name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ port: 80, targetPort: 8080 }], loadBalancing: 'maglev' });
  const endpoints = parseEndpoints(service, addresses.map((a) => ({ addresses: [a], ports: [{ port: 8080 }] })));
  const reconciler = new Reconciler(maps, { maglev: { size: 1021, seed: 7 } });
  reconciler.apply(desiredState([service], new Map([['default/web', endpoints]]), { nodeName: 'n' }));
  return { maps, reconciler };
}

describe('listMaglevTables', () => {
  it('shows each backend’s share of a table the Reconciler wrote: near M/N, no problems', () => {
    const { maps } = programmed(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    const [view, ...rest] = listMaglevTables(maps);
    expect(rest).toEqual([]);
    expect(view).toMatchObject({ frontend: '10.96.0.10:80/tcp', scope: 'external', size: 1021, seed: expect.any(Number), problems: [] });
    expect(view!.backends.map((b) => b.backend)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
    expect(view!.backends.reduce((n, b) => n + b.entries, 0)).toBe(1021);
    // Maglev's Populate gives each backend M/N ± 1 entries.
    for (const b of view!.backends) expect(Math.abs(b.entries - 1021 / 3)).toBeLessThanOrEqual(1);
    expect(view!.maxDeviation).toBeLessThan(0.01);
  });

  it('flags entries naming a missing backend or one the service no longer holds, and a table nothing uses', () => {
    const { maps, reconciler } = programmed(['10.0.0.1', '10.0.0.2']);
    const [key, value] = [...maps.maglev.entries()][0]!;
    const table = lb4Maglev.decode(value);
    const stray = reconciler.backendId('10.0.0.2:8080/tcp')!;
    // Backend 77 exists in the backends map but is none of the service's slots.
    maps.backends.update(backendId.encode(77), maps.backends.lookup(backendId.encode(stray))!);
    // An interrupted write: a third of the table names backend 99, which does not exist, a third 77.
    const ids = [...table.backendIds].map((id, i) => [99, 77, id][i % 3]!);
    maps.maglev.update(key, lb4Maglev.encode({ seed: table.seed, backendIds: ids }));
    // A second table under a rev-NAT index no service uses.
    maps.maglev.update(lb4MaglevKey.encode({ revNatIndex: 42, scope: 'internal' }), lb4Maglev.encode({ seed: 1, backendIds: [stray, stray, stray] }));

    const [live, orphan] = listMaglevTables(maps);
    expect(live!.problems).toContain('entries name backend 99, which the backends map lacks');
    expect(live!.problems).toContain("entries name backend 77 (10.0.0.2:8080), no longer one of the service's slots");
    expect(live!.backends.find((b) => b.backendId === 99)).toMatchObject({ backend: null, entries: 341 });
    expect(orphan).toMatchObject({ frontend: 'rev-NAT 42', scope: 'internal', size: 3 });
    expect(orphan!.problems).toContain('no service slot 0 names this table: it is not used');
  });

  it('a dual-stack Service’s two tables: the IPv6 one resolved in the IPv6 maps, [address]:port', () => {
    const maps = {
      services: new MemoryMap('services'),
      backends: backendsMap(),
      revNat: new MemoryMap('revNat'),
      maglev: new MemoryMap('maglev'),
      services6: new MemoryMap('services6'),
      backends6: backendsMap(6),
      revNat6: new MemoryMap('revNat6'),
    };
    const service = parseService({ namespace: 'default', name: 'web', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ports: [{ port: 80, targetPort: 8080 }], loadBalancing: 'maglev' });
    const endpoints = parseEndpoints(service, ['10.0.0.1', 'fd00::1', 'fd00::2'].map((a) => ({ addresses: [a], ports: [{ port: 8080 }] })));
    const reconciler = new Reconciler(maps, { maglev: { size: 1021, seed: 7 } });
    reconciler.apply(desiredState([service], new Map([['default/web', endpoints]]), { nodeName: 'n' }));
    const views = listMaglevTables(maps);
    expect(views.map((v) => [v.frontend, v.backends.map((b) => b.backend), v.problems])).toEqual([
      ['10.96.0.10:80/tcp', ['10.0.0.1:8080'], []],
      ['[fd00:96::10]:80/tcp', ['[fd00::1]:8080', '[fd00::2]:8080'], []],
    ]);
    // An IPv6 table naming an id the IPv6 backends map lacks is flagged, though the IPv4 map has it.
    const v4Id = reconciler.backendId('10.0.0.1:8080/tcp')!;
    const key = lb4MaglevKey.encode({ revNatIndex: reconciler.revNatIndex('fd00:96::10:80/tcp')!, scope: 'external' });
    maps.maglev.update(key, lb4Maglev.encode({ seed: 7, backendIds: [v4Id, v4Id, v4Id] }));
    expect(listMaglevTables(maps)[1]!.problems).toContain(`entries name backend ${v4Id}, which the backends map lacks`);
    // Without the IPv6 maps, the IPv6 table is nobody's.
    const v4only = listMaglevTables({ services: maps.services, backends: maps.backends, revNat: maps.revNat, maglev: maps.maglev });
    expect(v4only[1]).toMatchObject({ frontend: `rev-NAT ${reconciler.revNatIndex('fd00:96::10:80/tcp')}` });
  });
});

