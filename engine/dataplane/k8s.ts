// Kubernetes objects to ferry's model: a v1 Service and the
// discovery.k8s.io/v1 EndpointSlices that name it (label
// kubernetes.io/service-name), as they come from the API server or a
// manifest file, reduced to model.ts's Service and Endpoint. The checks are
// model.ts's; a bad object is reported naming its kind, namespace/name and
// the manifest field (spec.ports[1].targetPort), and the others still count.
import {
  ModelError,
  parseEndpoints,
  parseService,
  serviceKey,
  type Endpoint,
  type ModelIssue,
  type Service,
} from './model.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** An object that was left out, and why. */
export interface ManifestProblem {
  kind: string;
  /** `namespace/name` ('?' for what is missing). */
  object: string;
  /** Where it came from: a file name, `file#3` for the fourth document. */
  source: string;
  /** `spec.ports[0].port: must be ...; ...` */
  message: string;
  /** Left out entirely (error) or only in part (warning: an FQDN slice). */
  severity: 'error' | 'warning';
}

export interface ClusterState {
  services: Service[];
  /** By serviceKey(): the endpoints of every slice naming that Service. */
  endpoints: Map<string, Endpoint[]>;
  problems: ManifestProblem[];
}

/** One parsed document and where it came from. */
export interface SourcedObject {
  source: string;
  object: unknown;
}

/**
 * What one object contributes to a ClusterState: clusterStateFromObjects()
 * of it alone (objectState()), its parts as they are used.
 */
export interface ObjectState {
  services: readonly Service[];
  /** By serviceKey(). */
  endpoints: ReadonlyArray<readonly [string, Endpoint[]]>;
  problems: readonly ManifestProblem[];
}

/**
 * Where a source that converts its objects as they arrive keeps each one's
 * ObjectState: on the object, which then needs nothing else but its
 * apiVersion, kind and metadata (the API source's informers store such
 * objects: one copy of the cluster, not the raw objects beside their
 * conversion). clusterStateFromObjects() takes the ObjectState as the
 * object's conversion. It must be objectState() of the object as it came,
 * with the source it is read with.
 */
export const OBJECT_STATE: unique symbol = Symbol('ferry.objectState');

/** An object carrying its conversion (see OBJECT_STATE). */
export interface ConvertedObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  [OBJECT_STATE]: ObjectState;
}

const NONE = Object.freeze([]) as readonly never[];

/** clusterStateFromObjects([o]) as an ObjectState (shared empty lists: one is held per object of a cluster). */
export function objectState(o: SourcedObject): ObjectState {
  const state = clusterStateFromObjects([o]);
  return {
    // slice(): an array of its own length (one grown by push() has room for 17).
    services: state.services.length > 0 ? state.services.slice() : NONE,
    endpoints: state.endpoints.size > 0 ? [...state.endpoints] : NONE,
    problems: state.problems.length > 0 ? state.problems : NONE,
  };
}

/** The ObjectState an object carries, if it does. */
export function carriedState(object: unknown): ObjectState | undefined {
  return object !== null && typeof object === 'object' ? (object as Partial<ConvertedObject>)[OBJECT_STATE] : undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function meta(o: Obj): { namespace: string; name: string; labels: Obj } {
  const m = obj(o.metadata);
  return { namespace: str(m.namespace) ?? 'default', name: str(m.name) ?? '', labels: obj(m.labels) };
}

/** Model field paths to the manifest's (ports[1].targetPort → spec.ports[1].targetPort). */
const SERVICE_FIELDS: Array<[RegExp, string]> = [
  [/^namespace/, 'metadata.namespace'],
  [/^name/, 'metadata.name'],
  [/^loadBalancerIPs/, 'status.loadBalancer.ingress'],
  [/^affinityTimeoutSeconds/, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds'],
  [/^headless/, 'spec.clusterIP'],
];

function serviceField(field: string): string {
  for (const [re, to] of SERVICE_FIELDS) if (re.test(field)) return field.replace(re, to);
  return field === '(top level)' ? field : `spec.${field}`;
}

/** A v1 Service manifest as the model's Service; throws a ModelError naming manifest fields. */
export function serviceFromManifest(manifest: unknown): Service {
  const o = obj(manifest);
  const { namespace, name } = meta(o);
  const spec = obj(o.spec);
  const clusterIPs = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : spec.clusterIP !== undefined && spec.clusterIP !== '' ? [spec.clusterIP] : [];
  const ingress = Array.isArray(obj(obj(o.status).loadBalancer).ingress) ? (obj(obj(o.status).loadBalancer).ingress as unknown[]) : [];
  const input = {
    namespace,
    name,
    type: spec.type,
    clusterIPs,
    externalIPs: spec.externalIPs,
    // An ingress with only a hostname has no address to serve.
    loadBalancerIPs: ingress.map((i) => obj(i).ip).filter((ip) => ip !== undefined),
    ports: Array.isArray(spec.ports)
      ? spec.ports.map((p) => {
          const port = obj(p);
          return { name: port.name, protocol: port.protocol, port: port.port, targetPort: port.targetPort, nodePort: port.nodePort };
        })
      : spec.ports,
    sessionAffinity: spec.sessionAffinity,
    affinityTimeoutSeconds: obj(obj(spec.sessionAffinityConfig).clientIP).timeoutSeconds,
    externalTrafficPolicy: spec.externalTrafficPolicy,
    internalTrafficPolicy: spec.internalTrafficPolicy,
    healthCheckNodePort: spec.healthCheckNodePort,
  };
  try {
    return parseService(dropUndefined(input));
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    const issues: ModelIssue[] = e.issues.map((i) => ({ field: serviceField(i.field), message: i.message }));
    throw new ModelError('Service', namespace, name, issues);
  }
}

/** What an EndpointSlice contributes: its Service's key and endpoints. */
export interface SliceEndpoints {
  service: string;
  endpoints: Endpoint[];
}

/** Thrown for a slice ferry does not use (an FQDN one): not an error in the slice. */
export class UnsupportedSliceError extends Error {
  override readonly name = 'UnsupportedSliceError';
}

/**
 * A discovery.k8s.io/v1 EndpointSlice's endpoints, each with the slice's
 * ports: addressType IPv4 or IPv6 (a dual-stack Service has a slice of
 * each). Throws a ModelError for a bad slice (naming the slice, or an
 * address of the other family), an UnsupportedSliceError for an FQDN one.
 */
export function endpointSliceFromManifest(manifest: unknown): SliceEndpoints {
  const o = obj(manifest);
  const { namespace, name, labels } = meta(o);
  const bad = (field: string, message: string) => new ModelError('Endpoints', namespace, name, [{ field, message }]);
  const service = str(labels[SERVICE_NAME_LABEL]);
  if (service === undefined || service === '') throw bad(`metadata.labels["${SERVICE_NAME_LABEL}"]`, 'required: the Service this slice belongs to');
  const addressType = o.addressType;
  // kube-proxy does not use FQDN slices either: they name no address to balance to.
  if (addressType === 'FQDN') throw new UnsupportedSliceError('addressType FQDN: its endpoints are names, which Services are not balanced to');
  if (addressType !== 'IPv4' && addressType !== 'IPv6') throw bad('addressType', `must be IPv4, IPv6 or FQDN, not ${JSON.stringify(addressType)}`);
  if (o.endpoints !== undefined && o.endpoints !== null && !Array.isArray(o.endpoints)) throw bad('endpoints', 'must be a list');
  if (o.ports !== undefined && o.ports !== null && !Array.isArray(o.ports)) throw bad('ports', 'must be a list');
  // A port without a number means "all ports" in the API; no Service port can use it.
  const ports = ((o.ports as unknown[] | null | undefined) ?? [])
    .map(obj)
    .filter((p) => p.port !== undefined && p.port !== null)
    .map((p) => dropUndefined({ name: p.name === '' ? undefined : p.name, port: p.port, protocol: p.protocol }));
  const endpoints = ((o.endpoints as unknown[] | null | undefined) ?? []).map((raw) => {
    const e = obj(raw);
    const c = obj(e.conditions);
    return dropUndefined({
      addresses: e.addresses,
      ports,
      ready: c.ready ?? undefined,
      serving: c.serving ?? undefined,
      terminating: c.terminating ?? undefined,
      nodeName: e.nodeName ?? undefined,
      zone: e.zone ?? undefined,
    });
  });
  try {
    const parsed = parseEndpoints({ namespace, name }, endpoints);
    // The model's addresses are canonical: IPv6 text, and only it, has a colon.
    const v6 = addressType === 'IPv6';
    parsed.forEach((e, i) => {
      const j = e.addresses.findIndex((a) => a.includes(':') !== v6);
      if (j >= 0) throw bad(`endpoints[${i}].addresses[${j}]`, `"${e.addresses[j]}" is not an ${addressType} address, as the slice's addressType says`);
    });
    return { service: serviceKey({ namespace, name: service }), endpoints: parsed };
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    const issues = e.issues.map((i) => ({ field: sliceField(i.field), message: i.message }));
    throw new ModelError('Endpoints', namespace, name, issues);
  }
}

/** endpoints[1].ports[0].port → ports[0].port (the slice's), endpoints[0].ready → endpoints[0].conditions.ready. */
function sliceField(modelField: string): string {
  // parseEndpoints() checks a bare list: its paths start at the index.
  const field = modelField.startsWith('[') ? `endpoints${modelField}` : modelField;
  const port = /^endpoints\[\d+\]\.ports(.*)$/.exec(field);
  if (port) return `ports${port[1]}`;
  return field.replace(/^(endpoints\[\d+\])\.(ready|serving|terminating)/, '$1.conditions.$2');
}

/**
 * The Services and endpoints among `objects`: v1 Services and
 * discovery.k8s.io/v1 EndpointSlices (also inside a List); other kinds are
 * ignored. A bad object is left out and reported in `problems`.
 */
export function clusterStateFromObjects(objects: Iterable<SourcedObject>): ClusterState {
  const state: ClusterState = { services: [], endpoints: new Map(), problems: [] };
  const seen = new Map<string, string>();
  // A Service's endpoints are the very list of its one slice (a carried
  // one is kept with its object: see OBJECT_STATE), joined into a list
  // made here when it has more; a list not made here is never changed.
  const made = new Set<Endpoint[]>();
  const addEndpoints = (service: string, endpoints: Endpoint[]) => {
    const list = state.endpoints.get(service);
    if (list === undefined) state.endpoints.set(service, endpoints);
    else if (made.has(list)) list.push(...endpoints);
    else {
      const joined = [...list, ...endpoints];
      made.add(joined);
      state.endpoints.set(service, joined);
    }
  };
  const visit = (source: string, value: unknown) => {
    if (value === null || value === undefined) return; // an empty document
    const o = obj(value);
    const { namespace, name } = meta(o);
    const object = `${namespace}/${name || '?'}`;
    const problem = (kind: string, message: string, severity: ManifestProblem['severity'] = 'error') =>
      state.problems.push({ kind, object, source, message, severity });
    const kind = str(o.kind);
    const apiVersion = str(o.apiVersion);
    const carried = carriedState(o);
    if (carried !== undefined) {
      for (const service of carried.services) {
        const key = serviceKey(service);
        const earlier = seen.get(key);
        if (earlier !== undefined) {
          problem('Service', `defined twice (also in ${earlier}); the first one is used`);
          continue;
        }
        seen.set(key, source);
        state.services.push(service);
      }
      for (const [service, endpoints] of carried.endpoints) addEndpoints(service, endpoints);
      state.problems.push(...carried.problems);
      return;
    }
    if (kind === 'List' || kind?.endsWith('List')) {
      if (Array.isArray(o.items)) o.items.forEach((item, i) => visit(`${source}.items[${i}]`, item));
      return;
    }
    try {
      if (kind === 'Service' && apiVersion === 'v1') {
        const service = serviceFromManifest(o);
        const key = serviceKey(service);
        const earlier = seen.get(key);
        if (earlier !== undefined) return problem('Service', `defined twice (also in ${earlier}); the first one is used`);
        seen.set(key, source);
        state.services.push(service);
      } else if (kind === 'EndpointSlice' && apiVersion === 'discovery.k8s.io/v1') {
        const slice = endpointSliceFromManifest(o);
        addEndpoints(slice.service, slice.endpoints);
      } else if (kind === undefined || apiVersion === undefined) {
        problem(kind ?? '?', 'not a Kubernetes object: apiVersion and kind are required');
      }
      // Any other kind (a Deployment beside its Service): not ours.
    } catch (e) {
      if (e instanceof ModelError) problem(kind!, e.issues.map((i) => `${i.field}: ${i.message}`).join('; '));
      else if (e instanceof UnsupportedSliceError) problem(kind!, e.message, 'warning');
      else throw e;
    }
  };
  for (const { source, object } of objects) visit(source, object);
  return state;
}

/** `o` without its undefined members (a loop: this runs for every endpoint of the cluster). */
function dropUndefined<T extends Obj>(o: T): T {
  const out: Obj = {};
  for (const key in o) if (o[key] !== undefined) out[key] = o[key];
  return out as T;
}
