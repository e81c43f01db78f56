// Opening the dataplane's maps where the daemon pinned them, each checked
// against layout.ts's key and value sizes: for the CLI's inspection and for
// CNI calls, which write this node's pods and hostPorts into them.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BpfError, BpfMap } from '../bpf/index.js';
import { MAP_CODECS, MAPS, type MapRole, type MapSet } from './layout.js';
import { DEFAULT_PIN_ROOT } from './paths.js';

export interface PinnedMaps extends MapSet<BpfMap> {
  readonly pinRoot: string;
  /** Closes this process's fds; the pins stay. */
  close(): void;
}

/** No dataplane (or not all of it) is pinned where we looked. */
export class DataplaneNotFoundError extends Error {
  constructor(
    readonly pinRoot: string,
    /** The path that does not exist: the pin root or one map's pin. */
    readonly missing: string,
  ) {
    const what = missing === pinRoot ? '' : `: ${missing} is missing`;
    super(`no ferry dataplane pinned at ${pinRoot}${what} (\`ferry daemon\` pins it there when it loads the dataplane; --pin-root looks elsewhere)`);
    this.name = 'DataplaneNotFoundError';
  }
}

/** A map is pinned under the expected name but its key or value size is not this ferry's layout. */
export class DataplaneLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataplaneLayoutError';
  }
}

const ROLES = Object.keys(MAPS) as MapRole[];

/**
 * Opens the dataplane's maps pinned under `pinRoot` (all of them, or the
 * roles given), checking each one's key and value size against layout.ts.
 * Equivalent to: `bpftool map show pinned PINROOT/ferry_lb4_svc` (and the others).
 */
export function openPinnedMaps(pinRoot?: string): PinnedMaps;
export function openPinnedMaps<R extends MapRole>(pinRoot: string, roles: readonly R[]): Pick<PinnedMaps, R | 'pinRoot' | 'close'>;
export function openPinnedMaps(pinRoot: string = DEFAULT_PIN_ROOT, roles: readonly MapRole[] = ROLES): Partial<PinnedMaps> {
  if (!existsSync(pinRoot)) throw new DataplaneNotFoundError(pinRoot, pinRoot);
  const opened: Partial<Record<MapRole, BpfMap>> = {};
  const close = () => Object.values(opened).forEach((m) => m.close());
  try {
    for (const role of roles) {
      const path = join(pinRoot, MAPS[role]);
      if (!existsSync(path)) throw new DataplaneNotFoundError(pinRoot, path);
      let map: BpfMap;
      try {
        map = BpfMap.openPinned(path);
      } catch (e) {
        if (e instanceof BpfError && (e.code === 'EACCES' || e.code === 'EPERM')) {
          throw new Error(`cannot open ${path}: ${e.code} (reading ferry's BPF maps needs root)`, { cause: e });
        }
        throw e;
      }
      opened[role] = map;
      const codecs = MAP_CODECS[role];
      if (map.keySize !== codecs.key.size || map.valueSize !== codecs.value.size) {
        throw new DataplaneLayoutError(
          `${path}: key ${map.keySize} B, value ${map.valueSize} B; this ferry expects ${codecs.key.size} B and ${codecs.value.size} B ` +
            '(pinned by another version of ferry?)',
        );
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  return { pinRoot, ...opened, close };
}
