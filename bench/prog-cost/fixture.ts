// build/bpf/lb.o loaded for the program-cost bench, with its service maps
// sized for the largest scale measured (the object's own LB4_*_MAX hold
// 65,536 entries), and filled through layout.ts's codecs as the Reconciler
// lays entries out: slot 0 per frontend, slots 1…n naming backends by id;
// fillers as support/fill-maps.ts writes them.
import { BpfObject, type BpfCollection, type BpfMap, type BpfProgram } from '../../engine/bpf/index.js';
import {
  backendId,
  lb4Backend,
  lb4Key,
  lb4Maglev,
  lb4MaglevKey,
  lb4ReverseNat,
  localPod4,
  localPod4Key,
  lb4Service,
  LB_METRICS,
  MAPS,
  metricKey,
  metricValue,
  PROGRAMS,
  revNatIndex,
  SVC_FLAGS,
} from '../../engine/dataplane/layout.js';
import { MAGLEV_DEFAULT_SEED, maglevTable } from '../../engine/dataplane/maglev.js';
import { fillerServices } from '../support/cluster.js';
import { deleteFillers, writeFillers } from '../support/fill-maps.js';

export interface Backend {
  id: number;
  address: string;
  port: number;
}

export interface ServiceSpec {
  address: string;
  port: number;
  revNatIndex: number;
  backends: Backend[];
  maglev?: boolean;
}

export type Counters = Record<string, bigint>;

/** Backend ids of fillers start here, clear of the measured Services' ids. */
const FILLER_BACKEND_IDS = 10_000;

export class LbUnderTest {
  readonly program: BpfProgram;
  readonly #collection: BpfCollection;
  readonly #maps: Record<'services' | 'backends' | 'revNat' | 'conntrack' | 'metrics' | 'maglev' | 'localPods', BpfMap>;
  #fillers = 0;

  private constructor(collection: BpfCollection) {
    this.#collection = collection;
    this.program = collection.program(PROGRAMS.fromPod);
    const map = (role: keyof typeof MAPS) => collection.map(MAPS[role]);
    this.#maps = { services: map('services'), backends: map('backends'), revNat: map('revNat'), conntrack: map('conntrack'), metrics: map('metrics'), maglev: map('maglev'), localPods: map('localPods') };
  }

  /** Loads lb.o with room for `services` one-endpoint Services beside the measured ones (fewer than FILLER_BACKEND_IDS backends). */
  static async load(objectPath: string, pinRoot: string, services: number): Promise<LbUnderTest> {
    const room = (n: number) => 2 ** Math.ceil(Math.log2(n));
    // Backend ids index the backends map (an array): fillers' run up to FILLER_BACKEND_IDS + services − 1.
    const maxEntries = { [MAPS.services]: room(2 * services + 4 * FILLER_BACKEND_IDS), [MAPS.backends]: room(services + FILLER_BACKEND_IDS) };
    return new LbUnderTest(await BpfObject.open(objectPath, { pinRoot, maxEntries }).load());
  }

  get capacity(): { services: number; backends: number } {
    return { services: this.#maps.services.maxEntries, backends: this.#maps.backends.maxEntries };
  }

  /** Entries in the services map (slot 0 and backend slots alike). */
  get serviceEntries(): number {
    return [...this.#maps.services.keys()].length;
  }

  addService(spec: ServiceSpec): void {
    const key = (slot: number) => lb4Key.encode({ address: spec.address, port: spec.port, proto: 'tcp', slot, scope: 'external' });
    for (const b of spec.backends) this.#maps.backends.update(backendId.encode(b.id), lb4Backend.encode({ address: b.address, port: b.port, proto: 'tcp', flags: 0 }));
    spec.backends.forEach((b, i) => {
      this.#maps.services.update(key(i + 1), lb4Service.encode({ backendId: b.id, count: 0, revNatIndex: spec.revNatIndex, flags: 0, affinityTimeout: 0 }));
    });
    if (spec.maglev) {
      const names = spec.backends.map((b) => `backend ${b.id}`);
      const ids = new Map(spec.backends.map((b, i) => [names[i]!, b.id]));
      const table = maglevTable(names).map((name) => ids.get(name)!);
      this.#maps.maglev.update(lb4MaglevKey.encode({ revNatIndex: spec.revNatIndex, scope: 'external' }), lb4Maglev.encode({ seed: MAGLEV_DEFAULT_SEED, backendIds: table }));
    }
    const flags = spec.maglev ? SVC_FLAGS.maglev : 0;
    this.#maps.services.update(key(0), lb4Service.encode({ backendId: 0, count: spec.backends.length, revNatIndex: spec.revNatIndex, flags, affinityTimeout: 0 }));
    this.#maps.revNat.update(revNatIndex.encode(spec.revNatIndex), lb4ReverseNat.encode({ address: spec.address, port: spec.port }));
  }

  /** Makes the number of filler Services (one endpoint each) `count`. */
  setFillers(count: number): void {
    const all = fillerServices(Math.max(count, this.#fillers), 1);
    if (count > this.#fillers) writeFillers(this.#maps, all.slice(this.#fillers, count), FILLER_BACKEND_IDS + this.#fillers);
    else deleteFillers(this.#maps, all.slice(count, this.#fillers), FILLER_BACKEND_IDS + count);
    this.#fillers = count;
  }

  /** Every counter, summed over CPUs. */
  counters(): Counters {
    const out: Counters = {};
    LB_METRICS.forEach((name, index) => {
      const value = this.#maps.metrics.lookup(metricKey.encode(index))!;
      out[name] = this.#maps.metrics.perCpuValues(value).reduce((sum, slot) => sum + metricValue.decode(slot), 0n);
    });
    return out;
  }

  /** Makes `address` a pod of this node (host routing delivers to it with bpf_redirect_peer()); the ifindex is never used by a test run. */
  addLocalPod(address: string): void {
    const mac = (last: number) => `02:00:00:00:00:${last.toString(16).padStart(2, '0')}`;
    this.#maps.localPods.update(localPod4Key.encode({ address }), localPod4.encode({ ifindex: 1, podMac: mac(2), hostMac: mac(1) }));
  }

  get conntrackCapacity(): number {
    return this.#maps.conntrack.maxEntries;
  }

  conntrackEntries(): number {
    return [...this.#maps.conntrack.keys()].length;
  }

  clearConntrack(): void {
    emptyMap(this.#maps.conntrack);
  }

  close(): void {
    this.#collection.close();
  }
}

/** Deletes every entry of `map`. */
export function emptyMap(map: BpfMap): void {
  for (const key of [...map.keys()]) map.delete(key);
}

/** What moved between two counter readings. */
export function moved(before: Counters, after: Counters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(after)) {
    const d = Number(after[name]! - (before[name] ?? 0n));
    if (d !== 0) out[name] = d;
  }
  return out;
}
