// The daemon's service programming from a manifest file or folder, or from
// the API server's objects (k8s-source.ts): read the Kubernetes objects, convert them (k8s.ts), compute the desired maps and
// reconcile, then forget conntrack entries of backends that went away.
// Syncs are scheduled as kube-proxy's BoundedFrequencyRunner schedules them
// (its minSyncPeriod): a change syncs at once when the last sync began at
// least minSyncPeriod ago, and otherwise when that period is up; changes
// meanwhile, and during a sync, are folded into that one sync. So a burst
// costs at most one sync per period and no change waits longer than one
// period plus a sync under way. A sync never overlaps another. Hooks tell
// the daemon's health and metrics about each.
import { watch, type FSWatcher } from 'node:fs';
import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { forgetBackends, type ConntrackMaps } from '../../engine/dataplane/ct-gc.js';
import { ClusterStates } from '../../engine/dataplane/cluster-states.js';
import { DesiredStates } from '../../engine/dataplane/desired.js';
import type { ClusterState, SourcedObject } from '../../engine/dataplane/k8s.js';
import { isManifestName, readManifests, type ManifestRead } from '../../engine/dataplane/manifest-files.js';
import type { ApplyCounts, ApplyResult, LbMaps, Reconciler } from '../../engine/dataplane/reconcile.js';

export const DEFAULT_MIN_SYNC_PERIOD_MS = 100;

/** Where the objects come from, other than a manifest path (the API server). */
export interface ObjectSource {
  /** Names the source in log lines. */
  label: string;
  read(): ManifestRead;
  /**
   * The Services changed since the last call (by `namespace/name`: every
   * object of each now), for a sync of those only; undefined when a full
   * read() is due (the first call, a relist, a resync).
   */
  changes?(): ReadonlyMap<string, readonly SourcedObject[]> | undefined;
  /** This node's addresses (IPv4 and IPv6) as the source knows them; used when `nodeAddresses` is not given. */
  nodeAddresses?(): readonly string[] | undefined;
}

export interface ServiceSyncOptions {
  /** The manifest file or folder, or another source of the objects. */
  path: string | ObjectSource;
  nodeName: string;
  /** This node's addresses, IPv4 and IPv6 (NodePort frontends); undefined: none known. */
  nodeAddresses?: readonly string[];
  /** CIDRs that pick the node addresses NodePorts are served on (kube-proxy's nodePortAddresses); none: all. */
  nodePortAddresses?: readonly string[];
  reconciler: Reconciler;
  /** The load-balancing maps, and the conntrack maps (both families') whose entries of removed backends go. */
  maps: LbMaps & ConntrackMaps;
  log: Logger;
  /**
   * At most one sync per this period (kube-proxy's minSyncPeriod); default
   * 100 ms. A manifest path also waits this long after its first change,
   * for a file being written to be complete.
   */
  minSyncPeriodMs?: number;
  hooks?: SyncHooks;
}

/** What the daemon's health, metrics and health check servers follow. */
export interface SyncHooks {
  /** A change is waiting for a sync (kube-proxy's QueuedUpdate). */
  queued?(): void;
  /** A sync succeeded; `state` is what it programmed from. */
  synced?(report: SyncReport, state: ClusterState): void;
  /** A scheduled sync failed (the maps may hold part of it). */
  failed?(error: unknown): void;
}

/** What one sync did (also the fields of its log line). */
export interface SyncReport {
  services: number;
  frontends: number;
  backends: number;
  /** Objects left out (invalid) and files that did not parse. */
  problems: number;
  writes: { services: ApplyCounts; backends: ApplyCounts; revNat: ApplyCounts };
  conntrackForgotten: number;
  ms: number;
  /** Where the time went: reading the objects, converting them, the desired state, the map writes, conntrack. */
  stagesMs?: { read: number; convert: number; desired: number; apply: number; conntrack: number };
}

export class ServiceSync {
  readonly #o: ServiceSyncOptions;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  /** When the last sync began (performance.now()). */
  #lastStart = -Infinity;
  #closed = false;
  #syncs = 0;
  #nodePortAddresses: readonly string[] | undefined;
  /** The last sync succeeded: the next may take the source's changes() only. */
  #incremental = false;
  // Unchanged objects keep their converted form and desired entries from sync to sync.
  readonly #clusterStates = new ClusterStates();
  readonly #desiredStates = new DesiredStates();

  constructor(options: ServiceSyncOptions) {
    this.#o = options;
  }

  get #label(): string {
    const { path } = this.#o;
    return typeof path === 'string' ? path : path.label;
  }

  /** The node addresses the last sync served NodePorts on; undefined: none known. */
  get nodePortAddresses(): readonly string[] | undefined {
    return this.#nodePortAddresses;
  }

  /**
   * Reads, converts and reconciles once, now: the Services the source says
   * changed, after a successful sync, or else everything.
   */
  syncNow(): SyncReport {
    const { log, path } = this.#o;
    const incremental = this.#incremental;
    this.#incremental = false;
    const t0 = performance.now();
    const changes = typeof path === 'string' ? undefined : path.changes?.();
    const updated = incremental && changes !== undefined ? this.#clusterStates.update(changes) : undefined;
    const read = updated !== undefined ? { objects: [], errors: [] } : typeof path === 'string' ? readManifests(path) : path.read();
    const t1 = performance.now();
    // The path itself unreadable (removed, say) is a failed sync, not an empty cluster.
    const unreadable = read.errors.find((e) => e.source === path);
    if (unreadable !== undefined) throw new Error(`manifest path ${unreadable.source}: ${unreadable.message}; the maps are left as they are`);
    const known = this.#o.nodeAddresses ?? (typeof path === 'string' ? undefined : path.nodeAddresses?.());
    const nodeAddresses = known && selectNodePortAddresses(known, this.#o.nodePortAddresses ?? []);
    for (const e of read.errors) log.error({ source: e.source }, `manifest ${e.source}: ${e.message}`);
    const state = updated?.state ?? this.#clusterStates.convert(read.objects);
    const t2 = performance.now();
    for (const p of state.problems) {
      const line = `${p.kind} ${p.object} (${p.source}) left out: ${p.message}`;
      (p.severity === 'error' ? log.error : log.warn).call(log, { kind: p.kind, object: p.object, source: p.source }, line);
    }
    const options = { nodeName: this.#o.nodeName, ...(nodeAddresses !== undefined && { nodeAddresses }) };
    const desired =
      (updated && this.#desiredStates.update(updated.services, state.endpoints, options)) ?? this.#desiredStates.compute(state.services, state.endpoints, options);
    for (const s of desired.skipped) log.warn({ service: s.service }, `${s.service}: ${s.what} not programmed: ${s.reason}`);
    const t3 = performance.now();
    const result: ApplyResult = this.#o.reconciler.apply(desired);
    const t4 = performance.now();
    if (result.skippedIPv6 !== undefined) log.warn({ ...result.skippedIPv6 }, 'IPv6 frontends and backends not programmed: the dataplane has no IPv6 maps');
    const conntrackForgotten = forgetBackends(this.#o.maps, result.removedBackendIds);
    const t5 = performance.now();
    const round = (ms: number) => Math.round(ms * 100) / 100;
    const report: SyncReport = {
      services: state.services.length,
      frontends: desired.frontends.size,
      backends: desired.backends.size,
      problems: read.errors.length + state.problems.filter((p) => p.severity === 'error').length,
      writes: { services: result.services, backends: result.backends, revNat: result.revNat },
      conntrackForgotten,
      ms: round(t5 - t0),
      stagesMs: { read: round(t1 - t0), convert: round(t2 - t1), desired: round(t3 - t2), apply: round(t4 - t3), conntrack: round(t5 - t4) },
    };
    this.#syncs++;
    this.#nodePortAddresses = nodeAddresses;
    this.#incremental = true;
    log.info({ sync: this.#syncs, ...report }, `synced ${report.services} services from ${this.#label} in ${report.ms} ms`);
    this.#o.hooks?.synced?.(report, state);
    return report;
  }

  /**
   * Watches the path: the folder itself, or the folder holding the file
   * (editors replace a file by renaming another over it, which a watch on
   * the file itself would not survive).
   */
  watch(): void {
    const { path } = this.#o;
    if (typeof path !== 'string') throw new Error('watch() is for a manifest path; an object source calls schedule()');
    const isDir = statSync(path).isDirectory();
    const dir = isDir ? path : dirname(path);
    const name = basename(path);
    this.#watcher = watch(dir, (_event, file) => {
      const f = file?.toString();
      if (f !== undefined && (isDir ? !isManifestName(f) : f !== name)) return;
      this.schedule();
    });
    this.#watcher.on('error', (e) => this.#o.log.error({ err: e }, `watching ${dir} failed`));
  }

  /**
   * A sync as soon as the period allows: now (on the next turn of the event
   * loop, which folds the rest of a batch of watch events into it) when the
   * last one began a period ago or more. Changes until it starts, and
   * during it, are folded into it or into the one after it.
   */
  schedule(): void {
    if (this.#closed) return;
    this.#o.hooks?.queued?.();
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) return;
    const period = this.#o.minSyncPeriodMs ?? DEFAULT_MIN_SYNC_PERIOD_MS;
    const settle = typeof this.#o.path === 'string' ? period : 0;
    this.#timer = setTimeout(() => this.#run(), Math.max(settle, this.#lastStart + period - performance.now()));
  }

  #run(): void {
    this.#timer = undefined;
    this.#lastStart = performance.now();
    this.#running = Promise.resolve()
      .then(() => this.syncNow())
      .then(
        () => undefined,
        (e: unknown) => {
          this.#o.log.error({ err: e }, `sync from ${this.#label} failed; retrying on the next change`);
          this.#o.hooks?.failed?.(e);
        },
      )
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.schedule();
        }
      });
  }

  /** Stops watching; a sync under way finishes first. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#watcher?.close();
    clearTimeout(this.#timer);
    await this.#running;
  }
}

/** The addresses among `addresses` inside one of `cidrs`; all of them when there are no CIDRs. */
export function selectNodePortAddresses(addresses: readonly string[], cidrs: readonly string[]): string[] {
  if (cidrs.length === 0) return [...addresses];
  const ranges = cidrs.map((c) => ipaddr.parseCIDR(c));
  return addresses.filter((a) => {
    const ip = ipaddr.parse(a);
    return ranges.some((r) => r[0].kind() === ip.kind() && ip.match(r));
  });
}
