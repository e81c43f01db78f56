// The daemon's service programming from a manifest file or folder, or from
// the API server's objects (k8s-source.ts): read the Kubernetes objects, convert them (k8s.ts), compute the desired maps and
// reconcile, then forget conntrack entries of backends that went away. A
// watch on the path triggers a sync after a quiet period, coalescing bursts
// of events (kube-proxy's minSyncPeriod); a sync never overlaps another.
import { watch, type FSWatcher } from 'node:fs';
import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { forgetBackends, type ConntrackMap } from '../../engine/dataplane/ct-gc.js';
import { desiredState } from '../../engine/dataplane/desired.js';
import { clusterStateFromObjects } from '../../engine/dataplane/k8s.js';
import { isManifestName, readManifests, type ManifestRead } from '../../engine/dataplane/manifest-files.js';
import type { ApplyCounts, ApplyResult, LbMaps, Reconciler } from '../../engine/dataplane/reconcile.js';

export const DEFAULT_SYNC_DELAY_MS = 100;

/** Where the objects come from, other than a manifest path (the API server). */
export interface ObjectSource {
  /** Names the source in log lines. */
  label: string;
  read(): ManifestRead;
  /** This node's IPv4 addresses as the source knows them; used when `nodeAddresses` is not given. */
  nodeAddresses?(): readonly string[] | undefined;
}

export interface ServiceSyncOptions {
  /** The manifest file or folder, or another source of the objects. */
  path: string | ObjectSource;
  nodeName: string;
  /** This node's IPv4 addresses (NodePort frontends); undefined: none known. */
  nodeAddresses?: readonly string[];
  reconciler: Reconciler;
  maps: LbMaps & { conntrack: ConntrackMap };
  log: Logger;
  /** Quiet time after a change before syncing; default 100 ms. */
  delayMs?: number;
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
}

export class ServiceSync {
  readonly #o: ServiceSyncOptions;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #syncs = 0;
  #last: SyncReport | undefined;

  constructor(options: ServiceSyncOptions) {
    this.#o = options;
  }

  get #label(): string {
    const { path } = this.#o;
    return typeof path === 'string' ? path : path.label;
  }

  get syncs(): number {
    return this.#syncs;
  }

  get last(): SyncReport | undefined {
    return this.#last;
  }

  /** Reads, converts and reconciles once, now. */
  syncNow(): SyncReport {
    const { log, path } = this.#o;
    const t0 = performance.now();
    const read = typeof path === 'string' ? readManifests(path) : path.read();
    const nodeAddresses = this.#o.nodeAddresses ?? (typeof path === 'string' ? undefined : path.nodeAddresses?.());
    for (const e of read.errors) log.error({ source: e.source }, `manifest ${e.source}: ${e.message}`);
    const state = clusterStateFromObjects(read.objects);
    for (const p of state.problems) {
      const line = `${p.kind} ${p.object} (${p.source}) left out: ${p.message}`;
      (p.severity === 'error' ? log.error : log.warn).call(log, { kind: p.kind, object: p.object, source: p.source }, line);
    }
    const desired = desiredState(state.services, state.endpoints, {
      nodeName: this.#o.nodeName,
      ...(nodeAddresses !== undefined && { nodeAddresses }),
    });
    for (const s of desired.skipped) log.warn({ service: s.service }, `${s.service}: ${s.what} not programmed: ${s.reason}`);
    const result: ApplyResult = this.#o.reconciler.apply(desired);
    const conntrackForgotten = forgetBackends(this.#o.maps.conntrack, result.removedBackendIds);
    const report: SyncReport = {
      services: state.services.length,
      frontends: desired.frontends.size,
      backends: desired.backends.size,
      problems: read.errors.length + state.problems.filter((p) => p.severity === 'error').length,
      writes: { services: result.services, backends: result.backends, revNat: result.revNat },
      conntrackForgotten,
      ms: Math.round((performance.now() - t0) * 100) / 100,
    };
    this.#syncs++;
    this.#last = report;
    log.info({ sync: this.#syncs, ...report }, `synced ${report.services} services from ${this.#label} in ${report.ms} ms`);
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

  /** A sync after the quiet period; events meanwhile are folded into it. */
  schedule(): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), this.#o.delayMs ?? DEFAULT_SYNC_DELAY_MS);
  }

  #run(): void {
    this.#timer = undefined;
    this.#running = Promise.resolve()
      .then(() => this.syncNow())
      .then(
        () => undefined,
        (e: unknown) => this.#o.log.error({ err: e }, `sync from ${this.#label} failed; retrying on the next change`),
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
