// An informer's list request, answered as plain JSON. The generated API
// clients (CoreV1Api.listServiceForAllNamespaces, …) turn every item of a
// list into the library's model classes — a copy of each object with every
// field of its type present, most of them undefined — which at 10k Services
// and 10k EndpointSlices cost ~0.4 s of a daemon's start and kept the store
// some 20 MB bigger than the objects themselves. Watch events come as plain
// JSON anyway (the library's Watch parses each line with JSON.parse), so a
// list parsed the same way gives the store one kind of object.
//
// The request is the library's own: KubeConfig.applyToHTTPSOptions sets the
// TLS agent (CA, client certificate, proxy), the bearer token (re-read from
// a service account's file as it rotates) and basic auth, as it does for
// the Watch. The API server omits apiVersion and kind from a list's items;
// they are put back, so an item reads as the object a watch event carries.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { ListSplitter } from './list-splitter.js';

/** A list request the API server refused; `statusCode` as the library's errors carry it. */
export class ListError extends Error {
  override readonly name = 'ListError';
  constructor(
    readonly path: string,
    readonly statusCode: number,
    body: string,
  ) {
    super(`GET ${path}: HTTP ${statusCode}${statusMessage(body)}`);
  }
}

/**
 * GET `path` (a collection, e.g. /api/v1/services) from the current
 * cluster, items tagged with `apiVersion` and `kind`. Each item is parsed
 * as it arrives (list-splitter.ts) and handed to `each`, whose result the
 * list holds: the API source converts it there, and the item as parsed is
 * garbage at once.
 */
export async function listObjects(
  kubeConfig: KubeConfig,
  path: string,
  apiVersion: string,
  kind: string,
  each: (item: KubernetesObject) => KubernetesObject = (item) => item,
): Promise<KubernetesListObject<KubernetesObject>> {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig: no current cluster');
  const url = new URL(cluster.server + path);
  const options: https.RequestOptions = { headers: { accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const items: KubernetesObject[] = [];
  const splitter = new ListSplitter((text) => {
    const item = JSON.parse(text) as KubernetesObject;
    item.apiVersion = apiVersion;
    item.kind = kind;
    items.push(each(item));
  });
  await get(url, options, splitter);
  const list = splitter.end() as KubernetesListObject<KubernetesObject>;
  // The rest of the list has "items": [] where its items were.
  if (Array.isArray(list.items)) list.items = items;
  return list;
}

/**
 * How long a list may take before it is given up (and the informer lists
 * again): a cluster's worth of EndpointSlices is read in seconds; an API
 * server that stops answering must not hold the daemon's sync for ever.
 */
const LIST_TIMEOUT_MS = 120_000;

/** GET `url`, a successful answer's text written to `sink` as it comes; a refusal is a ListError. */
function get(url: URL, options: https.RequestOptions, sink: { write(text: string): void }): Promise<void> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status <= 299;
      // Decoded as it comes: each chunk's buffer is free again at once, so
      // the reads reuse the same malloc'd memory instead of piling up a
      // list's worth of it that the C heap keeps long after (glibc does not
      // give the middle of its heap back).
      res.setEncoding('utf8');
      const refusal: string[] = [];
      res.on('data', (chunk: string) => {
        if (!ok) refusal.push(chunk);
        else {
          try {
            sink.write(chunk);
          } catch (e) {
            req.destroy(e instanceof Error ? e : new Error(String(e)));
          }
        }
      });
      res.on('error', reject);
      res.on('end', () => {
        if (ok) resolve();
        else reject(new ListError(url.pathname, status, refusal.join('')));
      });
    });
    req.on('error', reject);
    req.setTimeout(LIST_TIMEOUT_MS, () => req.destroy(new Error(`GET ${url.pathname}: no answer within ${LIST_TIMEOUT_MS / 1000} s`)));
    req.end();
  });
}

/** `: message` of a Status object the API server sent back, if it is one. */
function statusMessage(body: string): string {
  try {
    const status = JSON.parse(body) as { message?: unknown };
    return typeof status.message === 'string' ? `: ${status.message}` : '';
  } catch {
    return '';
  }
}
