// A small dataplane state for the inspection tests (library and CLI): lb.o
// loaded with its maps pinned in a fresh pin directory (lb-fixture.ts), then
// filled through the layout codecs with services, backends, rev-NAT entries,
// conntrack flows and counters, including the broken bits inspection must
// flag (a slot naming a missing backend, a missing rev-NAT entry, a flow
// whose backend is gone, an expired flow). addIPv6Sample() adds IPv6 ones
// to the IPv6 maps beside them.
import { dirname } from 'node:path';

import { possibleCpus } from '../../engine/bpf/index.js';
import {
  backendId,
  CT_STATE,
  ct4Key,
  ct6Entry,
  ct6Key,
  CT_FLAGS,
  ctEntry,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  metricIndex,
  metricKey,
  metricValue,
  revNatIndex,
  type Ct4Key,
  type LbMetric,
  type Proto,
} from '../../engine/dataplane/layout.js';
import { loadLb, type LbFixture } from './lb-fixture.js';

export const SEC = 1_000_000_000n;

export interface Sample {
  lb: LbFixture;
  /** The directory the maps are pinned in: --pin-root. */
  pinRoot: string;
  /** CLOCK_MONOTONIC when the conntrack entries were written. */
  writtenAt: bigint;
}

function service(lb: LbFixture, address: string, port: number, proto: Proto, rev: number, ids: number[], count = ids.length): void {
  const key = (slot: number) => lb4Key.encode({ address, port, proto, slot, scope: 'external' });
  ids.forEach((id, i) => lb.services.update(key(i + 1), lb4Service.encode({ backendId: id, count: 0, revNatIndex: rev, flags: 0, affinityTimeout: 0 })));
  lb.services.update(key(0), lb4Service.encode({ backendId: 0, count, revNatIndex: rev, flags: 0, affinityTimeout: 0 }));
}

function backend(lb: LbFixture, id: number, address: string, port: number, proto: Proto): void {
  lb.backends.update(backendId.encode(id), lb4Backend.encode({ address, port, proto, flags: 0 }));
}

function revNat(lb: LbFixture, index: number, address: string, port: number): void {
  lb.revNat.update(revNatIndex.encode(index), lb4ReverseNat.encode({ address, port }));
}

interface FlowSpec {
  proto: Proto;
  client: readonly [string, number];
  service: readonly [string, number];
  backend: readonly [string, number];
  backendId: number;
  revNat: number;
  idle: bigint;
  lifetime: bigint;
  state: number;
  tcpFlags?: number;
  /** Write only the forward entry. */
  forwardOnly?: boolean;
}

function flow(lb: LbFixture, f: FlowSpec, now: bigint): void {
  const forward: Ct4Key = { saddr: f.client[0], sport: f.client[1], daddr: f.service[0], dport: f.service[1], proto: f.proto, dir: 'forward' };
  const reverse: Ct4Key = { saddr: f.backend[0], sport: f.backend[1], daddr: f.client[0], dport: f.client[1], proto: f.proto, dir: 'reverse' };
  const entry = ctEntry.encode({
    lastSeenNs: now - f.idle,
    lifetimeNs: f.lifetime,
    backendId: f.backendId,
    revNatIndex: f.revNat,
    tcpFlags: f.tcpFlags ?? 0,
    state: f.state,
  });
  lb.conntrack.update(ct4Key.encode(forward), entry);
  if (!f.forwardOnly) lb.conntrack.update(ct4Key.encode(reverse), entry);
}

/** Sets a counter's per-CPU slots to 1, 2, 3, …: the sum is n(n+1)/2 over n possible CPUs. */
export function setCounter(lb: LbFixture, name: LbMetric): bigint {
  const cpus = possibleCpus();
  const value = Buffer.alloc(lb.metrics.valueBufferSize);
  for (let cpu = 0; cpu < cpus; cpu++) metricValue.encode(BigInt(cpu + 1)).copy(value, cpu * 8);
  lb.metrics.update(metricKey.encode(metricIndex(name)), value);
  return BigInt((cpus * (cpus + 1)) / 2);
}

/**
 * Services: 10.96.0.10:80/tcp (rev-NAT 1) → backends 1, 2;
 * 10.96.0.53:53/udp (rev-NAT 2) → backend 3 and slot 2 naming missing backend 7;
 * 10.96.0.99:80/tcp (rev-NAT 3, whose entry is missing) with no backends.
 * Backend 4 is used by nothing; rev-NAT 9 neither.
 * Flows: two TCP (backends 1 and 2, both directions), one expired UDP flow
 * (backend 3), one UDP forward entry to gone backend 7. Counter
 * `translated` is set per CPU.
 */
export async function loadSample(): Promise<Sample & { translated: bigint }> {
  const lb = await loadLb();
  const pinRoot = dirname(lb.services.pinPath ?? '');
  if (pinRoot === '.') throw new Error('lb.o maps are not pinned: cannot run the inspection tests');
  backend(lb, 1, '10.244.0.5', 8080, 'tcp');
  backend(lb, 2, '10.244.0.6', 8080, 'tcp');
  backend(lb, 3, '10.244.0.9', 5353, 'udp');
  backend(lb, 4, '10.244.0.7', 8080, 'tcp');
  service(lb, '10.96.0.10', 80, 'tcp', 1, [1, 2]);
  service(lb, '10.96.0.53', 53, 'udp', 2, [3, 7]);
  service(lb, '10.96.0.99', 80, 'tcp', 3, []);
  revNat(lb, 1, '10.96.0.10', 80);
  revNat(lb, 2, '10.96.0.53', 53);
  revNat(lb, 9, '10.96.0.77', 80);

  const now = lb.now();
  const tcp = { proto: 'tcp', service: ['10.96.0.10', 80], revNat: 1 } as const;
  flow(lb, { ...tcp, client: ['10.244.0.2', 40000], backend: ['10.244.0.5', 8080], backendId: 1, idle: 3n * SEC, lifetime: 6n * 3600n * SEC, state: CT_STATE.established, tcpFlags: 0x12 }, now);
  flow(lb, { ...tcp, client: ['10.244.0.3', 40001], backend: ['10.244.0.6', 8080], backendId: 2, idle: 1n * SEC, lifetime: 60n * SEC, state: CT_STATE.new, tcpFlags: 0x02 }, now);
  const udp = { proto: 'udp', service: ['10.96.0.53', 53], revNat: 2, lifetime: 60n * SEC } as const;
  flow(lb, { ...udp, client: ['10.244.0.2', 5353], backend: ['10.244.0.9', 5353], backendId: 3, idle: 90n * SEC, state: CT_STATE.established }, now);
  flow(lb, { ...udp, client: ['10.244.0.4', 6000], backend: ['10.244.0.8', 5353], backendId: 7, idle: 1n * SEC, state: CT_STATE.new, forwardOnly: true }, now);
  const translated = setCounter(lb, 'translated');
  return { lb, pinRoot, writtenAt: now, translated };
}

/**
 * IPv6 beside loadSample()'s IPv4, in the IPv6 maps (ids and indices one
 * space with the IPv4 ones): [fd00:96::10]:80/tcp (rev-NAT 5) → backends
 * 21 ([fd00::5]:8080) and 22 ([fd00::6]:8080); [fd00:96::53]:53/udp (rev-NAT
 * 6) whose slot 1 names backend 3, an IPv4 backend. Flows: TCP from
 * [fd00:244::2]:40000 to backend 21 (both directions), and one from outside
 * to the NodePort [2001:db8::1]:30080, SNATed to [2001:db8::1]:61000, on
 * backend 22.
 */
export function addIPv6Sample(lb: LbFixture, now: bigint): void {
  lb.backends6.update(backendId.encode(21), lb6Backend.encode({ address: 'fd00::5', port: 8080, proto: 'tcp', flags: 0 }));
  lb.backends6.update(backendId.encode(22), lb6Backend.encode({ address: 'fd00::6', port: 8080, proto: 'tcp', flags: 0 }));
  const service6 = (address: string, port: number, proto: Proto, rev: number, ids: number[]) => {
    const key = (slot: number) => lb6Key.encode({ address, port, proto, slot, scope: 'external' });
    ids.forEach((id, i) => lb.services6.update(key(i + 1), lb4Service.encode({ backendId: id, count: 0, revNatIndex: rev, flags: 0, affinityTimeout: 0 })));
    lb.services6.update(key(0), lb4Service.encode({ backendId: 0, count: ids.length, revNatIndex: rev, flags: 0, affinityTimeout: 0 }));
    lb.revNat6.update(revNatIndex.encode(rev), lb6ReverseNat.encode({ address, port }));
  };
  service6('fd00:96::10', 80, 'tcp', 5, [21, 22]);
  service6('fd00:96::53', 53, 'udp', 6, [3]);
  const entry = (backend: number, nat?: { address: string; port: number }) =>
    ct6Entry.encode({
      lastSeenNs: now - 2n * SEC,
      lifetimeNs: 6n * 3600n * SEC,
      backendId: backend,
      revNatIndex: 5,
      tcpFlags: 0x12,
      state: CT_STATE.established,
      ...(nat !== undefined && { natAddress: nat.address, natPort: nat.port, flags: CT_FLAGS.snat }),
    });
  lb.conntrack6.update(ct6Key.encode({ saddr: 'fd00:244::2', sport: 40000, daddr: 'fd00:96::10', dport: 80, proto: 'tcp', dir: 'forward' }), entry(21));
  lb.conntrack6.update(ct6Key.encode({ saddr: 'fd00::5', sport: 8080, daddr: 'fd00:244::2', dport: 40000, proto: 'tcp', dir: 'reverse' }), entry(21));
  const outside = { address: '2001:db8:1::100', port: 50000 };
  const snat = { address: '2001:db8::1', port: 61000 };
  lb.conntrack6.update(ct6Key.encode({ saddr: outside.address, sport: outside.port, daddr: '2001:db8::1', dport: 30080, proto: 'tcp', dir: 'forward' }), entry(22, snat));
  lb.conntrack6.update(ct6Key.encode({ saddr: 'fd00::6', sport: 8080, daddr: snat.address, dport: snat.port, proto: 'tcp', dir: 'reverse' }), entry(22, outside));
}

