// clusterStateFromObjects() for a daemon that converts the whole cluster on
// every sync, when most objects have not changed since the last one: an
// object the API server gave the same resourceVersion as last time keeps
// its converted form (checking 20k Services and slices again costs seconds
// of zod). The objects keep their identity too, which is what lets
// DesiredStates and the Reconciler pass over unchanged Services. An object
// that carries its conversion (OBJECT_STATE: the API source's) is taken as
// it is, and kept nowhere else. Objects without a resourceVersion
// (manifest files) are converted as before, all of them, every time.
// update() goes further for a source that knows which Services changed:
// it converts only their objects.
import { carriedState, clusterStateFromObjects, objectState, SERVICE_NAME_LABEL, type ClusterState, type ManifestProblem, type ObjectState, type SourcedObject } from './k8s.js';
import { flat } from './flat-string.js';
import { serviceKey, type Endpoint, type Service } from './model.js';

/** One object's conversion, and the resourceVersion it is of. */
interface Converted extends ObjectState {
  resourceVersion: string;
}

type Obj = { kind?: unknown; metadata?: { namespace?: unknown; name?: unknown; resourceVersion?: unknown } };

/** `Service/shop/web` and its resourceVersion, or undefined when the object has none. */
function identity(o: SourcedObject): { key: string; resourceVersion: string } | undefined {
  const object = o.object as Obj | null;
  const rv = object?.metadata?.resourceVersion;
  if (typeof rv !== 'string' || rv === '') return undefined;
  return { key: flat(`${String(object!.kind)}/${String(object!.metadata!.namespace ?? '')}/${String(object!.metadata!.name)}`), resourceVersion: rv };
}

export class ClusterStates {
  #converted = new Map<string, Converted>();
  /** A Service's endpoints joined from several slices, and the slices' lists they were joined from. */
  #joined = new Map<string, { lists: Endpoint[][]; endpoints: Endpoint[] }>();
  /** The state last returned, by Service key, for update(); none after a fall-back. */
  #last: { services: Map<string, Service>; endpoints: Map<string, Endpoint[]>; problems: Map<string, ManifestProblem[]> } | undefined;

  /** The same as clusterStateFromObjects(objects). */
  convert(objects: readonly SourcedObject[]): ClusterState {
    // null: the object carries its conversion, and is not looked up.
    const ids = objects.map((o) => (carriedState(o.object) === undefined ? identity(o) : null));
    if (ids.some((id) => id === undefined)) return this.#fallBack(objects);
    const converted = new Map<string, Converted>();
    const state: ClusterState = { services: [], endpoints: new Map(), problems: [] };
    const slices = new Map<string, Endpoint[][]>();
    const names = new Set<string>();
    const problems = new Map<string, ManifestProblem[]>();
    for (let i = 0; i < objects.length; i++) {
      let c: ObjectState | undefined = carriedState(objects[i]!.object);
      if (c === undefined) {
        const { key, resourceVersion } = ids[i]!;
        let kept = this.#converted.get(key);
        if (kept === undefined || kept.resourceVersion !== resourceVersion) {
          const { services, endpoints, problems } = objectState(objects[i]!);
          kept = { resourceVersion, services, endpoints, problems };
        }
        converted.set(key, kept);
        c = kept;
      }
      for (const s of c.services) {
        const name = `${s.namespace}/${s.name}`;
        // A Service twice (two objects of one name): the whole conversion says which counts.
        if (names.has(name)) return this.#fallBack(objects);
        names.add(name);
        state.services.push(s);
      }
      if (c.problems.length > 0) {
        state.problems.push(...c.problems);
        const service = serviceOf(objects[i]!);
        problems.set(service, [...(problems.get(service) ?? []), ...c.problems]);
      }
      for (const [service, endpoints] of c.endpoints) {
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
    this.#last = { services: new Map(state.services.map((s) => [serviceKey(s), s])), endpoints: state.endpoints, problems };
    return state;
  }

  /**
   * convert() after a change to the Services `changed` only: by key
   * (`namespace/name`), every object of the Service now (it, and the
   * EndpointSlices naming it); none when it is gone. Undefined when that
   * cannot be done (no convert() before, or an object that does not belong
   * to its key): convert() then. The returned state's endpoints map is the
   * last one, changed in place; `services` are the changed Services now.
   */
  update(changed: ReadonlyMap<string, readonly SourcedObject[]>): { state: ClusterState; services: Map<string, Service | undefined> } | undefined {
    const last = this.#last;
    if (last === undefined) return undefined;
    const states = new Map<string, ClusterState>();
    for (const [key, objects] of changed) {
      const state = clusterStateFromObjects(objects);
      if (state.services.some((s) => serviceKey(s) !== key) || [...state.endpoints.keys()].some((k) => k !== key)) return undefined;
      states.set(key, state);
    }
    const services = new Map<string, Service | undefined>();
    for (const [key, state] of states) {
      const service = state.services[0];
      services.set(key, service);
      if (service !== undefined) last.services.set(key, service);
      else last.services.delete(key);
      const endpoints = state.endpoints.get(key);
      if (endpoints !== undefined) last.endpoints.set(key, endpoints);
      else last.endpoints.delete(key);
      if (state.problems.length > 0) last.problems.set(key, state.problems);
      else last.problems.delete(key);
    }
    const state = { services: [...last.services.values()], endpoints: last.endpoints, problems: [...last.problems.values()].flat() };
    return { state, services };
  }

  #fallBack(objects: readonly SourcedObject[]): ClusterState {
    this.#converted.clear();
    this.#joined.clear();
    this.#last = undefined;
    return clusterStateFromObjects(objects);
  }
}

/** The Service an object belongs to: itself, or the one a slice names. */
function serviceOf(o: SourcedObject): string {
  const m = (o.object as { metadata?: { namespace?: string; name?: string; labels?: Record<string, string> } }).metadata;
  const name = (o.object as { kind?: string }).kind === 'Service' ? m?.name : m?.labels?.[SERVICE_NAME_LABEL];
  return `${m?.namespace ?? 'default'}/${name ?? ''}`;
}
