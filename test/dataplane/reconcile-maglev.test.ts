// The Reconciler's Maglev tables and session affinity timeout, on in-memory
// maps: which Services get a table and the flag, that a table names the
// bound backend ids, and that tables go when nothing uses them.
import { describe, expect, it } from 'vitest';

import { lb4Key, lb4Maglev, lb4MaglevKey, lb4Service, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { maglevTable } from '../../engine/dataplane/maglev.js';
import { LB_ALGORITHM_ANNOTATION, parseEndpoints, parseService } from '../../engine/dataplane/model.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { desiredState, Reconciler } from '../../engine/dataplane/reconcile.js';

/** The Reconciler's maps, in memory. */
const FakeMap = MemoryMap.bind(null, 'test');

function world(addresses: string[], extra: Record<string, unknown> = {}) {
  const service = parseService({
    namespace: 'default',
    name: 'web',
    clusterIPs: ['10.96.0.10'],
    ports: [{ port: 80, targetPort: 8080 }],
    ...extra,
  });
  const endpoints = parseEndpoints(service, addresses.map((a) => ({ addresses: [a], ports: [{ port: 8080 }] })));
  return desiredState([service], new Map([['default/web', endpoints]]), { nodeName: 'n' });
}

const headKey = lb4Key.encode({ address: '10.96.0.10', port: 80, proto: 'tcp', slot: 0, scope: 'external' });

describe('Reconciler: Maglev tables and session affinity', () => {
  it('parses the algorithm from the field or the annotation, and rejects others', () => {
    const base = { namespace: 'default', name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ port: 80 }] };
    expect(parseService(base).loadBalancing).toBeUndefined();
    expect(parseService({ ...base, loadBalancing: 'maglev' }).loadBalancing).toBe('maglev');
    expect(parseService({ ...base, annotations: { [LB_ALGORITHM_ANNOTATION]: 'maglev' } }).loadBalancing).toBe('maglev');
    expect(parseService({ ...base, loadBalancing: 'random', annotations: { [LB_ALGORITHM_ANNOTATION]: 'maglev' } }).loadBalancing).toBeUndefined();
    expect(() => parseService({ ...base, annotations: { [LB_ALGORITHM_ANNOTATION]: 'hash' } })).toThrow(/ferry\.dev\/lb-algorithm: must be "random" or "maglev"/);
  });

  it('writes the affinity timeout of a ClientIP Service to slot 0', () => {
    const maps = { services: new FakeMap(), backends: new FakeMap(), revNat: new FakeMap() };
    new Reconciler(maps).apply(world(['10.0.0.1'], { sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 600 }));
    expect(lb4Service.decode(maps.services.lookup(headKey)!).affinityTimeout).toBe(600);
    new Reconciler(maps).apply(world(['10.0.0.1'], { sessionAffinity: 'ClientIP' }));
    expect(lb4Service.decode(maps.services.lookup(headKey)!).affinityTimeout).toBe(10800);
  });

  it('gives a Maglev Service a table of its backend ids and the flag; takes both away again', () => {
    const maps = { services: new FakeMap(), backends: new FakeMap(), revNat: new FakeMap(), maglev: new FakeMap() };
    const reconciler = new Reconciler(maps, { maglev: { size: 251, seed: 9 } });
    const addresses = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
    const first = reconciler.apply(world(addresses, { loadBalancing: 'maglev' }));
    expect(first.maglev).toEqual({ added: 1, updated: 0, removed: 0, unchanged: 0 });
    const head = lb4Service.decode(maps.services.lookup(headKey)!);
    expect(head.flags).toBe(SVC_FLAGS.maglev);

    const table = lb4Maglev.decode(maps.maglev.lookup(lb4MaglevKey.encode({ revNatIndex: head.revNatIndex, scope: 'external' }))!);
    expect(table.seed).toBe(9);
    const names = maglevTable(
      addresses.map((a) => `${a}:8080/tcp`),
      { size: 251, seed: 9 },
    );
    expect([...table.backendIds]).toEqual(names.map((n) => reconciler.backendId(n)));

    expect(reconciler.apply(world(addresses, { loadBalancing: 'maglev' })).maglev).toEqual({ added: 0, updated: 0, removed: 0, unchanged: 1 });
    expect(reconciler.apply(world(addresses.slice(1), { loadBalancing: 'maglev' })).maglev).toMatchObject({ updated: 1 });

    const off = reconciler.apply(world(addresses));
    expect(off.maglev).toMatchObject({ removed: 1 });
    expect(maps.maglev.size).toBe(0);
    expect(lb4Service.decode(maps.services.lookup(headKey)!).flags).toBe(0);
  });

  it('without a maglev map, or without backends, balances at random', () => {
    const maps = { services: new FakeMap(), backends: new FakeMap(), revNat: new FakeMap() };
    const result = new Reconciler(maps).apply(world(['10.0.0.1'], { loadBalancing: 'maglev' }));
    expect(result.maglev).toBeUndefined();
    expect(lb4Service.decode(maps.services.lookup(headKey)!).flags).toBe(0);

    const withMap = { ...maps, maglev: new FakeMap() };
    new Reconciler(withMap).apply(world([], { loadBalancing: 'maglev' }));
    expect(withMap.maglev.size).toBe(0);
  });
});
