// v1 Nodes from the API server for the node network: one
// @kubernetes/client-node informer (list, then watch; the library relists
// on 410 Gone and follows BOOKMARKs), restarted here with capped
// exponential backoff when it fails, as k8s-source.ts does for the service
// resources. Its own informer, not k8s-source's: the node network must
// react to Node changes only, and runs whether or not Services are served.
import { CoreV1Api, makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { SourcedObject } from '../../engine/dataplane/k8s.js';
import { DEFAULT_BACKOFF_CAP_MS, DEFAULT_BACKOFF_MS } from './k8s-source.js';

export interface NodeInformerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** After the first list and after every Node added, changed or deleted. */
  onChange: () => void;
  backoffMs?: number;
  backoffCapMs?: number;
}

export class NodeInformer {
  readonly #o: NodeInformerOptions;
  readonly #informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  #listed = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: NodeInformerOptions) {
    this.#o = options;
    const core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#informer = makeInformer(options.kubeConfig, '/api/v1/nodes', async () => {
      const list = await core.listNode();
      this.#attempt = 0;
      this.#o.log.info({ resource: 'nodes', items: list.items.length }, `nodes: ${this.#listed ? 'relisted' : 'listed'} ${list.items.length}`);
      // The informer stores the items right after this resolves; onChange's consumer runs later (debounced) and sees them.
      this.#listed = true;
      this.#changed();
      return list;
    });
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.#informer.on(verb, () => {
        this.#attempt = 0;
        this.#changed();
      });
    }
    this.#informer.on('error', (err: unknown) => this.#failed(err));
  }

  /** True once the Nodes have been listed: before that, an empty store means nothing. */
  get listed(): boolean {
    return this.#listed;
  }

  start(): this {
    if (!this.#closed) this.#informer.start().catch((err: unknown) => this.#failed(err));
    return this;
  }

  /** The Nodes in the store, as the plain JSON objects nodesFromObjects() reads. */
  read(): SourcedObject[] {
    // List items come as the library's model classes, without apiVersion and kind.
    return this.#informer.list().map((o) => ({ source: 'api', object: { ...(JSON.parse(JSON.stringify(o)) as object), apiVersion: 'v1', kind: 'Node' } }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#informer.stop();
  }

  #changed(): void {
    if (this.#listed && !this.#closed) this.#o.onChange();
  }

  #failed(err: unknown): void {
    if (this.#closed || this.#timer !== undefined) return;
    const delay = Math.min((this.#o.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** this.#attempt, this.#o.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS);
    this.#attempt++;
    const message = err instanceof Error ? err.message : String(err);
    this.#o.log.error({ resource: 'nodes', attempt: this.#attempt, retryMs: delay }, `nodes: informer failed (${message}); restarting in ${delay} ms`);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.start();
    }, delay);
  }
}
