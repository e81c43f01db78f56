// Programming time through ferry's Reconciler, in this process, on a
// dataplane loaded under the run's pin root: the desired state of every
// Service (DesiredStates, as the daemon computes it sync after sync) and
// apply() of it, from empty maps; then one endpoint of one Service replaced
// (a pod restarted with a new address: the same Service objects, one new
// endpoint list), and back, `changes` times in all (the first ones after
// the big apply run colder than a daemon's steady state); then every
// Service removed, which leaves the maps empty for the next round. Each
// apply()'s counts are checked, so a figure is known to have written what
// it claims.
import type { Dataplane } from '../../engine/dataplane/loader.js';
import { DesiredStates } from '../../engine/dataplane/desired.js';
import { Reconciler, type ApplyResult } from '../../engine/dataplane/reconcile.js';
import { modelCluster, modelEndpoints, NAMESPACE, replaceLastEndpoint, type BenchService } from '../support/cluster.js';

export interface ReconcilerRound {
  /** The desired state of every Service, then apply() on empty maps. */
  full: { desiredMs: number; applyMs: number };
  /** The same after one endpoint was replaced, or put back: one per change. */
  changes: Array<{ desiredMs: number; applyMs: number }>;
  /** apply() of an empty desired state. */
  removeMs: number;
}

const NODE_NAME = 'bench';

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const value = f();
  return [value, performance.now() - t0];
}

function expect(what: string, ok: boolean, result: ApplyResult): void {
  if (!ok) throw new Error(`${what}: the Reconciler wrote something else than expected: ${JSON.stringify({ services: result.services, backends: result.backends, revNat: result.revNat })}`);
}

export async function reconcilerRound(dp: Dataplane, services: readonly BenchService[], changed: { index: number; address: string }, changes: number): Promise<ReconcilerRound> {
  const endpoints = services.reduce((n, s) => n + s.endpoints.length, 0);
  const reconciler = await Reconciler.adopt(dp.maps);
  const all = modelCluster(services);
  const states = new DesiredStates();
  const [desired, desiredMs] = timed(() => states.compute(all.services, all.endpoints, { nodeName: NODE_NAME }));
  const [applied, applyMs] = timed(() => reconciler.apply(desired));
  expect('all Services', applied.services.added === services.length + endpoints && applied.backends.added === endpoints, applied);

  // Only the changed Service's endpoints differ: the same Service objects, one new endpoint list.
  const before = services[changed.index]!;
  const after = replaceLastEndpoint(before, changed.address);
  const lists = [modelEndpoints(after.endpoints), modelEndpoints(before.endpoints)];
  const changeTimes: ReconcilerRound['changes'] = [];
  for (let i = 0; i < changes; i++) {
    const endpointsNow = new Map(all.endpoints);
    endpointsNow.set(`${NAMESPACE}/${before.name}`, lists[i % 2]!);
    const [desired2, desiredMs2] = timed(() => states.compute(all.services, endpointsNow, { nodeName: NODE_NAME }));
    const [applied2, applyMs2] = timed(() => reconciler.apply(desired2));
    expect('one endpoint replaced', applied2.services.updated === 1 && applied2.backends.added === 1 && applied2.backends.removed === 1, applied2);
    changeTimes.push({ desiredMs: desiredMs2, applyMs: applyMs2 });
  }

  const [removed, removeMs] = timed(() => reconciler.apply({ frontends: new Map(), backends: new Map(), skipped: [] }));
  expect('every Service removed', removed.services.removed === services.length + endpoints, removed);
  return { full: { desiredMs, applyMs }, changes: changeTimes, removeMs };
}
