// `ferry maglev`: each Maglev table in the dataplane summarised the way a
// person checks one — which frontend scope it serves, its size and seed, and
// how many of its entries each backend owns beside the M/N an even table
// would give — with what the datapath would trip over flagged: entries
// naming backends the map lacks, or backends the service's slots no longer
// hold (a table left behind by an interrupted write). One Maglev map serves
// both families (rev-NAT indices and backend ids are one space): an IPv6
// frontend's table names backends of ferry_lb6_be. The backends maps are
// arrays: an id whose slot is empty (all zero) is a backend the map lacks.
import { isEmptyBackend } from './backend-slots.js';
import {
  addressPort,
  backendId as backendIdCodec,
  lb4Backend,
  lb4Key,
  lb4Maglev,
  lb4MaglevKey,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  revNatIndex as revNatIndexCodec,
  type CCodec,
  type Family,
  type Lb4Backend,
  type Lb4Key,
  type Lb4ReverseNat,
  type Scope,
} from './layout.js';
import type { MapLike } from './reconcile.js';

export interface MaglevShare {
  backendId: number;
  /** address:port ([IPv6]:port), or null when the frontend's family's backends map lacks the id. */
  backend: string | null;
  entries: number;
  /** entries / (M / N) - 1: 0 is an even share. */
  deviation: number;
}

export interface MaglevView {
  /** The frontend the rev-NAT index names, address:port/proto (or `rev-NAT N` when it is gone). */
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

type Services = Pick<MapLike, 'entries'>;
type Lookup = Pick<MapLike, 'lookup'>;
/** The maps a view reads; the IPv6 ones (all three) when IPv6 frontends' tables are to be resolved. */
type Maps = {
  services: Services;
  backends: Lookup;
  revNat: Lookup;
  maglev: Pick<MapLike, 'entries'>;
  services6?: Services;
  backends6?: Lookup;
  revNat6?: Lookup;
};

/** One family's maps and codecs. */
interface FamilyView {
  services: Services;
  backends: Lookup;
  revNat: Lookup;
  serviceKey: CCodec<Lb4Key>;
  backend: CCodec<Lb4Backend>;
  reverseNat: CCodec<Lb4ReverseNat>;
}

function familyViews(maps: Maps): Array<[Family, FamilyView]> {
  const out: Array<[Family, FamilyView]> = [[4, { services: maps.services, backends: maps.backends, revNat: maps.revNat, serviceKey: lb4Key, backend: lb4Backend, reverseNat: lb4ReverseNat }]];
  if (maps.services6 !== undefined && maps.backends6 !== undefined && maps.revNat6 !== undefined) {
    out.push([6, { services: maps.services6, backends: maps.backends6, revNat: maps.revNat6, serviceKey: lb6Key, backend: lb6Backend, reverseNat: lb6ReverseNat }]);
  }
  return out;
}

interface Owner {
  frontend: string;
  family: Family;
  slotIds: Set<number>;
}

/** Each frontend scope (both families) that has a slot 0, by `revNatIndex@scope` (a Maglev table's key). */
function frontendScopes(families: Array<[Family, FamilyView]>): Map<string, Owner> {
  const revOf = new Map<string, string>();
  const scopes = new Map<string, Owner>();
  for (const [family, f] of families) {
    for (const [k, v] of f.services.entries()) {
      const key = f.serviceKey.decode(k);
      const value = lb4Service.decode(v);
      const frontend = `${addressPort(key.address, key.port)}/${key.proto}`;
      const id = `${frontend}@${key.scope}`;
      let s = scopes.get(id);
      if (s === undefined) scopes.set(id, (s = { frontend, family, slotIds: new Set() }));
      if (key.slot === 0) revOf.set(id, `${value.revNatIndex}@${key.scope}`);
      else s.slotIds.add(value.backendId);
    }
  }
  return new Map([...revOf].map(([id, tableKey]) => [tableKey, scopes.get(id)!]));
}

export function listMaglevTables(maps: Maps): MaglevView[] {
  const families = familyViews(maps);
  const owners = frontendScopes(families);
  const out: MaglevView[] = [];
  for (const [k, v] of maps.maglev.entries()) {
    const key = lb4MaglevKey.decode(k);
    const table = lb4Maglev.decode(v);
    const owner = owners.get(`${key.revNatIndex}@${key.scope}`);
    const problems: string[] = [];
    let frontend = owner?.frontend;
    // The backends' family: the owner's; for a table nobody uses, the family whose rev-NAT map has the index.
    let family: FamilyView = families.find(([f]) => f === owner?.family)?.[1] ?? families[0]![1];
    if (frontend === undefined) {
      problems.push('no service slot 0 names this table: it is not used');
      frontend = `rev-NAT ${key.revNatIndex}`;
      for (const [, f] of families) {
        const rev = f.revNat.lookup(revNatIndexCodec.encode(key.revNatIndex));
        if (rev === undefined) continue;
        const r = f.reverseNat.decode(rev);
        frontend = addressPort(r.address, r.port);
        family = f;
        break;
      }
    }
    const counts = new Map<number, number>();
    for (const id of table.backendIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    const size = table.backendIds.length;
    const even = size / Math.max(counts.size, 1);
    const backends = [...counts].sort((a, b) => a[0] - b[0]).map(([id, entries]): MaglevShare => {
      const raw = family.backends.lookup(backendIdCodec.encode(id));
      const b = raw === undefined || isEmptyBackend(raw) ? undefined : family.backend.decode(raw);
      const text = b === undefined ? null : addressPort(b.address, b.port);
      if (b === undefined) problems.push(`entries name backend ${id}, which the backends map lacks`);
      else if (owner !== undefined && !owner.slotIds.has(id)) problems.push(`entries name backend ${id} (${text}), no longer one of the service's slots`);
      return { backendId: id, backend: text, entries, deviation: entries / even - 1 };
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
