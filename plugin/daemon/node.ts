// The node daemon: the CNI socket, plus — given a manifest path or an API
// server — the eBPF dataplane programmed from the Services and
// EndpointSlices there, with the
// conntrack GC and an optional /metrics and /healthz endpoint. Closing it
// stops the daemon's work only: pinned maps, programs and links stay, and
// the datapath keeps forwarding until a new daemon adopts them.
import http from 'node:http';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { ConntrackGc } from '../../engine/dataplane/ct-gc.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { conntrackFill, formatPrometheus, readCounters } from '../../engine/dataplane/metrics.js';
import { DEFAULT_PIN_ROOT } from '../../engine/dataplane/paths.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import { attachUplink } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import { startCniDaemon, type CniDaemon } from './run.js';
import { DEFAULT_CNI_SOCKET } from './server.js';
import { K8sApiSource, loadKubeConfig, type ApiConfig } from './k8s-source.js';
import { ServiceSync } from './services.js';

export interface NodeDaemonOptions {
  cniSocket?: string;
  pinRoot?: string;
  /** Manifest file or folder; without it the daemon serves CNI only. */
  services?: string;
  /** The API server to take Services, EndpointSlices and Nodes from; excludes `services`. */
  api?: ApiConfig;
  nodeName?: string;
  /** The uplink from_uplink is attached to; its global IPv4 addresses are the node's. */
  uplink?: string;
  /** HOST:PORT for /metrics and /healthz. */
  metricsAddress?: string;
  gcIntervalMs?: number;
  log?: Logger;
}

export interface NodeDaemon {
  close(): Promise<void>;
}

/** `HOST:PORT` or `[V6]:PORT`. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`metrics address must be HOST:PORT, not "${text}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export async function startNodeDaemon(options: NodeDaemonOptions = {}): Promise<NodeDaemon> {
  const log = options.log ?? pino({ name: 'ferry-daemon' });
  const closers: Array<() => unknown> = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn({ err: e }, 'while stopping');
      }
    }
  };
  try {
    let dp: Dataplane | undefined;
    let gc: ConntrackGc | undefined;
    let sync: ServiceSync | undefined;
    if (options.services !== undefined && options.api !== undefined) {
      throw new Error('--services and the API server source (--kubeconfig, --in-cluster) exclude each other');
    }
    if (options.services !== undefined || options.api !== undefined) {
      const pinRoot = options.pinRoot ?? DEFAULT_PIN_ROOT;
      const nodeName = options.nodeName ?? hostname();
      const loaded = await loadDataplane(pinRoot);
      dp = loaded;
      closers.push(() => loaded.close());
      log.info({ pinRoot }, 'dataplane loaded (pinned maps reused)');

      let nodeAddresses: string[] | undefined;
      if (options.uplink !== undefined) {
        const node = await Handle.open();
        closers.push(() => node.close());
        const up = await attachUplink(loaded, node, options.uplink);
        const link = await node.link.get(options.uplink);
        nodeAddresses = (await node.addr.list({ dev: link, family: 4 })).filter((a) => a.scope === 0).map((a) => a.address);
        log.info({ uplink: up.ifname, mode: up.mode, snatAddress: up.config.snatAddress, nodeAddresses }, 'from_uplink attached');
      }

      const reconciler = await Reconciler.adopt(loaded.maps);
      for (const c of reconciler.conflicts) log.warn(`adopting the maps: ${c}`);
      // Read the kubeconfig before anything can fail half-way.
      const kubeConfig = options.api !== undefined ? loadKubeConfig(options.api) : undefined;
      const apiSource =
        kubeConfig !== undefined
          ? new K8sApiSource({ kubeConfig, nodeName, log, onChange: () => sync?.schedule() })
          : undefined;
      const s = new ServiceSync({
        path: apiSource !== undefined ? { label: `the API server ${kubeConfig!.getCurrentCluster()!.server}`, read: () => apiSource.read(), nodeAddresses: () => apiSource.nodeAddresses() } : options.services!,
        nodeName,
        ...(nodeAddresses !== undefined && { nodeAddresses }),
        reconciler,
        maps: loaded.maps,
        log,
      });
      sync = s;
      closers.push(() => s.close());
      if (apiSource !== undefined) {
        // The first sync runs once all three resources are listed: an
        // earlier one would withdraw every Service the maps hold.
        closers.push(() => apiSource.close());
        apiSource.start();
      } else {
        s.watch();
        s.syncNow();
      }

      const collector = new ConntrackGc(loaded.maps, {
        ...(options.gcIntervalMs !== undefined && { intervalMs: options.gcIntervalMs }),
        onResult: (r) => {
          if (r.expired + r.orphaned + r.withdrawn > 0) log.info({ ...r }, 'conntrack GC');
        },
        onError: (e) => log.error({ err: e }, 'conntrack GC failed'),
      }).start();
      gc = collector;
      closers.push(() => collector.stop());
    }

    if (options.metricsAddress !== undefined) {
      const { host, port } = parseListenAddress(options.metricsAddress);
      const server = http.createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (path === '/healthz') {
          const last = sync?.last;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'ok', dataplane: dp !== undefined, syncs: sync?.syncs ?? 0, ...(last && { lastSync: { services: last.services, frontends: last.frontends, problems: last.problems, ms: last.ms } }) }));
        } else if (path === '/metrics' && dp !== undefined) {
          try {
            const body = formatPrometheus({
              counters: readCounters(dp.maps.metrics),
              conntrack: conntrackFill(dp.maps.conntrack),
              ...(gc !== undefined && { gc: { totals: gc.totals, last: gc.last } }),
            });
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
            res.end(body);
          } catch (e) {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(`${(e as Error).message}\n`);
          }
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found\n');
        }
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
      log.info({ address: options.metricsAddress }, 'serving /metrics and /healthz');
    }

    const cni: CniDaemon = await startCniDaemon(options.cniSocket ?? DEFAULT_CNI_SOCKET, log);
    closers.push(() => cni.close());
  } catch (e) {
    await close();
    throw e;
  }
  return { close };
}
