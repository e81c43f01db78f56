// A fake Kubernetes API server on 127.0.0.1 speaking list + watch for
// /api/v1/services, /apis/discovery.k8s.io/v1/endpointslices and
// /api/v1/nodes: lists carry a resourceVersion, watches stream
// ADDED/MODIFIED/DELETED/BOOKMARK JSON lines from a given resourceVersion,
// and a resourceVersion older than the kept history gets 410 Gone. Every
// request is recorded so tests can see relists and reconnects.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';

export const RESOURCES = {
  services: { path: '/api/v1/services', apiVersion: 'v1', kind: 'Service' },
  endpointslices: { path: '/apis/discovery.k8s.io/v1/endpointslices', apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' },
  nodes: { path: '/api/v1/nodes', apiVersion: 'v1', kind: 'Node' },
} as const;
export type ResourceName = keyof typeof RESOURCES;

type Obj = { metadata: { name: string; namespace?: string; resourceVersion?: string }; [k: string]: unknown };
interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}
export interface RequestRecord {
  resource: ResourceName;
  watch: boolean;
  resourceVersion: string | undefined;
  time: number;
  authorization: string | undefined;
}

export class FakeApiServer {
  readonly requests: RequestRecord[] = [];
  readonly #server = http.createServer((req, res) => this.#handle(req, res));
  #rv = 100;
  readonly #objects = new Map<ResourceName, Map<string, Obj>>();
  readonly #history = new Map<ResourceName, Event[]>();
  /** Events at or below this resourceVersion are forgotten (compacted). */
  readonly #compacted = new Map<ResourceName, number>();
  readonly #watchers = new Map<ResourceName, Set<http.ServerResponse>>();
  port = 0;

  /** `firstResourceVersion`: a restarted server's history starts past the old one's. */
  constructor(firstResourceVersion = 100) {
    this.#rv = firstResourceVersion;
    for (const r of Object.keys(RESOURCES) as ResourceName[]) {
      this.#objects.set(r, new Map());
      this.#history.set(r, []);
      this.#compacted.set(r, 0);
      this.#watchers.set(r, new Set());
    }
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, resolve);
    });
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A kubeconfig naming this server, with a bearer token. */
  writeKubeconfig(file: string): void {
    writeKubeconfig(file, this.url);
  }

  /** Creates or replaces an object; watchers get ADDED or MODIFIED. */
  apply(resource: ResourceName, object: Obj): void {
    const key = `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    const store = this.#objects.get(resource)!;
    const type = store.has(key) ? 'MODIFIED' : 'ADDED';
    const rv = ++this.#rv;
    const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } };
    store.set(key, stored);
    this.#emit(resource, { rv, type, object: stored });
  }

  /** Deletes an object; watchers get DELETED. */
  remove(resource: ResourceName, namespace: string | undefined, name: string): void {
    const key = `${namespace ?? ''}/${name}`;
    const store = this.#objects.get(resource)!;
    const old = store.get(key);
    if (old === undefined) return;
    store.delete(key);
    const rv = ++this.#rv;
    this.#emit(resource, { rv, type: 'DELETED', object: { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } } });
  }

  /** Changes an object without telling watchers, and forgets the history: only a relist finds out. */
  applySilently(resource: ResourceName, object: Obj | { delete: { namespace?: string; name: string } }): void {
    const store = this.#objects.get(resource)!;
    const rv = ++this.#rv;
    if ('delete' in object) {
      const gone = object.delete as { namespace?: string; name: string };
      store.delete(`${gone.namespace ?? ''}/${gone.name}`);
    }
    else store.set(`${object.metadata.namespace ?? ''}/${object.metadata.name}`, { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } });
    this.#compacted.set(resource, rv);
  }

  /** Sends a BOOKMARK at the current resourceVersion to every watcher of `resource`. */
  bookmark(resource: ResourceName): number {
    const { apiVersion, kind } = RESOURCES[resource];
    const rv = ++this.#rv;
    for (const res of this.#watchers.get(resource)!) {
      res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { apiVersion, kind, metadata: { resourceVersion: String(rv) } } })}\n`);
    }
    return rv;
  }

  /** Sends an ERROR event with code 410 to every watcher of `resource`, and ends their watches. */
  gone(resource: ResourceName): void {
    for (const res of this.#watchers.get(resource)!) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' } })}\n`);
    }
    this.#watchers.get(resource)!.clear();
  }

  /** Ends the watches of `resource` cleanly (`destroy`: resets the connections instead). */
  dropWatches(resource: ResourceName, destroy = false): number {
    const set = this.#watchers.get(resource)!;
    const n = set.size;
    for (const res of set) {
      if (destroy) res.socket?.destroy();
      else res.end();
    }
    set.clear();
    return n;
  }

  /** Watchers of `resource` now connected. */
  watching(resource: ResourceName): number {
    return this.#watchers.get(resource)!.size;
  }

  async close(): Promise<void> {
    for (const set of this.#watchers.values()) for (const res of set) res.socket?.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #emit(resource: ResourceName, event: Event): void {
    this.#history.get(resource)!.push(event);
    for (const res of this.#watchers.get(resource)!) res.write(`${JSON.stringify({ type: event.type, object: this.#stamped(resource, event.object) })}\n`);
  }

  #stamped(resource: ResourceName, o: Obj): Obj {
    const { apiVersion, kind } = RESOURCES[resource];
    return { apiVersion, kind, ...o };
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const resource = (Object.keys(RESOURCES) as ResourceName[]).find((r) => RESOURCES[r].path === url.pathname);
    if (resource === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404 }));
      return;
    }
    const watch = url.searchParams.get('watch') === 'true';
    const rvParam = url.searchParams.get('resourceVersion') ?? undefined;
    this.requests.push({ resource, watch, resourceVersion: rvParam, time: Date.now(), authorization: req.headers.authorization });
    const { apiVersion, kind } = RESOURCES[resource];
    if (!watch) {
      // List items carry no apiVersion/kind, as the real API server's don't.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion, kind: `${kind}List`, metadata: { resourceVersion: String(this.#rv) }, items: [...this.#objects.get(resource)!.values()] }));
      return;
    }
    const from = Number(rvParam ?? '0');
    if (from < this.#compacted.get(resource)!) {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    for (const e of this.#history.get(resource)!) {
      if (e.rv > from) res.write(`${JSON.stringify({ type: e.type, object: this.#stamped(resource, e.object) })}\n`);
    }
    this.#watchers.get(resource)!.add(res);
    res.on('close', () => this.#watchers.get(resource)!.delete(res));
  }
}

/** A kubeconfig for the API server at `url`, with a bearer token. */
export function writeKubeconfig(file: string, url: string): void {
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain HTTP: the library wants skip-TLS-verify for an http:// server.
      clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'ferry', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'ferry' } }],
      'current-context': 'fake',
    }),
  );
}
