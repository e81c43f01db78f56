// Loading ferry's eBPF dataplane: the load-balancer object is loaded with its
// maps pinned by name under the pin root (so a restarted daemon reuses the
// same maps, and live flows keep their conntrack entries and backends), and
// the from_pod program is pinned where CNI ADD finds it.
import { mkdirSync } from 'node:fs';
import { BpfObject, ensureBpffs, unpinPath, type BpfCollection, type BpfMap } from '../bpf/index.js';
import { MAPS, OBJECT_FILE, PROGRAMS } from './layout.js';
import { bpfObjectPath, DEFAULT_PIN_ROOT, fromPodPin } from './paths.js';

export interface Dataplane {
  readonly pinRoot: string;
  readonly maps: { services: BpfMap; backends: BpfMap; revNat: BpfMap; conntrack: BpfMap; metrics: BpfMap };
  /** Closes this process's fds; pinned maps, program and links stay. */
  close(): void;
}

/** Equivalent to: `bpftool prog loadall lb.o PINROOT pinmaps PINROOT` (with the program pinned as from_pod). */
export async function loadDataplane(pinRoot = DEFAULT_PIN_ROOT, objectPath = bpfObjectPath(OBJECT_FILE)): Promise<Dataplane> {
  ensureBpffs();
  mkdirSync(pinRoot, { recursive: true });
  const collection: BpfCollection = await BpfObject.open(objectPath, { pinRoot }).load();
  try {
    const program = collection.program(PROGRAMS.fromPod);
    // A new program replaces the pin; pods attached earlier keep running the
    // old one until their next ADD (their links hold it).
    unpinPath(fromPodPin(pinRoot));
    program.pin(fromPodPin(pinRoot));
    return {
      pinRoot,
      maps: {
        services: collection.map(MAPS.services),
        backends: collection.map(MAPS.backends),
        revNat: collection.map(MAPS.revNat),
        conntrack: collection.map(MAPS.conntrack),
        metrics: collection.map(MAPS.metrics),
      },
      close: () => collection.close(),
    };
  } catch (e) {
    collection.close();
    throw e;
  }
}
