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

/** GET `path` (a collection, e.g. /api/v1/services) from the current cluster, items tagged with `apiVersion` and `kind`. */
export async function listObjects(kubeConfig: KubeConfig, path: string, apiVersion: string, kind: string): Promise<KubernetesListObject<KubernetesObject>> {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig: no current cluster');
  const url = new URL(cluster.server + path);
  const options: https.RequestOptions = { headers: { accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const body = await get(url, options);
  const list = JSON.parse(body) as KubernetesListObject<KubernetesObject>;
  for (const item of list.items ?? []) {
    item.apiVersion = apiVersion;
    item.kind = kind;
  }
  return list;
}

/**
 * How long a list may take before it is given up (and the informer lists
 * again): a cluster's worth of EndpointSlices is read in seconds; an API
 * server that stops answering must not hold the daemon's sync for ever.
 */
const LIST_TIMEOUT_MS = 120_000;

function get(url: URL, options: https.RequestOptions): Promise<string> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status >= 200 && status <= 299) resolve(body);
        else reject(new ListError(url.pathname, status, body));
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
