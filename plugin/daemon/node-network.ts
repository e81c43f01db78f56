// The daemon's node network: reads the v1 Node objects (from the manifest
// file or folder the Services come from, or from the API server), works out
// the routes — and in vxlan mode the device, neighbours and FDB entries —
// this node needs to reach every other node's pods, and applies the
// difference to the node's namespace (engine/nodes/), and tells the eBPF
// dataplane the other nodes' addresses (not masqueraded to). A change is applied
// after a short quiet period (bursts are folded into one sync, syncs never
// overlap), and a periodic resync repairs anything changed behind ferry's
// back. Closing stops the syncing only: routes and the device stay, so pods
// keep talking until a new daemon adopts them.
import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { attachPinnedProgram } from '../../engine/dataplane/attach.js';
import { syncClusterNodes } from '../../engine/dataplane/cluster-nodes.js';
import type { SourcedObject } from '../../engine/dataplane/k8s.js';
import type { Dataplane } from '../../engine/dataplane/loader.js';
import { isManifestName, readManifests } from '../../engine/dataplane/manifest-files.js';
import { fromUplinkPin } from '../../engine/dataplane/paths.js';
import { Handle } from '../../engine/handle.js';
import type { Netns } from '../../engine/netns/netns.js';
import { desiredNodeNetwork } from '../../engine/nodes/desired.js';
import { nodesFromObjects } from '../../engine/nodes/k8s.js';
import { checkNodeNetworkSettings, type NodeNetworkSettings } from '../../engine/nodes/model.js';
import { applyNodeNetwork, type NodeNetworkReport } from '../../engine/nodes/reconcile.js';
import type { K8sApiSource } from './k8s-source.js';

export const DEFAULT_NODE_SYNC_DELAY_MS = 100;
export const DEFAULT_NODE_RESYNC_MS = 30_000;

/**
 * Where the tcx link of from_uplink on the vxlan device is pinned. Not
 * under uplinks/ by device name: bpffs refuses names with a dot (EPERM),
 * and vxlan devices are named like flannel.1 or ferry.vxlan.
 */
export const overlayLinkPin = (pinRoot: string) => join(pinRoot, 'overlay', 'from_uplink');

export interface NodeNetworkOptions {
  settings: NodeNetworkSettings;
  /** This node's name: its Node object gives the node's address and pod CIDRs. */
  nodeName: string;
  /** A manifest file or folder with the Node objects (watched), or the daemon's API server source (its Nodes informer). */
  source: string | Pick<K8sApiSource, 'label' | 'readNodes' | 'onNodesChanged' | 'ready'>;
  /**
   * The loaded eBPF dataplane, if any. In vxlan mode from_uplink is attached
   * to the vxlan device as well: replies from another node's backends to a
   * pod's ClusterIP flow come in there, decapsulated, and must be reverse-NATed.
   */
  dataplane?: Dataplane;
  log: Logger;
  /** The node's namespace; default: the one the daemon runs in. */
  netns?: Netns;
  delayMs?: number;
  resyncMs?: number;
}

export interface NodeNetwork {
  close(): Promise<void>;
}

interface Source {
  label: string;
  /** The objects now there (files that do not parse are reported by the service sync, which reads the same ones). */
  read(): SourcedObject[];
  close(): Promise<void> | void;
}

/** Starts syncing; with a manifest path the first sync has run when this resolves. */
export async function startNodeNetwork(o: NodeNetworkOptions): Promise<NodeNetwork> {
  const { log, settings } = o;
  checkNodeNetworkSettings(settings);
  const handle = await Handle.open(o.netns);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  let syncs = 0;
  let attachedIfindex: number | undefined;

  const sync = async (): Promise<void> => {
    const t0 = performance.now();
    const { nodes, problems } = nodesFromObjects(source.read());
    for (const p of problems) log.error({ node: p.node, source: p.source }, `Node ${p.node} (${p.source}) left out: ${p.message}`);
    const self = nodes.find((n) => n.name === o.nodeName);
    if (self === undefined) {
      log.warn({ nodes: nodes.length }, `node network: no Node ${o.nodeName} in ${source.label}; nothing changed until it appears`);
      return;
    }
    const desired = desiredNodeNetwork(settings.mode, self, nodes);
    for (const p of desired.problems) log.warn(`node network: ${p}`);
    const report = await applyNodeNetwork(handle, settings, desired);
    for (const e of report.errors) log.error(`node network: ${e}`);
    await hookDataplane(report);
    if (o.dataplane !== undefined) syncClusterNodes(o.dataplane.maps.clusterNodes, nodes.filter((n) => n !== self).flatMap((n) => n.addresses));
    syncs++;
    const ms = Math.round((performance.now() - t0) * 100) / 100;
    log.info(
      { nodeSync: syncs, mode: settings.mode, nodes: nodes.length, routes: report.routes, neighbors: report.neighbors, fdb: report.fdb, errors: report.errors.length, ms, ...(report.device && { device: report.device.action, mtu: report.device.link.mtu }) },
      `node network synced: ${nodes.length} nodes, ${desired.routes.length} remote pod CIDRs (${settings.mode}) in ${ms} ms`,
    );
  };

  const hookDataplane = async (report: NodeNetworkReport): Promise<void> => {
    const link = report.device?.link;
    if (o.dataplane === undefined || link === undefined || link.index === attachedIfindex) return;
    const pinRoot = o.dataplane.pinRoot;
    await attachPinnedProgram({ netns: handle.netns, ifindex: link.index, programPin: fromUplinkPin(pinRoot), linkPin: overlayLinkPin(pinRoot) });
    attachedIfindex = link.index;
    log.info({ device: link.name }, `from_uplink attached to ${link.name} (replies from other nodes' backends)`);
  };

  const run = (): void => {
    timer = undefined;
    running = sync()
      .catch((e: unknown) => log.error({ err: e }, `node network sync failed: ${(e as Error).message}; retrying on the next change`))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          schedule();
        }
      });
  };
  const schedule = (): void => {
    if (closed) return;
    if (running !== undefined) {
      again = true;
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(run, o.delayMs ?? DEFAULT_NODE_SYNC_DELAY_MS);
  };

  let source: Source;
  try {
    source = typeof o.source === 'string' ? fileSource(o.source, schedule, log) : apiSource(o.source, schedule);
  } catch (e) {
    handle.close();
    throw e;
  }
  const resync = setInterval(schedule, o.resyncMs ?? DEFAULT_NODE_RESYNC_MS);
  resync.unref();
  if (typeof o.source === 'string') {
    run();
    await running;
  }
  return {
    close: async () => {
      closed = true;
      clearInterval(resync);
      clearTimeout(timer);
      await source.close();
      await running;
      handle.close();
    },
  };
}

/** The manifest file or folder, watched: the folder itself, or the one holding the file (editors rename over files). */
function fileSource(path: string, onChange: () => void, log: Logger): Source {
  const isDir = statSync(path).isDirectory();
  const dir = isDir ? path : dirname(path);
  const name = basename(path);
  const watcher: FSWatcher = watch(dir, (_event, file) => {
    const f = file?.toString();
    if (f !== undefined && (isDir ? !isManifestName(f) : f !== name)) return;
    onChange();
  });
  watcher.on('error', (e) => log.error({ err: e }, `watching ${dir} failed`));
  return { label: path, read: () => readManifests(path).objects, close: () => watcher.close() };
}

/** The API source's Nodes: synced once it is ready, then after every Node change. */
function apiSource(api: Exclude<NodeNetworkOptions['source'], string>, onChange: () => void): Source {
  let closed = false;
  api.onNodesChanged(() => closed || onChange());
  if (api.ready) onChange();
  return {
    label: api.label,
    read: () => api.readNodes(),
    close: () => void (closed = true),
  };
}
