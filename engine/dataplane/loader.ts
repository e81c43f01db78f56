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
   * The backends maps (arrays indexed by backend id, one id space for both
   * families) are given one capacity: the larger of `backends` and
   * `backends6`, whichever are given.
   */
  maxEntries?: Partial<Record<MapRole, number>>;
}

/** LoadOptions.maxEntries with the backends maps' capacities made one (see there). */
function withBackendsAlike(maxEntries: Partial<Record<MapRole, number>>): Partial<Record<MapRole, number>> {
  const given = [maxEntries.backends, maxEntries.backends6].filter((n) => n !== undefined);
  if (given.length === 0) return maxEntries;
  const n = Math.max(...given);
  return { ...maxEntries, backends: n, backends6: n };
}

/** Equivalent to: `bpftool prog loadall lb.o PINROOT pinmaps PINROOT` (programs pinned as from_pod, from_uplink and to_uplink). */
export async function loadDataplane(pinRoot = DEFAULT_PIN_ROOT, objectPath = bpfObjectPath(OBJECT_FILE), options: LoadOptions = {}): Promise<Dataplane> {
  ensureBpffs();
  mkdirSync(pinRoot, { recursive: true });
  const asked = new Map(Object.entries(withBackendsAlike(options.maxEntries ?? {})).map(([role, n]) => [MAPS[role as MapRole] as string, n]));
  const spec = BpfObject.open(objectPath, { pinRoot });
  let collection: BpfCollection;
  try {
    // Every pin of another layout is named at once: an upgrade that changed
    // several (the backends maps of both families) is mended in one go.
    const mismatches: Mismatch[] = [];
    for (const map of spec.maps) {
      let n = asked.get(map.name);
      if (map.pinPath !== undefined && existsSync(map.pinPath)) {
        const pinned = pinnedCapacity(map, asked.get(map.name));
        if (typeof pinned !== 'number') mismatches.push(pinned);
        else n = pinned;
      }
      if (n !== undefined && n !== map.maxEntries) spec.setMaxEntries(map.name, n);
    }
    if (mismatches.length > 0) throw new Error(mismatchMessage(mismatches, objectPath));
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

/** A pinned map whose type, key or value size is not the one the object declares. */
interface Mismatch {
  pin: string;
  name: string;
  found: string;
  declared: string;
}

const shape = (m: { type: string; keySize: number; valueSize: number }) => `${m.type}, key ${m.keySize} B, value ${m.valueSize} B`;

/**
 * The refusal of pinned maps of another layout (made by another version of
 * lb.o), naming each pin and both shapes: libbpf would only say
 * "parameter mismatch".
 */
function mismatchMessage(mismatches: readonly Mismatch[], objectPath: string): string {
  if (mismatches.length === 1) {
    const m = mismatches[0]!;
    return (
      `pinned map ${m.pin} (${m.found}) does not have the layout ${objectPath} declares for ${m.name} (${m.declared}): ` +
      'it was made by another version of ferry\'s dataplane; remove its pin to have it made afresh ' +
      '(what it holds, the live flows\' state included, goes with it), or run the version that made it'
    );
  }
  const each = mismatches.map((m) => `${m.pin} (${m.found}; ${m.name} is ${m.declared})`).join(', ');
  return (
    `pinned maps do not have the layout ${objectPath} declares: ${each}. ` +
    'They were made by another version of ferry\'s dataplane; remove their pins to have them made afresh ' +
    '(what they hold, the live flows\' state included, goes with them), or run the version that made them'
  );
}

/**
 * The capacity to load `map` with when a map is pinned at its path: the
 * pinned one's, which must be at least `asked`; or, for a pinned map of
 * another type, key or value size, what mismatchMessage() names.
 */
function pinnedCapacity(map: MapSpec, asked: number | undefined): number | Mismatch {
  const pin = map.pinPath!;
  const pinned = BpfMap.openPinned(pin);
  const found = { type: pinned.type, keySize: pinned.keySize, valueSize: pinned.valueSize, maxEntries: pinned.maxEntries };
  pinned.close();
  if (shape(found) !== shape(map)) return { pin, name: map.name, found: shape(found), declared: shape(map) };
  if (asked !== undefined && found.maxEntries < asked) {
    throw new Error(
      `pinned map ${pin} holds ${found.maxEntries} entries, fewer than the ${asked} asked for: a pinned map cannot grow; ` +
        'remove its pin to have it made afresh (what it holds, the live flows\' state included, goes with it)',
    );
  }
  return found.maxEntries;
}
