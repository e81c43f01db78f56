// The node daemon: the CNI socket, plus — given a manifest path or an API
// server — the eBPF dataplane programmed from the Services and
// EndpointSlices there (the pods CNI ADD attached before it was loaded
// hooked to it, pod-hooks.ts), with the conntrack GC, kube-proxy's /healthz,
// /metrics and health check node ports (status.ts). Closing it
// stops the daemon's work only: pinned maps, programs and links stay, and
// the datapath keeps forwarding until a new daemon adopts them.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { datapathClock } from '../../engine/dataplane/clock.js';
import { ConntrackGc } from '../../engine/dataplane/ct-gc.js';
import { loadDataplane } from '../../engine/dataplane/loader.js';
import { readSnapshot } from '../../engine/dataplane/metrics.js';
import { DEFAULT_PIN_ROOT } from '../../engine/dataplane/paths.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import { attachUplink, uplinkAddresses } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import { DEFAULT_STATE_DIR } from '../commands/context.js';
import { hookRecordedPods } from './pod-hooks.js';
import { startCniDaemon, type CniDaemon } from './run.js';
import { DEFAULT_CNI_SOCKET } from './server.js';
import { K8sApiSource, loadKubeConfig, type ApiConfig } from './k8s-source.js';
import { DEFAULTS, parseDuration } from './config.js';
import { ServiceSync } from './services.js';
import { startProxyStatus } from './status.js';
import { startNodeNetwork } from './node-network.js';
import type { NodeNetworkSettings } from '../../engine/nodes/model.js';

export interface NodeDaemonOptions {
  cniSocket?: string;
  pinRoot?: string;
  /** The CNI config's dataDir (default DEFAULT_STATE_DIR): once the dataplane is loaded, the routed pods recorded there are hooked to it (pod-hooks.ts). */
  cniDataDir?: string;
  /** Entries of the services and backends maps; default DEFAULTS.mapCapacity (lb.o's). Pinned maps at least this large are kept. */
  mapCapacity?: number;
  /** The same for the IPv6 maps (services6, backends6); default DEFAULTS.mapCapacity6 (lb.o's). */
  mapCapacity6?: number;
  /** Manifest file or folder; without it the daemon serves CNI only. */
  services?: string;
  /** The API server to take Services, EndpointSlices and Nodes from; excludes `services`. */
  api?: ApiConfig;
  nodeName?: string;
  /** The uplink from_uplink is attached to; its global IPv4 and IPv6 addresses are the node's (NodePorts, SNAT). */
  uplink?: string;
  /** The pod CIDRs, IPv4 and IPv6 mixed: pods' traffic leaving through the uplink to outside them (of its family) is masqueraded; default DEFAULT_CLUSTER_CIDRS. */
  clusterCidrs?: readonly string[];
  /** HOST:PORT of /healthz and /livez; undefined: not served (`ferry daemon` serves them by default). */
  healthzBindAddress?: string | undefined;
  /** HOST:PORT of /metrics; undefined: not served (`ferry daemon` serves it by default). */
  metricsBindAddress?: string | undefined;
  /** At most one sync per this period (ServiceSync's minSyncPeriodMs). */
  minSyncPeriodMs?: number;
  /** Healthz fails when a change waited 2 × this for a sync. */
  syncPeriodMs?: number;
  /** Full sync from the API server source's store this often. */
  configSyncPeriodMs?: number;
  /** CIDRs picking the node addresses NodePorts and health check node ports are served on; none: all. */
  nodePortAddresses?: readonly string[];
  gcIntervalMs?: number;
  /** Routes (or a VXLAN overlay) to the other nodes' pod CIDRs, from the same source's Node objects. */
  nodeNetwork?: NodeNetworkSettings;
  log?: Logger;
}

export interface NodeDaemon {
  close(): Promise<void>;
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
    let gc: ConntrackGc | undefined;
    let sync: ServiceSync | undefined;
    if (options.services !== undefined && options.api !== undefined) {
      throw new Error('--services and the API server source (--kubeconfig, --in-cluster) exclude each other');
    }
    if (options.nodeNetwork !== undefined && options.services === undefined && options.api === undefined) {
      throw new Error('--node-network takes the Node objects from --services or the API server (--kubeconfig, --in-cluster)');
    }
    if (options.services !== undefined || options.api !== undefined) {
      const pinRoot = options.pinRoot ?? DEFAULT_PIN_ROOT;
      const nodeName = options.nodeName ?? hostname();
      const capacity = options.mapCapacity ?? DEFAULTS.mapCapacity;
      const capacity6 = options.mapCapacity6 ?? DEFAULTS.mapCapacity6;
      // The informers list while the dataplane loads (the API server answers
      // 10k Services' worth of objects in a few hundred ms). Nothing is
      // synced before ServiceSync exists: it is scheduled below if the
      // lists are in by then.
      const kubeConfig = options.api !== undefined ? loadKubeConfig(options.api) : undefined;
      const apiSource =
        kubeConfig !== undefined
          ? new K8sApiSource({ kubeConfig, nodeName, log, onChange: () => sync?.schedule(), ...(options.configSyncPeriodMs !== undefined && { resyncMs: options.configSyncPeriodMs }) })
          : undefined;
      if (apiSource !== undefined) {
        closers.push(() => apiSource.close());
        apiSource.start();
      }
      const loaded = await loadDataplane(pinRoot, undefined, { maxEntries: { services: capacity, backends: capacity, services6: capacity6, backends6: capacity6 } });
      closers.push(() => loaded.close());
      const { services, backends, services6, backends6 } = loaded.maps;
      log.info(
        { pinRoot, services: services.maxEntries, backends: backends.maxEntries, services6: services6.maxEntries, backends6: backends6.maxEntries },
        'dataplane loaded (pinned maps reused)',
      );
      // Pods CNI ADD attached while no dataplane was pinned. Before the CNI socket serves: the
      // records lock (taken here exclusive) would otherwise hold up this process's own ADDs.
      const node = await Handle.open();
      try {
        await hookRecordedPods({ node, pinRoot, cniDataDir: options.cniDataDir ?? DEFAULT_STATE_DIR, log });
      } finally {
        node.close();
      }

      let nodeAddresses: string[] | undefined;
      if (options.uplink !== undefined) {
        const node = await Handle.open();
        closers.push(() => node.close());
        const up = await attachUplink(loaded, node, options.uplink, { ...(options.clusterCidrs !== undefined && { clusterCidrs: options.clusterCidrs }) });
        const addresses = await uplinkAddresses(node, options.uplink);
        nodeAddresses = [...addresses[4], ...addresses[6]];
        log.info(
          { uplink: up.ifname, mode: up.mode, snatAddress: up.config.snatAddress, snatAddress6: up.config.snatAddress6, clusterCidrs: up.config.clusterCidrs, nodeAddresses, forwarding: up.forwarding },
          'from_uplink attached',
        );
        if (up.acceptRaRaised) log.info(`net.ipv6.conf.${up.ifname}.accept_ra set from 1 to 2: the uplink keeps taking router advertisements now that the node forwards IPv6`);
      }

      const reconciler = await Reconciler.adopt(loaded.maps);
      for (const c of reconciler.conflicts) log.warn(`adopting the maps: ${c}`);
      const nodePortCidrs = options.nodePortAddresses ?? [];
      const everyAddress = [anyAddress()]; // read once: health servers ask at every sync
      const status = await startProxyStatus({
        healthzBindAddress: options.healthzBindAddress,
        metricsBindAddress: options.metricsBindAddress,
        syncPeriodMs: options.syncPeriodMs ?? parseDuration(DEFAULTS.syncPeriod),
        nodeName,
        readMetrics: () => readSnapshot(loaded.maps, gc && { totals: gc.totals, last: gc.last }),
        nodeEligible: () => apiSource?.nodeEligible() ?? true,
        // kube-proxy's rule: all addresses, unless nodePortAddresses picks some.
        healthCheckHosts: () => (nodePortCidrs.length === 0 ? everyAddress : (sync?.nodePortAddresses ?? [])),
        log,
      });
      closers.push(() => status.close());
      const s = new ServiceSync({
        path: apiSource ?? options.services!,
        nodeName,
        ...(nodeAddresses !== undefined && { nodeAddresses }),
        nodePortAddresses: nodePortCidrs,
        reconciler,
        maps: loaded.maps,
        log,
        hooks: status.hooks,
        ...(options.minSyncPeriodMs !== undefined && { minSyncPeriodMs: options.minSyncPeriodMs }),
      });
      sync = s;
      closers.push(() => s.close());
      if (apiSource !== undefined) {
        // The first sync runs once all three resources are listed: an
        // earlier one would withdraw every Service the maps hold.
        if (apiSource.ready) s.schedule();
      } else {
        s.watch();
        s.syncNow();
      }

      if (options.nodeNetwork !== undefined) {
        const nodes = await startNodeNetwork({ settings: options.nodeNetwork, nodeName, source: apiSource ?? options.services!, dataplane: loaded, log });
        closers.push(() => nodes.close());
      }

      const collector = new ConntrackGc(loaded.maps, {
        clock: await datapathClock(),
        ...(options.gcIntervalMs !== undefined && { intervalMs: options.gcIntervalMs }),
        onResult: (r) => {
          if (r.expired + r.orphaned + r.withdrawn > 0) log.info({ ...r }, 'conntrack GC');
        },
        onError: (e) => log.error({ err: e }, 'conntrack GC failed'),
      }).start();
      gc = collector;
      closers.push(() => collector.stop());
    }

    const cni: CniDaemon = await startCniDaemon(options.cniSocket ?? DEFAULT_CNI_SOCKET, log);
    closers.push(() => cni.close());
  } catch (e) {
    await close();
    throw e;
  }
  return { close };
}

/**
 * Every address of the node, as kube-proxy listens on ":port": one socket on
 * "::" takes both families (Node.js does not set IPV6_V6ONLY), "0.0.0.0"
 * when IPv6 is off in the daemon's namespace.
 */
function anyAddress(): string {
  try {
    return readFileSync('/proc/sys/net/ipv6/conf/all/disable_ipv6', 'utf8').trim() === '0' ? '::' : '0.0.0.0';
  } catch {
    return '0.0.0.0'; // no IPv6 in this kernel
  }
}
