// Programming time through `ferry daemon --services FILE`: the Services and
// EndpointSlices written to one JSON manifest (a v1 List), the daemon
// started on it in the node netns with its own pin root, and each change
// made as an editor makes it (a new file renamed over the old one). The
// daemon logs one line per sync with its own duration; the bench adds the
// time from the rename to that line (the watch, the 100 ms quiet period,
// the sync).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FERRY_CLI } from '../cni/daemon.js';
import { replaceLastEndpoint, serviceObject, sliceObject, type BenchService } from '../support/cluster.js';
import { DaemonProcess, type LogLine } from '../support/daemon-process.js';

interface SyncFigures {
  /** The daemon's own `ms` for the sync. */
  syncMs: number;
  /** Rename of the file → the sync's log line, seen here. */
  latencyMs: number;
  /** What the sync logged beyond the counts (per-stage times, when it logs them). */
  line: LogLine;
}

export interface DaemonRun {
  /** Spawn → the first sync's log line: node's start, loading the dataplane, the first sync. */
  startMs: number;
  first: SyncFigures;
  edits: SyncFigures[];
  rssMiB: number;
}

const isSync = (l: LogLine): boolean => typeof l.sync === 'number';

/** Writes the manifest beside `file` and renames it over `file`; returns when the rename happened. */
function writeManifest(file: string, services: readonly BenchService[]): number {
  const items = [...services.map(serviceObject), ...services.map((s) => sliceObject(s))];
  // A dotfile: the daemon's folder watch ignores it until it is renamed.
  const tmp = join(dirname(file), `.${basename(file)}`);
  writeFileSync(tmp, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  const at = performance.now();
  renameSync(tmp, file);
  return at;
}

export async function daemonRun(
  o: { nodeNetns: string; dir: string; pinRoot: string; edits: number },
  services: readonly BenchService[],
  changed: { index: number; address: string },
  track: (d: DaemonProcess) => void,
): Promise<DaemonRun> {
  const manifests = join(o.dir, 'services');
  const file = join(manifests, 'cluster.json');
  mkdirSync(manifests, { recursive: true });
  writeManifest(file, services);
  const t0 = performance.now();
  const daemon = new DaemonProcess(o.nodeNetns, [
    FERRY_CLI, 'daemon',
    '--services', manifests,
    '--pin-root', o.pinRoot,
    '--cni-socket', join(o.dir, 'cni.sock'),
    '--node-name', 'bench',
    '--gc-interval', '3600000',
  ]);
  track(daemon);
  try {
    const firstLine = await daemon.waitFor('the first sync', isSync, 120_000);
    const first = { syncMs: firstLine.ms as number, latencyMs: firstLine.at - t0, line: firstLine };
    const edits: SyncFigures[] = [];
    const original = services[changed.index]!;
    for (let i = 0; i < o.edits; i++) {
      // Every other edit puts the original endpoint back: each one is a change.
      const now = [...services];
      if (i % 2 === 0) now[changed.index] = replaceLastEndpoint(original, changed.address);
      const from = daemon.lines.length;
      const renamed = writeManifest(file, now);
      const line = await daemon.waitFor(`the sync after edit ${i + 1}`, isSync, 60_000, from);
      edits.push({ syncMs: line.ms as number, latencyMs: line.at - renamed, line });
    }
    return { startMs: firstLine.at - t0, first, edits, rssMiB: daemon.rssMiB() };
  } finally {
    await daemon.stop();
  }
}
