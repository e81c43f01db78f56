// Loading ferry's eBPF dataplane: the load-balancer object is loaded with its
// maps pinned by name under the pin root (so a restarted daemon reuses the
// same maps, and live flows keep their conntrack entries and backends), the
// from_pod program is pinned where CNI ADD finds it, and from_uplink and
// to_uplink where attachUplink() (uplink.ts) does.
import { existsSync, mkdirSync } from 'node:fs';
import { BpfMap, BpfObject, ensureBpffs, unpinPath, type BpfCollection, type MapSpec } from '../bpf/index.js';
import { MAPS, OBJECT_FILE, PROGRAMS, type MapRole, type MapSet } from './layout.js';
import { bpfObjectPath, DEFAULT_PIN_ROOT, fromPodPin, fromUplinkPin, toUplinkPin } from './paths.js';

export interface Dataplane {
  readonly pinRoot: string;
  readonly maps: MapSet<BpfMap>;
  /** Closes this process's fds; pinned maps, program and links stay. */
  close(): void;
}

export interface LoadOptions {
  /**
   * Capacities other than the object's (lb.o's LB4_*_MAX), by map role. A
   * map already pinned is kept with its own capacity when that is at least
   * the one asked for; a smaller one is refused (a pinned map cannot grow:
   * removing its pin starts it afresh, without what it holds). A pinned map
   * of a role not given here is kept with whatever capacity it has.
   */
  maxEntries?: Partial<Record<MapRole, number>>;
}

/** Equivalent to: `bpftool prog loadall lb.o PINROOT pinmaps PINROOT` (programs pinned as from_pod, from_uplink and to_uplink). */
export async function loadDataplane(pinRoot = DEFAULT_PIN_ROOT, objectPath = bpfObjectPath(OBJECT_FILE), options: LoadOptions = {}): Promise<Dataplane> {
  ensureBpffs();
  mkdirSync(pinRoot, { recursive: true });
  const asked = new Map(Object.entries(options.maxEntries ?? {}).map(([role, n]) => [MAPS[role as MapRole] as string, n]));
  const spec = BpfObject.open(objectPath, { pinRoot });
  let collection: BpfCollection;
  try {
    for (const map of spec.maps) {
      const n = map.pinPath !== undefined && existsSync(map.pinPath) ? pinnedCapacity(map, objectPath, asked.get(map.name)) : asked.get(map.name);
      if (n !== undefined && n !== map.maxEntries) spec.setMaxEntries(map.name, n);
    }
    collection = await spec.load();
  } catch (e) {
    spec.close();
    throw e;
  }
  try {
    // A new program replaces the pin; pods (and uplinks) attached earlier keep
    // running the old one until attached again (their links hold it).
    for (const [name, pin] of [
      [PROGRAMS.fromPod, fromPodPin(pinRoot)],
      [PROGRAMS.fromUplink, fromUplinkPin(pinRoot)],
      [PROGRAMS.toUplink, toUplinkPin(pinRoot)],
    ] as const) {
      unpinPath(pin);
      collection.program(name).pin(pin);
    }
    return {
      pinRoot,
      maps: Object.fromEntries(Object.entries(MAPS).map(([role, name]) => [role, collection.map(name)])) as MapSet<BpfMap>,
      close: () => collection.close(),
    };
  } catch (e) {
    collection.close();
    throw e;
  }
}

/**
 * The capacity to load `map` with when a map is pinned at its path: the
 * pinned one's, which must be at least `asked`. A pinned map of another
 * type, key or value size (made by another version of lb.o) is refused by
 * name: libbpf would only say "parameter mismatch".
 */
function pinnedCapacity(map: MapSpec, objectPath: string, asked: number | undefined): number {
  const pin = map.pinPath!;
  const pinned = BpfMap.openPinned(pin);
  const found = { type: pinned.type, keySize: pinned.keySize, valueSize: pinned.valueSize, maxEntries: pinned.maxEntries };
  pinned.close();
  const shape = (m: { type: string; keySize: number; valueSize: number }) => `${m.type}, key ${m.keySize} B, value ${m.valueSize} B`;
  if (shape(found) !== shape(map)) {
    throw new Error(
      `pinned map ${pin} (${shape(found)}) does not have the layout ${objectPath} declares for ${map.name} (${shape(map)}): ` +
        'it was made by another version of ferry\'s dataplane; remove its pin to have it made afresh ' +
        '(what it holds, the live flows\' state included, goes with it), or run the version that made it',
    );
  }
  if (asked !== undefined && found.maxEntries < asked) {
    throw new Error(
      `pinned map ${pin} holds ${found.maxEntries} entries, fewer than the ${asked} asked for: a pinned map cannot grow; ` +
        'remove its pin to have it made afresh (what it holds, the live flows\' state included, goes with it)',
    );
  }
  return found.maxEntries;
}
