// The Kubernetes API source: @kubernetes/client-node informers for v1
// Services, discovery.k8s.io/v1 EndpointSlices and v1 Nodes. The informers
// are the object store, filled by lists parsed as plain JSON (k8s-list.ts)
// and the library's watches (list, then watch from the list's resourceVersion;
// the library relists on 410 Gone, follows BOOKMARKs and reconnects at once
// when the server ends a watch cleanly). What the library leaves to us: an
// informer that fails (connection refused, reset, a 5xx) stops, and is
// restarted here with capped exponential backoff — the same informer, so
// its store survives and a relist diffs against it. read() hands the
// objects to the same conversion as the file source (k8s.ts), and
// changes() those of the Services the informers' events touched since;
// readNodes()
// and onNodesChanged() feed the node network (node-network.ts) from the same
// Nodes informer.
//
// Services and EndpointSlices are converted as they arrive — the items of
// a list, the objects of ADDED and MODIFIED events — and the informers
// store what ferry reads of them: their identity (apiVersion, kind, name,
// namespace, resourceVersion, a slice's Service label) and their
// conversion (k8s.ts OBJECT_STATE), not the objects. The store is still
// the informer's own (keyed, versioned, diffed on a relist); at 100k
// endpoints the raw objects beside their conversion were a quarter of the
// daemon's heap.
import { KubeConfig, ListWatch, Watch, type Informer, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { objectState, OBJECT_STATE, SERVICE_NAME_LABEL, type ConvertedObject, type SourcedObject } from '../../engine/dataplane/k8s.js';
import type { ManifestRead } from '../../engine/dataplane/manifest-files.js';
import { canonicalIp } from '../../engine/dataplane/model.js';
import { listObjects } from './k8s-list.js';

export const DEFAULT_BACKOFF_MS = 500;
export const DEFAULT_BACKOFF_CAP_MS = 30_000;
/** kube-proxy's configSyncPeriod default. */
export const DEFAULT_RESYNC_MS = 15 * 60_000;
/** The cluster autoscaler's taint on a node it is about to delete. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** Where the API server is: a kubeconfig file, or the pod's service account. */
export type ApiConfig = { kubeconfig: string } | { inCluster: true };

export function loadKubeConfig(config: ApiConfig): KubeConfig {
  const kc = new KubeConfig();
  if ('kubeconfig' in config) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();
  if (kc.getCurrentCluster() === null) throw new Error('kubeconfig: no current cluster');
  return kc;
}

export interface K8sApiSourceOptions {
  kubeConfig: KubeConfig;
  /** This node: its Node object's InternalIPs are the NodePort addresses. */
  nodeName: string;
  log: Logger;
  /** Called after every change once all three resources are listed, and on each resync. */
  onChange: () => void;
  backoffMs?: number;
  backoffCapMs?: number;
  /** A full sync from the store this often, changed or not; default 15 minutes. */
  resyncMs?: number;
}

type Resource = 'services' | 'endpointslices' | 'nodes';

interface Watched {
  resource: Resource;
  apiVersion: string;
  kind: string;
  informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  listed: boolean;
  /** Failures since the last successful list or event. */
  attempt: number;
  timer: NodeJS.Timeout | undefined;
}

/** The source name of the objects read() hands out, and of the problems their conversion reports. */
const API = 'api';

/**
 * What the store keeps of a Service or an EndpointSlice (see the top):
 * its identity and its conversion. An object whose conversion throws
 * something other than the model's errors (a bug) is kept as it came, for
 * the sync to convert and fail on, where it is logged.
 */
function converted(o: KubernetesObject): KubernetesObject {
  let state;
  try {
    state = objectState({ source: API, object: o });
  } catch {
    return o;
  }
  const m = o.metadata ?? {};
  const metadata: ConvertedObject['metadata'] & object = {};
  if (m.name !== undefined) metadata.name = m.name;
  if (m.namespace !== undefined) metadata.namespace = m.namespace;
  if (m.resourceVersion !== undefined) metadata.resourceVersion = m.resourceVersion;
  const service = m.labels?.[SERVICE_NAME_LABEL];
  if (service !== undefined) metadata.labels = { [SERVICE_NAME_LABEL]: service };
  const out: ConvertedObject = { apiVersion: o.apiVersion, kind: o.kind, metadata, [OBJECT_STATE]: state };
  return out as KubernetesObject;
}

/**
 * The library's Watch, with the objects of ADDED and MODIFIED events made
 * into what the store keeps (`convert`) before its informer sees them.
 * DELETED objects only name what goes; BOOKMARK and ERROR events pass as
 * they are (the informer reads their resourceVersion, and the code of an
 * ERROR: 410 makes it list again).
 */
class ConvertingWatch extends Watch {
  readonly #convert: (o: KubernetesObject) => KubernetesObject;

  constructor(config: KubeConfig, convert: (o: KubernetesObject) => KubernetesObject) {
    super(config);
    this.#convert = convert;
  }

  override watch(...[path, queryParams, callback, done]: Parameters<Watch['watch']>): Promise<AbortController> {
    const convert = this.#convert;
    return super.watch(path, queryParams, (phase, object: KubernetesObject, event?: unknown) => callback(phase, phase === 'ADDED' || phase === 'MODIFIED' ? convert(object) : object, event), done);
  }
}

/** Per resource: how many (re)starts and errors so far (tests and logs). */
export interface InformerStats {
  starts: number;
  errors: number;
  lists: number;
}

export class K8sApiSource {
  readonly #o: K8sApiSourceOptions;
  readonly #watched: Watched[] = [];
  readonly #stats = new Map<Resource, InformerStats>();
  #resync: NodeJS.Timeout | undefined;
  readonly #nodeListeners: Array<() => void> = [];
  #closed = false;
  #ready = false;
  #whenReady: { promise: Promise<void>; resolve: () => void };
  /** Services (`namespace/name`) whose objects changed since changes() last ran; undefined: a full read is due. */
  #changed: Set<string> | undefined;
  /** The EndpointSlices in the store by the Service they name (most Services have one), and each slice's Service (`namespace/name` both). */
  readonly #slices = new Map<string, KubernetesObject[]>();
  readonly #sliceService = new Map<string, string>();

  constructor(options: K8sApiSourceOptions) {
    this.#o = options;
    let resolve!: () => void;
    this.#whenReady = { promise: new Promise<void>((r) => (resolve = r)), resolve };
    this.#add('services', 'v1', 'Service', '/api/v1/services');
    this.#add('endpointslices', 'discovery.k8s.io/v1', 'EndpointSlice', '/apis/discovery.k8s.io/v1/endpointslices');
    this.#add('nodes', 'v1', 'Node', '/api/v1/nodes');
  }

  /** Names the source in log lines. */
  get label(): string {
    return `the API server ${this.#o.kubeConfig.getCurrentCluster()?.server ?? ''}`;
  }

  /** True once every resource has been listed: before that a sync would see a partial cluster. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Resolves when ready. */
  whenReady(): Promise<void> {
    return this.#whenReady.promise;
  }

  stats(resource: Resource): InformerStats {
    return { ...this.#stats.get(resource)! };
  }

  #add(resource: Resource, apiVersion: string, kind: string, path: string): void {
    const stats: InformerStats = { starts: 0, errors: 0, lists: 0 };
    this.#stats.set(resource, stats);
    const w: Watched = { resource, apiVersion, kind, listed: false, attempt: 0, timer: undefined } as Watched;
    // Nodes are kept as they come: the node network reads much of them.
    const convert = resource === 'nodes' ? (o: KubernetesObject) => o : converted;
    const listFn = async () => {
      // Each item converted as it arrives: the item as it came is garbage at once.
      const result = await listObjects(this.#o.kubeConfig, path, apiVersion, kind, convert);
      stats.lists++;
      w.attempt = 0;
      // The informer stores the items right after this resolves; the sync it
      // triggers runs after the debounce, and sees them.
      if (!w.listed) {
        w.listed = true;
        this.#o.log.info({ resource, items: result.items.length }, `${resource}: listed ${result.items.length}`);
        this.#checkReady();
      } else {
        this.#o.log.info({ resource, items: result.items.length }, `${resource}: relisted ${result.items.length}`);
      }
      this.#changed = undefined;
      this.#notify(resource);
      return result;
    };
    // What makeInformer() makes, with the Watch that converts.
    w.informer = new ListWatch(path, new ConvertingWatch(this.#o.kubeConfig, convert), listFn, false);
    const changed = (o: KubernetesObject, gone = false) => {
      w.attempt = 0;
      this.#track(resource, o, gone);
      this.#notify(resource);
    };
    w.informer.on('add', (o) => changed(o));
    w.informer.on('update', (o) => changed(o));
    w.informer.on('delete', (o) => changed(o, true));
    w.informer.on('error', (err: unknown) => this.#failed(w, err));
    this.#watched.push(w);
  }

  start(): this {
    for (const w of this.#watched) this.#start(w);
    const resyncMs = this.#o.resyncMs ?? DEFAULT_RESYNC_MS;
    if (resyncMs > 0) {
      this.#resync = setInterval(() => {
        this.#changed = undefined;
        this.#notify('services');
      }, resyncMs);
      this.#resync.unref();
    }
    return this;
  }

  #start(w: Watched): void {
    if (this.#closed) return;
    w.timer = undefined;
    const stats = this.#stats.get(w.resource)!;
    stats.starts++;
    this.#o.log.info({ resource: w.resource, start: stats.starts }, `${w.resource}: informer ${stats.starts === 1 ? 'starting' : 'restarting'}`);
    w.informer.start().catch((err: unknown) => this.#failed(w, err));
  }

  #failed(w: Watched, err: unknown): void {
    if (this.#closed || w.timer !== undefined) return;
    const stats = this.#stats.get(w.resource)!;
    stats.errors++;
    const delay = Math.min((this.#o.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** w.attempt, this.#o.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS);
    w.attempt++;
    const message = err instanceof Error ? err.message : String(err);
    this.#o.log.error({ resource: w.resource, attempt: w.attempt, retryMs: delay }, `${w.resource}: informer failed (${message}); restarting in ${delay} ms`);
    w.timer = setTimeout(() => this.#start(w), delay);
  }

  #checkReady(): void {
    if (this.#ready || !this.#watched.every((w) => w.listed)) return;
    this.#ready = true;
    this.#whenReady.resolve();
    for (const fn of this.#nodeListeners) fn();
  }

  /** Notes the Service `o` belongs to (and a slice's last one) as changed, and keeps the slices' index. */
  #track(resource: Resource, o: KubernetesObject, gone: boolean): void {
    if (resource === 'nodes') return;
    const namespace = o.metadata?.namespace ?? 'default';
    const name = `${namespace}/${o.metadata?.name ?? ''}`;
    if (resource === 'services') {
      this.#changed?.add(name);
      return;
    }
    const before = this.#sliceService.get(name);
    const service = `${namespace}/${o.metadata?.labels?.[SERVICE_NAME_LABEL] ?? ''}`;
    const sameSlice = (s: KubernetesObject) => s.metadata?.name === o.metadata?.name;
    if (before !== undefined && (before !== service || gone)) {
      this.#changed?.add(before);
      const slices = this.#slices.get(before)!.filter((s) => !sameSlice(s));
      if (slices.length === 0) this.#slices.delete(before);
      else this.#slices.set(before, slices);
      this.#sliceService.delete(name);
    }
    this.#changed?.add(service);
    if (gone) return;
    this.#sliceService.set(name, service);
    const slices = this.#slices.get(service);
    if (slices === undefined) this.#slices.set(service, [o]);
    else {
      const i = slices.findIndex(sameSlice);
      if (i >= 0) slices[i] = o;
      else slices.push(o);
    }
  }

  /**
   * The Services whose Service or EndpointSlices changed since the last
   * call, each with all its objects now (the Service, if any, first);
   * undefined on the first call and after a relist or resync: read() then.
   */
  changes(): Map<string, SourcedObject[]> | undefined {
    const changed = this.#changed;
    this.#changed = new Set();
    if (changed === undefined) return undefined;
    const services = this.#watched.find((w) => w.resource === 'services')!;
    const result = new Map<string, SourcedObject[]>();
    for (const key of changed) {
      const [namespace, name] = key.split('/') as [string, string];
      const service = services.informer.get(name, namespace);
      const objects = service === undefined ? [] : [this.#sourced(service)];
      for (const slice of this.#slices.get(key) ?? []) objects.push(this.#sourced(slice));
      result.set(key, objects);
    }
    return result;
  }

  #notify(resource: Resource): void {
    if (!this.#ready || this.#closed) return;
    this.#o.onChange();
    if (resource === 'nodes') for (const fn of this.#nodeListeners) fn();
  }

  /** Calls `fn` after every Node change once the source is ready (the node network follows them). */
  onNodesChanged(fn: () => void): void {
    this.#nodeListeners.push(fn);
  }

  /** The Nodes now in the store, as plain JSON objects. */
  readNodes(): SourcedObject[] {
    const w = this.#watched.find((x) => x.resource === 'nodes')!;
    return w.informer.list().map((o) => this.#sourced(o));
  }

  /** The Services and EndpointSlices now in the store, as plain JSON objects. */
  read(): ManifestRead {
    const objects: SourcedObject[] = [];
    for (const w of this.#watched) {
      if (w.resource === 'nodes') continue;
      for (const o of w.informer.list()) objects.push(this.#sourced(o));
    }
    return { objects, errors: [] };
  }

  /**
   * The store's objects: Services and EndpointSlices with their conversion
   * (OBJECT_STATE), Nodes as plain JSON with apiVersion and kind
   * (k8s-list.ts, the library's Watch).
   */
  #sourced(o: KubernetesObject): SourcedObject {
    return { source: API, object: o };
  }

  /**
   * This node's InternalIP addresses from its Node object, IPv4 and IPv6
   * (a dual-stack node has one of each), as canonical text; undefined
   * without the Node object.
   */
  nodeAddresses(): string[] | undefined {
    const node = this.#node();
    if (node === undefined) return undefined;
    const out: string[] = [];
    for (const a of node.status?.addresses ?? []) {
      const address = a.type === 'InternalIP' && typeof a.address === 'string' ? canonicalIp(a.address) : undefined;
      if (address !== undefined && !out.includes(address)) out.push(address);
    }
    return out;
  }

  /** False while this node's Node object is being deleted, or marked for deletion by the cluster autoscaler (kube-proxy's nodeEligible). */
  nodeEligible(): boolean {
    const node = this.#node();
    return node?.metadata?.deletionTimestamp == null && !(node?.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
  }

  #node(): NodeFields | undefined {
    return this.#watched.find((w) => w.resource === 'nodes')!.informer.get(this.#o.nodeName) as NodeFields | undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#resync);
    for (const w of this.#watched) {
      clearTimeout(w.timer);
      await w.informer.stop();
    }
  }
}

/** What this source reads of a Node. */
interface NodeFields {
  metadata?: { deletionTimestamp?: unknown };
  spec?: { taints?: Array<{ key?: string }> };
  status?: { addresses?: Array<{ type?: string; address?: string }> };
}
