// Filler Services written straight into the load balancer's maps, laid out
// as the Reconciler lays them out (slot 0, slot 1 naming a backend): for
// scales the Reconciler cannot program (it binds one 16-bit rev-NAT index
// per frontend, below hostPorts' range: RECONCILER_MAX_FRONTENDS), where
// only the maps' contents matter to what is measured. Fillers share rev-NAT indices (no packet goes
// to them, so none is ever looked up) and take backend ids from `firstId`
// up, clear of the Reconciler's and below the backends map's capacity (an
// array indexed by id, whose slots are emptied, not deleted).
import { emptyBackend } from '../../engine/dataplane/backend-slots.js';
import { backendId, HOSTPORT_REV_NAT, lb4Backend, lb4Key, lb4Service } from '../../engine/dataplane/layout.js';
import type { MapLike } from '../../engine/dataplane/reconcile.js';
import { SERVICE_PORT, TARGET_PORT, type BenchService } from './cluster.js';

const BATCH = 4096;
/** The most frontends the Reconciler can bind rev-NAT indices to. */
export const RECONCILER_MAX_FRONTENDS = HOSTPORT_REV_NAT.min - 1;
/** Fillers' rev-NAT indices cycle through FILLER_REV_NAT…RECONCILER_MAX_FRONTENDS. */
const FILLER_REV_NAT = 1000;

function entries(fillers: readonly BenchService[], firstId: number) {
  const services: Array<[Buffer, Buffer]> = [];
  const backends: Array<[Buffer, Buffer]> = [];
  fillers.forEach((s, i) => {
    const id = firstId + i;
    const revNatIndex = FILLER_REV_NAT + (id % (RECONCILER_MAX_FRONTENDS + 1 - FILLER_REV_NAT));
    const key = (slot: number) => lb4Key.encode({ address: s.clusterIp, port: SERVICE_PORT, proto: 'tcp', slot, scope: 'external' });
    backends.push([backendId.encode(id), lb4Backend.encode({ address: s.endpoints[0]!, port: TARGET_PORT, proto: 'tcp', flags: 0 })]);
    services.push([key(1), lb4Service.encode({ backendId: id, count: 0, revNatIndex, flags: 0, affinityTimeout: 0 })]);
    services.push([key(0), lb4Service.encode({ backendId: 0, count: 1, revNatIndex, flags: 0, affinityTimeout: 0 })]);
  });
  return { services, backends };
}

/** Writes `fillers` (one endpoint each, its first): backends first, then the slots that name them. */
export function writeFillers(maps: { services: MapLike; backends: MapLike }, fillers: readonly BenchService[], firstId: number): void {
  const { services, backends } = entries(fillers, firstId);
  for (let i = 0; i < backends.length; i += BATCH) maps.backends.updateBatch(backends.slice(i, i + BATCH));
  for (let i = 0; i < services.length; i += BATCH) maps.services.updateBatch(services.slice(i, i + BATCH));
}

/** Deletes what writeFillers() wrote for the same arguments: the slots that name the backends, then the backends' slots emptied. */
export function deleteFillers(maps: { services: MapLike; backends: MapLike }, fillers: readonly BenchService[], firstId: number): void {
  const { services, backends } = entries(fillers, firstId);
  for (const [key] of services) maps.services.delete(key);
  const empty = emptyBackend(4);
  const cleared = backends.map(([key]): [Buffer, Buffer] => [key, empty]);
  for (let i = 0; i < cleared.length; i += BATCH) maps.backends.updateBatch(cleared.slice(i, i + BATCH));
}
