// A fake API server (fake-apiserver.ts) reachable from inside a node
// namespace, where the daemon under test runs: it lives on a worker thread
// that entered that namespace (the test's main thread never does), and the
// test drives it by messages.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Netns } from '../../engine/netns/netns.js';
import { writeKubeconfig, type FakeApiServer, type ResourceName } from './fake-apiserver.js';

type Obj = Parameters<FakeApiServer['apply']>[1];

export type ApiServerMessage =
  | { op: 'apply'; resource: ResourceName; object: Obj }
  | { op: 'remove'; resource: ResourceName; namespace: string | undefined; name: string }
  | { op: 'close' };

export class NetnsApiServer {
  private constructor(
    private readonly worker: Worker,
    /** On 127.0.0.1 of the namespace. */
    readonly port: number,
  ) {}

  static async start(netns: Netns): Promise<NetnsApiServer> {
    // Worker threads do not get vitest's TypeScript transform: boot through tsx.
    const url = new URL('./netns-apiserver-worker.ts', import.meta.url).href;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
    const boot = `import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(url)}, ${JSON.stringify(url)}))`;
    const worker = new Worker(boot, { eval: true, workerData: { nsFd: netns.fd, nsName: netns.name } });
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: { port: number }) => resolve(m.port));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`fake API server thread exited (${code})`)));
    });
    return new NetnsApiServer(worker, port);
  }

  /** A kubeconfig naming this server (as seen from inside the namespace). */
  writeKubeconfig(file: string): void {
    writeKubeconfig(file, `http://127.0.0.1:${this.port}`);
  }

  apply(resource: ResourceName, object: Obj): void {
    this.worker.postMessage({ op: 'apply', resource, object } satisfies ApiServerMessage);
  }

  remove(resource: ResourceName, namespace: string | undefined, name: string): void {
    this.worker.postMessage({ op: 'remove', resource, namespace, name } satisfies ApiServerMessage);
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.worker.once('message', resolve));
    this.worker.postMessage({ op: 'close' } satisfies ApiServerMessage);
    await closed;
    await this.worker.terminate();
  }
}
