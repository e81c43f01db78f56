// `ferry maglev`: each Maglev table in the dataplane summarised the way a
// person checks one — which frontend scope it serves, its size and seed, and
// how many of its entries each backend owns beside the M/N an even table
// would give — with what the datapath would trip over flagged: entries
// naming backends the map lacks, or backends the service's slots no longer
// hold (a table left behind by an interrupted write).
import { lb4Backend, lb4Key, lb4Maglev, lb4MaglevKey, lb4ReverseNat, lb4Service, backendId as backendIdCodec, revNatIndex as revNatIndexCodec, type Scope } from './layout.js';
import type { MapLike } from './reconcile.js';

export interface MaglevShare {
  backendId: number;
  /** address:port, or null when the backends map lacks the id. */
  backend: string | null;
  entries: number;
  /** entries / (M / N) - 1: 0 is an even share. */
  deviation: number;
}

export interface MaglevView {
  /** The frontend the rev-NAT index names, address:port/proto (or the bare index when it is gone). */
  frontend: string;
  revNatIndex: number;
  scope: Scope;
  size: number;
  seed: number;
  backends: MaglevShare[];
  /** The largest |deviation| over the backends. */
  maxDeviation: number;
  problems: string[];
}

type Maps = { services: Pick<MapLike, 'entries'>; backends: Pick<MapLike, 'lookup'>; revNat: Pick<MapLike, 'lookup'>; maglev: Pick<MapLike, 'entries'> };

/** Each frontend scope that has a slot 0, by `revNatIndex@scope` (a Maglev table's key). */
function frontendScopes(services: Maps['services']): Map<string, { frontend: string; slotIds: Set<number> }> {
  const revOf = new Map<string, string>();
  const scopes = new Map<string, { frontend: string; slotIds: Set<number> }>();
  for (const [k, v] of services.entries()) {
    const key = lb4Key.decode(k);
    const value = lb4Service.decode(v);
    const id = `${key.address}:${key.port}/${key.proto}@${key.scope}`;
    let s = scopes.get(id);
    if (s === undefined) scopes.set(id, (s = { frontend: `${key.address}:${key.port}/${key.proto}`, slotIds: new Set() }));
    if (key.slot === 0) revOf.set(id, `${value.revNatIndex}@${key.scope}`);
    else s.slotIds.add(value.backendId);
  }
  return new Map([...revOf].map(([id, tableKey]) => [tableKey, scopes.get(id)!]));
}

export function listMaglevTables(maps: Maps): MaglevView[] {
  const owners = frontendScopes(maps.services);
  const out: MaglevView[] = [];
  for (const [k, v] of maps.maglev.entries()) {
    const key = lb4MaglevKey.decode(k);
    const table = lb4Maglev.decode(v);
    const owner = owners.get(`${key.revNatIndex}@${key.scope}`);
    const problems: string[] = [];
    let frontend = owner?.frontend;
    if (frontend === undefined) {
      problems.push('no service slot 0 names this table: it is not used');
      const rev = maps.revNat.lookup(revNatIndexCodec.encode(key.revNatIndex));
      frontend = rev === undefined ? `rev-NAT ${key.revNatIndex}` : `${lb4ReverseNat.decode(rev).address}:${lb4ReverseNat.decode(rev).port}`;
    }
    const counts = new Map<number, number>();
    for (const id of table.backendIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    const size = table.backendIds.length;
    const even = size / Math.max(counts.size, 1);
    const backends = [...counts].sort((a, b) => a[0] - b[0]).map(([id, entries]): MaglevShare => {
      const raw = maps.backends.lookup(backendIdCodec.encode(id));
      const b = raw === undefined ? undefined : lb4Backend.decode(raw);
      if (b === undefined) problems.push(`entries name backend ${id}, which the backends map lacks`);
      else if (owner !== undefined && !owner.slotIds.has(id)) problems.push(`entries name backend ${id} (${b.address}:${b.port}), no longer one of the service's slots`);
      return { backendId: id, backend: b === undefined ? null : `${b.address}:${b.port}`, entries, deviation: entries / even - 1 };
    });
    for (const id of owner?.slotIds ?? []) if (!counts.has(id)) problems.push(`backend ${id} is in the service's slots but owns no entry`);
    out.push({
      frontend,
      revNatIndex: key.revNatIndex,
      scope: key.scope,
      size,
      seed: table.seed,
      backends,
      maxDeviation: Math.max(0, ...backends.map((b) => Math.abs(b.deviation))),
      problems,
    });
  }
  return out.sort((a, b) => a.revNatIndex - b.revNatIndex || a.scope.localeCompare(b.scope));
}
