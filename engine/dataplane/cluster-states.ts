// clusterStateFromObjects() for a daemon that converts the whole cluster on
// every sync, when most objects have not changed since the last one: an
// object the API server gave the same resourceVersion as last time keeps
// its converted form (checking 20k Services and slices again costs seconds
// of zod). The objects keep their identity too, which is what lets
// DesiredStates and the Reconciler pass over unchanged Services. Objects
// without a resourceVersion (manifest files) are converted as before, all
// of them, every time.
import { clusterStateFromObjects, type ClusterState, type SourcedObject } from './k8s.js';
import type { Endpoint } from './model.js';

interface Converted {
  resourceVersion: string;
  state: ClusterState;
}

type Obj = { kind?: unknown; metadata?: { namespace?: unknown; name?: unknown; resourceVersion?: unknown } };

/** `Service/shop/web` and its resourceVersion, or undefined when the object has none. */
function identity(o: SourcedObject): { key: string; resourceVersion: string } | undefined {
  const object = o.object as Obj | null;
  const rv = object?.metadata?.resourceVersion;
  if (typeof rv !== 'string' || rv === '') return undefined;
  return { key: `${String(object!.kind)}/${String(object!.metadata!.namespace ?? '')}/${String(object!.metadata!.name)}`, resourceVersion: rv };
}

export class ClusterStates {
  #converted = new Map<string, Converted>();
  /** A Service's endpoints joined from several slices, and the slices' lists they were joined from. */
  #joined = new Map<string, { lists: Endpoint[][]; endpoints: Endpoint[] }>();

  /** The same as clusterStateFromObjects(objects). */
  convert(objects: readonly SourcedObject[]): ClusterState {
    const ids = objects.map(identity);
    if (ids.some((id) => id === undefined)) return this.#fallBack(objects);
    const converted = new Map<string, Converted>();
    const state: ClusterState = { services: [], endpoints: new Map(), problems: [] };
    const slices = new Map<string, Endpoint[][]>();
    const names = new Set<string>();
    for (let i = 0; i < objects.length; i++) {
      const { key, resourceVersion } = ids[i]!;
      let c = this.#converted.get(key);
      if (c === undefined || c.resourceVersion !== resourceVersion) c = { resourceVersion, state: clusterStateFromObjects([objects[i]!]) };
      converted.set(key, c);
      for (const s of c.state.services) {
        const name = `${s.namespace}/${s.name}`;
        // A Service twice (two objects of one name): the whole conversion says which counts.
        if (names.has(name)) return this.#fallBack(objects);
        names.add(name);
        state.services.push(s);
      }
      if (c.state.problems.length > 0) state.problems.push(...c.state.problems);
      for (const [service, endpoints] of c.state.endpoints) {
        const list = slices.get(service);
        if (list === undefined) slices.set(service, [endpoints]);
        else list.push(endpoints);
      }
    }
    // A Service's endpoints keep their array (and so its identity) while its slices do.
    const joined = new Map<string, { lists: Endpoint[][]; endpoints: Endpoint[] }>();
    for (const [service, lists] of slices) {
      if (lists.length === 1) {
        state.endpoints.set(service, lists[0]!);
        continue;
      }
      const last = this.#joined.get(service);
      const same = last !== undefined && last.lists.length === lists.length && last.lists.every((l, i) => l === lists[i]);
      const entry = same ? last : { lists, endpoints: lists.flat() };
      joined.set(service, entry);
      state.endpoints.set(service, entry.endpoints);
    }
    this.#converted = converted;
    this.#joined = joined;
    return state;
  }

  #fallBack(objects: readonly SourcedObject[]): ClusterState {
    this.#converted.clear();
    this.#joined.clear();
    return clusterStateFromObjects(objects);
  }
}
