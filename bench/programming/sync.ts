// Programming time through the daemon's own sync path, in this process, on
// a dataplane loaded under the run's pin root: ServiceSync (what `ferry
// daemon` runs) fed by an object source that behaves as the API server
// source does (K8sApiSource): every object on the first sync (read()),
// then only the Services whose objects changed (changes()). So the first
// sync converts every Service and EndpointSlice, computes the desired
// state and writes it to empty maps; each change after it converts the
// changed Service's objects, updates the desired state by key
// (DesiredStates.update) and applies only those keys (the Reconciler's
// by-key diff) — the watch path. One endpoint of one Service is replaced
// (a pod restarted with a new address) and put back, `changes` times in
// all. Then every Service is removed, which leaves the maps empty for the
// next round. Each sync's counts are checked, so a figure is known to have
// written what it claims, and a change that fell back to a full read fails
// the round.
import pino from 'pino';
import type { Dataplane } from '../../engine/dataplane/loader.js';
import type { SourcedObject } from '../../engine/dataplane/k8s.js';
import type { ManifestRead } from '../../engine/dataplane/manifest-files.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import { ServiceSync, type ObjectSource, type SyncReport } from '../../plugin/daemon/services.js';
import { NAMESPACE, serviceObject, sliceObject, type BenchService } from '../support/cluster.js';

/** One sync: the daemon's own ms, and where they went. */
export interface SyncFigures {
  ms: number;
  stagesMs: NonNullable<SyncReport['stagesMs']>;
}

export interface SyncRound {
  /** The first sync: every object converted, the desired state of every Service, apply() on empty maps. */
  full: SyncFigures;
  /** A sync after one endpoint was replaced, or put back: one per change. */
  changes: SyncFigures[];
  /** apply() of an empty desired state. */
  removeMs: number;
}

const NODE_NAME = 'bench';

/** The cluster's objects as an API server source holds them, with the Services changed since changes() last ran. */
class BenchObjects implements ObjectSource {
  readonly label = 'the bench';
  readonly #objects = new Map<string, SourcedObject[]>();
  #changed: Set<string> | undefined;
  #resourceVersion = 1;
  reads = 0;

  constructor(services: readonly BenchService[]) {
    for (const s of services) this.set(s, s.endpoints);
    this.#changed = undefined;
  }

  /** Replaces `s`'s objects, its slice with `endpoints`, as a watch event would. */
  set(s: BenchService, endpoints: readonly string[]): void {
    const versioned = (o: Record<string, unknown>): SourcedObject => {
      (o.metadata as Record<string, unknown>).resourceVersion = String(this.#resourceVersion++);
      return { source: 'api', object: o };
    };
    const key = `${NAMESPACE}/${s.name}`;
    const service = this.#objects.get(key)?.[0] ?? versioned(serviceObject(s));
    this.#objects.set(key, [service, versioned(sliceObject(s, endpoints))]);
    this.#changed?.add(key);
  }

  read(): ManifestRead {
    this.reads++;
    return { objects: [...this.#objects.values()].flat(), errors: [] };
  }

  changes(): Map<string, SourcedObject[]> | undefined {
    const changed = this.#changed;
    this.#changed = new Set();
    return changed && new Map([...changed].map((key) => [key, this.#objects.get(key)!]));
  }
}

function check(what: string, ok: boolean, report: SyncReport): void {
  if (!ok) throw new Error(`${what}: the sync wrote something else than expected: ${JSON.stringify(report.writes)}`);
}

const figures = (r: SyncReport): SyncFigures => ({ ms: r.ms, stagesMs: r.stagesMs! });

export async function syncRound(dp: Dataplane, services: readonly BenchService[], changed: { index: number; address: string }, changes: number): Promise<SyncRound> {
  const endpoints = services.reduce((n, s) => n + s.endpoints.length, 0);
  const reconciler = await Reconciler.adopt(dp.maps);
  const source = new BenchObjects(services);
  const sync = new ServiceSync({ path: source, nodeName: NODE_NAME, reconciler, maps: dp.maps, log: pino({ level: 'silent' }) });
  const first = sync.syncNow();
  check('all Services', first.writes.services.added === services.length + endpoints && first.writes.backends.added === endpoints, first);

  const s = services[changed.index]!;
  const lists = [[...s.endpoints.slice(0, -1), changed.address], s.endpoints];
  const changeFigures: SyncFigures[] = [];
  for (let i = 0; i < changes; i++) {
    source.set(s, lists[i % 2]!);
    const r = sync.syncNow();
    check('one endpoint replaced', r.writes.services.updated === 1 && r.writes.backends.added === 1 && r.writes.backends.removed === 1, r);
    changeFigures.push(figures(r));
  }
  if (source.reads !== 1) throw new Error(`the changes were synced from a full read (${source.reads} reads), not by key`);
  await sync.close();

  const t0 = performance.now();
  const removed = reconciler.apply({ frontends: new Map(), backends: new Map(), skipped: [] });
  const removeMs = performance.now() - t0;
  if (removed.services.removed !== services.length + endpoints) throw new Error(`every Service removed: ${removed.services.removed} entries went`);
  return { full: figures(first), changes: changeFigures, removeMs };
}
