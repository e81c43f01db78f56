// kube-proxy's stale-UDP-conntrack bug class, on the real datapath (from_pod
// under BPF_PROG_TEST_RUN) with the maps written by the Reconciler: once a
// backend leaves a UDP Service, the next datagram of a flow that was pinned
// to it must pick a live backend instead of going on to the old one.
import { describe, expect, it } from 'vitest';

import { isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import { collectConntrack, forgetBackends } from '../../engine/dataplane/ct-gc.js';
import { backendId, CT_STATE, ct6Entry, ct6Key } from '../../engine/dataplane/layout.js';
import { parseEndpoints, parseService, type Endpoint } from '../../engine/dataplane/model.js';
import { desiredState, Reconciler } from '../../engine/dataplane/reconcile.js';
import { isRoot } from '../support/netns.js';
import { loadLb, NEXT, OK, type LbFixture } from './lb-fixture.js';
import { ipv4Packet, parseIpv4Packet, type Ipv4Spec } from './packets.js';

const CLIENT = '10.244.0.9';
const A = '10.244.1.1';
const B = '10.244.1.2';
const DNS_VIP = '10.96.0.10';
const OTHER_VIP = '10.96.0.20';

/** UDP Services `name` → [VIP, endpoint addresses], port 53 → 5353. */
function state(services: Record<string, [string, string[]]>) {
  const list = Object.entries(services).map(([name, [vip]]) =>
    parseService({ namespace: 'kube-system', name, clusterIPs: [vip], ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] }),
  );
  const eps = new Map<string, Endpoint[]>(
    Object.entries(services).map(([name, [, addresses]]) => [
      `kube-system/${name}`,
      parseEndpoints({ namespace: 'kube-system', name }, addresses.map((a) => ({ addresses: [a], ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }] }))),
    ]),
  );
  return desiredState(list, eps, { nodeName: 'node-a' });
}

const query = (vip: string, sport: number): Ipv4Spec => ({ proto: 'udp', src: CLIENT, dst: vip, sport, dport: 53, payload: Buffer.from('query') });

/** Sends one datagram of the flow; returns the backend address from_pod sent it to. */
async function send(lb: LbFixture, spec: Ipv4Spec): Promise<string> {
  const result = await lb.run(ipv4Packet(spec));
  expect(result.retval).toBe(OK);
  const out = parseIpv4Packet(result.data);
  expect(out).toMatchObject({ src: CLIENT, sport: spec.sport, dport: 5353, ipChecksumValid: true, l4ChecksumValid: true });
  return out.dst;
}

/** A source port whose flow to `vip` from_pod pins to `backend` (the choice is random per new flow). */
async function flowTo(lb: LbFixture, vip: string, backend: string): Promise<Ipv4Spec> {
  for (let sport = 40000; sport < 40100; sport++) {
    const spec = query(vip, sport);
    if ((await send(lb, spec)) === backend) return spec;
  }
  throw new Error(`no flow to ${vip} landed on ${backend} in 100 tries`);
}

describe.skipIf(!isRoot)('conntrack of removed UDP backends (BPF_PROG_RUN, needs root)', () => {
  it('a backend removed from the maps: forgetBackends() after apply() sends the flow\'s next datagram to a live backend', async () => {
    const lb = await loadLb();
    const reconciler = await Reconciler.adopt(lb);
    reconciler.apply(state({ dns: [DNS_VIP, [A, B]] }));
    const idA = reconciler.backendId(`${A}:5353/udp`)!;

    const spec = await flowTo(lb, DNS_VIP, A);
    const sport = spec.sport;
    expect(await send(lb, spec)).toBe(A); // pinned
    const reply: Ipv4Spec = { proto: 'udp', src: A, dst: CLIENT, sport: 5353, dport: sport, payload: Buffer.from('answer') };
    const answered = await lb.run(ipv4Packet(reply));
    expect(answered.retval).toBe(OK);
    expect(parseIpv4Packet(answered.data)).toMatchObject({ src: DNS_VIP, sport: 53 });

    const result = reconciler.apply(state({ dns: [DNS_VIP, [B]] }));
    expect(result.removedBackendIds).toEqual([idA]);
    const flowsOfA = lb.flows().filter((f) => f.entry.backendId === idA);
    expect(flowsOfA.filter((f) => f.key.sport === sport || f.key.dport === sport)).toHaveLength(2);
    const forgotten = forgetBackends(lb.conntrack, result.removedBackendIds);
    expect(forgotten).toBe(flowsOfA.length);
    expect(lb.flows().filter((f) => f.entry.backendId === idA)).toEqual([]);

    const before = lb.counters();
    expect(await send(lb, spec)).toBe(B);
    const after = lb.counters();
    // A new flow, not a repair of the old one.
    expect(after.ct_created - before.ct_created).toBe(1n);
    expect(after.ct_reselected - before.ct_reselected).toBe(0n);
    // A late answer from A is no longer dressed up as the Service's.
    expect((await lb.run(ipv4Packet(reply))).retval).toBe(NEXT);
    expect(lb.counters().pass_no_service - after.pass_no_service).toBe(1n);
  });

  it('a backend that leaves one UDP Service but serves another: the GC withdraws the flow, which then picks a live backend', async () => {
    const lb = await loadLb();
    const reconciler = await Reconciler.adopt(lb);
    reconciler.apply(state({ dns: [DNS_VIP, [A, B]], other: [OTHER_VIP, [A]] }));

    const spec = await flowTo(lb, DNS_VIP, A);
    const result = reconciler.apply(state({ dns: [DNS_VIP, [B]], other: [OTHER_VIP, [A]] }));
    // A stays in the backends map (the other Service uses it): nothing for forgetBackends.
    expect(result.removedBackendIds).toEqual([]);
    expect(forgetBackends(lb.conntrack, result.removedBackendIds)).toBe(0);
    // The bug: the pinned flow would go on to A, which no longer serves this Service.
    expect(await send(lb, spec)).toBe(A);

    const gc = collectConntrack(lb, lb.now());
    // Both families' maps are collected (lb has ferry_ct6 too): the capacity is theirs together.
    expect(gc).toMatchObject({ expired: 0, orphaned: 0, withdrawn: 2, capacity: lb.conntrack.maxEntries + lb.conntrack6.maxEntries });
    expect(await send(lb, spec)).toBe(B);
    // The other Service's flows to A are untouched by that pass.
    const other = await flowTo(lb, OTHER_VIP, A);
    expect(collectConntrack(lb, lb.now())).toMatchObject({ withdrawn: 0, orphaned: 0, expired: 0 });
    expect(await send(lb, other)).toBe(A);
  });

  it('IPv6 flows in ferry_ct6 (written through the layout): forgetBackends() and the GC take those of a removed or withdrawn IPv6 backend', async () => {
    const lb = await loadLb();
    const reconciler = await Reconciler.adopt(lb);
    const A6 = 'fd00:244:1::1';
    const B6 = 'fd00:244:1::2';
    const dual = (dns: string[], other: string[]) => {
      const list = [
        parseService({ namespace: 'kube-system', name: 'dns', clusterIPs: [DNS_VIP, 'fd00:96::10'], ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] }),
        parseService({ namespace: 'kube-system', name: 'other', clusterIPs: ['fd00:96::20'], ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] }),
      ];
      const eps = (name: string, addresses: string[]) =>
        parseEndpoints({ namespace: 'kube-system', name }, addresses.map((a) => ({ addresses: [a], ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }] })));
      return desiredState(list, new Map([['kube-system/dns', eps('dns', dns)], ['kube-system/other', eps('other', other)]]), { nodeName: 'node-a' });
    };
    reconciler.apply(dual([A, A6, B6], [A6]));
    const [idA6, idB6] = [reconciler.backendId(`${A6}:5353/udp`)!, reconciler.backendId(`${B6}:5353/udp`)!];
    const now = lb.now();
    /** A UDP flow's two ferry_ct6 entries, as from_pod writes them. */
    const flow6 = (vip: string, sport: number, backend: string, id: number) => {
      const entry = ct6Entry.encode({ lastSeenNs: now, lifetimeNs: 60_000_000_000n, backendId: id, revNatIndex: reconciler.revNatIndex(`${vip}:53/udp`)!, tcpFlags: 0, state: CT_STATE.established });
      lb.conntrack6.update(ct6Key.encode({ saddr: 'fd00:244::9', daddr: vip, sport, dport: 53, proto: 'udp', dir: 'forward' }), entry);
      lb.conntrack6.update(ct6Key.encode({ saddr: backend, daddr: 'fd00:244::9', sport: 5353, dport: sport, proto: 'udp', dir: 'reverse' }), entry);
    };
    flow6('fd00:96::10', 40000, A6, idA6);
    flow6('fd00:96::10', 40001, B6, idB6);
    flow6('fd00:96::20', 40002, A6, idA6);
    const flows = () => [...lb.conntrack6.keys()].map((k) => ct6Key.decode(k)).filter((k) => k.dir === 'forward').map((k) => `${k.daddr} ${k.sport}`).sort();

    // B6 leaves the maps: its id is removed, and its flow forgotten at once.
    const removed = reconciler.apply(dual([A, A6], [A6]));
    expect(removed.removedBackendIds).toEqual([idB6]);
    expect(forgetBackends(lb, removed.removedBackendIds)).toBe(2);
    expect(flows()).toEqual(['fd00:96::10 40000', 'fd00:96::20 40002']);

    // A6 leaves dns but stays for other: the GC withdraws dns's flow to it, not other's.
    expect(reconciler.apply(dual([A], [A6])).removedBackendIds).toEqual([]);
    expect(collectConntrack(lb, lb.now())).toMatchObject({ expired: 0, orphaned: 0, withdrawn: 2, remaining: 2 });
    expect(flows()).toEqual(['fd00:96::20 40002']);
  });

  it('a removed backend’s slot is left all zero in its array, and the GC takes the flows naming it as orphaned, in both families', async () => {
    const lb = await loadLb();
    const reconciler = await Reconciler.adopt(lb);
    const A6 = 'fd00:244:1::1';
    const dns = (addresses: string[]) =>
      desiredState(
        [parseService({ namespace: 'kube-system', name: 'dns', clusterIPs: [DNS_VIP, 'fd00:96::10'], ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] })],
        new Map([['kube-system/dns', parseEndpoints({ namespace: 'kube-system', name: 'dns' }, addresses.map((a) => ({ addresses: [a], ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }] })))]]),
        { nodeName: 'node-a' },
      );
    reconciler.apply(dns([A, B, A6]));
    const [idA, idA6] = [reconciler.backendId(`${A}:5353/udp`)!, reconciler.backendId(`${A6}:5353/udp`)!];
    const spec = await flowTo(lb, DNS_VIP, A); // both entries written by from_pod
    const entry = ct6Entry.encode({ lastSeenNs: lb.now(), lifetimeNs: 60_000_000_000n, backendId: idA6, revNatIndex: reconciler.revNatIndex('fd00:96::10:53/udp')!, tcpFlags: 0, state: CT_STATE.established });
    lb.conntrack6.update(ct6Key.encode({ saddr: 'fd00:244::9', daddr: 'fd00:96::10', sport: 40000, dport: 53, proto: 'udp', dir: 'forward' }), entry);
    lb.conntrack6.update(ct6Key.encode({ saddr: A6, daddr: 'fd00:244::9', sport: 5353, dport: 40000, proto: 'udp', dir: 'reverse' }), entry);

    const result = reconciler.apply(dns([B]));
    expect(result.removedBackendIds).toEqual([idA, idA6].sort((x, y) => x - y));
    // An array's slot is not deleted: it is there, all zero, which is no backend.
    expect(isEmptyBackend(lb.backends.lookup(backendId.encode(idA))!)).toBe(true);
    expect(isEmptyBackend(lb.backends6.lookup(backendId.encode(idA6))!)).toBe(true);
    // No forgetBackends(): the GC alone finds their backends gone (not withdrawn from a Service they still exist for).
    expect(collectConntrack(lb, lb.now())).toMatchObject({ expired: 0, orphaned: 4, withdrawn: 0 });
    expect(await send(lb, spec)).toBe(B);
  });
});
