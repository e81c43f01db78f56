// Loading ferry's eBPF dataplane: the load-balancer object is loaded with its
// maps pinned by name under the pin root (so a restarted daemon reuses the
// same maps, and live flows keep their conntrack entries and backends), the
// from_pod program is pinned where CNI ADD finds it, and from_uplink and
// to_uplink where attachUplink() (uplink.ts) does.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BpfMap, BpfObject, ensureBpffs, unpinPath, type BpfCollection } from '../bpf/index.js';
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
   * removing its pin starts it afresh, without what it holds).
   */
  maxEntries?: Partial<Record<MapRole, number>>;
}

/** Equivalent to: `bpftool prog loadall lb.o PINROOT pinmaps PINROOT` (programs pinned as from_pod, from_uplink and to_uplink). */
export async function loadDataplane(pinRoot = DEFAULT_PIN_ROOT, objectPath = bpfObjectPath(OBJECT_FILE), options: LoadOptions = {}): Promise<Dataplane> {
  ensureBpffs();
  mkdirSync(pinRoot, { recursive: true });
  const maxEntries = Object.fromEntries(
    Object.entries(options.maxEntries ?? {}).map(([role, n]) => {
      const name = MAPS[role as MapRole];
      return [name, capacity(pinRoot, name, n)];
    }),
  );
  const collection: BpfCollection = await BpfObject.open(objectPath, { pinRoot, maxEntries }).load();
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

/** The capacity to load map `name` with: `asked`, or its pinned map's when that is as large or larger. */
function capacity(pinRoot: string, name: string, asked: number): number {
  const pin = join(pinRoot, name);
  if (!existsSync(pin)) return asked;
  const map = BpfMap.openPinned(pin);
  const pinned = map.maxEntries;
  map.close();
  if (pinned < asked) {
    throw new Error(
      `pinned map ${pin} holds ${pinned} entries, fewer than the ${asked} asked for: a pinned map cannot grow; ` +
        'remove its pin to have it made afresh (what it holds, the live flows\' state included, goes with it)',
    );
  }
  return pinned;
}
