// build/bpf/lb.o loaded for one test, its maps under a fresh pin directory,
// filled and read only through engine/dataplane/layout.ts's codecs. Both the
// collection and the pin directory go away after the test, even a failed one.
import { clearBackend } from '../../engine/dataplane/backend-slots.js';
import { datapathClock, type Clock } from '../../engine/dataplane/clock.js';
import { type BpfCollection, type BpfMap, BpfObject, type BpfProgram, type TestRunResult } from '../../engine/bpf/index.js';
import {
  backendId,
  type Ct4Key,
  ct4Key,
  ct6Entry,
  ct6Key,
  type CtEntry,
  ctEntry,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  LB_METRICS,
  type LbMetric,
  type LocalPod4,
  localPod4,
  localPod4Key,
  localPod6Key,
  MAPS,
  metricKey,
  metricValue,
  type NodeConfig,
  nodeConfig,
  nodeConfigKey,
  OBJECT_FILE,
  PROGRAMS,
  type Proto,
  revNatIndex,
  type Scope,
} from '../../engine/dataplane/layout.js';
import { bpfObject, defer, pinDir } from '../bpf/support.js';

/** What the programs return: TCX_NEXT / TC_ACT_UNSPEC, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT. */
export const NEXT = -1;
export const OK = 0;
export const SHOT = 2;
export const REDIRECT = 7;

/** How far the datapath's clock, as clock.ts measures it, may be from a record's time: a tick (≤ 10 ms) and then some. */
const CLOCK_SLACK_NS = 20_000_000n;

export interface Endpoint {
  address: string;
  port: number;
}

export interface ServiceSpec extends Endpoint {
  proto: Proto;
  revNatIndex: number;
  backends: Array<Endpoint & { id: number }>;
  /** Slot 0's SVC_FLAGS; default 0 (a ClusterIP). */
  flags?: number;
  /** Default 'external'. */
  scope?: Scope;
  /** Slot 0's affinity_timeout, seconds; default 0 (no session affinity). */
  affinityTimeout?: number;
}

export class LbFixture {
  readonly collection: BpfCollection;
  /** from_pod */
  readonly program: BpfProgram;
  readonly uplink: BpfProgram;
  readonly toUplink: BpfProgram;
  readonly services: BpfMap;
  readonly backends: BpfMap;
  readonly revNat: BpfMap;
  readonly conntrack: BpfMap;
  readonly metrics: BpfMap;
  readonly nodeConfig: BpfMap;
  readonly affinity: BpfMap;
  readonly maglev: BpfMap;
  readonly localPods: BpfMap;
  readonly clusterNodes: BpfMap;
  readonly fragments: BpfMap;
  readonly services6: BpfMap;
  readonly backends6: BpfMap;
  readonly revNat6: BpfMap;
  readonly conntrack6: BpfMap;
  readonly affinity6: BpfMap;
  readonly localPods6: BpfMap;
  /** The programs' clock (lib/common.h lb_now(), engine/dataplane/clock.ts): what records' times are compared with. */
  readonly now: Clock;

  constructor(collection: BpfCollection, now: Clock) {
    this.collection = collection;
    this.now = now;
    this.program = collection.program(PROGRAMS.fromPod);
    this.uplink = collection.program(PROGRAMS.fromUplink);
    this.toUplink = collection.program(PROGRAMS.toUplink);
    this.services = collection.map(MAPS.services);
    this.backends = collection.map(MAPS.backends);
    this.revNat = collection.map(MAPS.revNat);
    this.conntrack = collection.map(MAPS.conntrack);
    this.metrics = collection.map(MAPS.metrics);
    this.nodeConfig = collection.map(MAPS.nodeConfig);
    this.affinity = collection.map(MAPS.affinity);
    this.maglev = collection.map(MAPS.maglev);
    this.localPods = collection.map(MAPS.localPods);
    this.clusterNodes = collection.map(MAPS.clusterNodes);
    this.fragments = collection.map(MAPS.fragments);
    this.services6 = collection.map(MAPS.services6);
    this.backends6 = collection.map(MAPS.backends6);
    this.revNat6 = collection.map(MAPS.revNat6);
    this.conntrack6 = collection.map(MAPS.conntrack6);
    this.affinity6 = collection.map(MAPS.affinity6);
    this.localPods6 = collection.map(MAPS.localPods6);
  }

  /** A service with its backends in slots 1…n, as the reconciler would write it. */
  addService(spec: ServiceSpec): void {
    const scope = spec.scope ?? 'external';
    const key = (slot: number): Buffer => lb4Key.encode({ address: spec.address, port: spec.port, proto: spec.proto, slot, scope });
    for (const b of spec.backends) {
      this.backends.update(backendId.encode(b.id), lb4Backend.encode({ address: b.address, port: b.port, proto: spec.proto, flags: 0 }));
    }
    spec.backends.forEach((b, i) => {
      this.services.update(key(i + 1), lb4Service.encode({ backendId: b.id, count: 0, revNatIndex: spec.revNatIndex, flags: 0, affinityTimeout: 0 }));
    });
    this.services.update(
      key(0),
      lb4Service.encode({ backendId: 0, count: spec.backends.length, revNatIndex: spec.revNatIndex, flags: spec.flags ?? 0, affinityTimeout: spec.affinityTimeout ?? 0 }),
    );
    this.revNat.update(revNatIndex.encode(spec.revNatIndex), lb4ReverseNat.encode({ address: spec.address, port: spec.port }));
  }

  /** An IPv6 service (ferry_lb6_svc, _be, _rnat) with its backends in slots 1…n, as addService() writes IPv4's. */
  addService6(spec: ServiceSpec): void {
    const scope = spec.scope ?? 'external';
    const key = (slot: number): Buffer => lb6Key.encode({ address: spec.address, port: spec.port, proto: spec.proto, slot, scope });
    for (const b of spec.backends) {
      this.backends6.update(backendId.encode(b.id), lb6Backend.encode({ address: b.address, port: b.port, proto: spec.proto, flags: 0 }));
    }
    spec.backends.forEach((b, i) => {
      this.services6.update(key(i + 1), lb4Service.encode({ backendId: b.id, count: 0, revNatIndex: spec.revNatIndex, flags: 0, affinityTimeout: 0 }));
    });
    this.services6.update(
      key(0),
      lb4Service.encode({ backendId: 0, count: spec.backends.length, revNatIndex: spec.revNatIndex, flags: spec.flags ?? 0, affinityTimeout: spec.affinityTimeout ?? 0 }),
    );
    this.revNat6.update(revNatIndex.encode(spec.revNatIndex), lb6ReverseNat.encode({ address: spec.address, port: spec.port }));
  }

  /**
   * Removes backend `id` as user space does: the backends maps are arrays,
   * so its slot is written all zero (an array's slot cannot be deleted).
   */
  removeBackend(id: number): void {
    clearBackend(this.backends, 4, id);
  }

  /** removeBackend() in the IPv6 backends map. */
  removeBackend6(id: number): void {
    clearBackend(this.backends6, 6, id);
  }

  /** A pod of this node, as CNI ADD registers it for host routing. */
  addLocalPod(address: string, pod: LocalPod4): void {
    this.localPods.update(localPod4Key.encode({ address }), localPod4.encode(pod));
  }

  /** A pod of this node by an IPv6 address (ferry_pod6), as CNI ADD registers it. */
  addLocalPod6(address: string, pod: LocalPod4): void {
    this.localPods6.update(localPod6Key.encode({ address }), localPod4.encode(pod));
  }

  setNodeConfig(config: NodeConfig): void {
    this.nodeConfig.update(nodeConfigKey.encode(0), nodeConfig.encode(config));
  }

  /** Runs from_pod on a frame. */
  async run(data: Buffer): Promise<TestRunResult> {
    return this.program.testRun({ data });
  }

  /** Runs from_uplink on a frame. */
  async runUplink(data: Buffer): Promise<TestRunResult> {
    return this.uplink.testRun({ data });
  }

  /** Runs to_uplink on a frame. */
  async runEgress(data: Buffer): Promise<TestRunResult> {
    return this.toUplink.testRun({ data });
  }

  /** Every conntrack entry, decoded. */
  flows(): Array<{ key: Ct4Key; entry: CtEntry }> {
    return [...this.conntrack.entries()].map(([k, v]) => ({ key: ct4Key.decode(k), entry: ctEntry.decode(v) }));
  }

  flow(key: Ct4Key): CtEntry | undefined {
    const value = this.conntrack.lookup(ct4Key.encode(key));
    return value === undefined ? undefined : ctEntry.decode(value);
  }

  /** Every IPv6 conntrack entry (ferry_ct6), decoded. */
  flows6(): Array<{ key: Ct4Key; entry: CtEntry }> {
    return [...this.conntrack6.entries()].map(([k, v]) => ({ key: ct6Key.decode(k), entry: ct6Entry.decode(v) }));
  }

  flow6(key: Ct4Key): CtEntry | undefined {
    const value = this.conntrack6.lookup(ct6Key.encode(key));
    return value === undefined ? undefined : ct6Entry.decode(value);
  }

  /** Every counter, summed over CPUs. */
  counters(): Record<LbMetric, bigint> {
    const out = {} as Record<LbMetric, bigint>;
    LB_METRICS.forEach((name, index) => {
      const value = this.metrics.lookup(metricKey.encode(index));
      if (value === undefined) throw new Error(`metric ${name} (${index}) missing`);
      out[name] = this.metrics.perCpuValues(value).reduce((sum, slot) => sum + metricValue.decode(slot), 0n);
    });
    return out;
  }

  /** At most what a record written after this call holds as its time. */
  clockFloor(): bigint {
    return this.now() - CLOCK_SLACK_NS;
  }

  /** At least what a record written before this call holds as its time. */
  clockCeiling(): bigint {
    return this.now() + CLOCK_SLACK_NS;
  }

  /** Counters that are not zero: what a test expects to see moved. */
  nonZeroCounters(): Partial<Record<LbMetric, bigint>> {
    return Object.fromEntries(Object.entries(this.counters()).filter(([, v]) => v !== 0n));
  }
}

/** Loads lb.o for the current test; unloaded and unpinned after it. */
export async function loadLb(): Promise<LbFixture> {
  const collection = await BpfObject.open(bpfObject(OBJECT_FILE.replace(/\.o$/, '')), { pinRoot: pinDir() }).load();
  defer(() => collection.close());
  return new LbFixture(collection, await datapathClock(bpfObject('clock')));
}
