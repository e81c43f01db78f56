// End to end: the dataplane loaded and pinned like the daemon does it, pods
// attached by ferry's CNI ADD (which hooks from_pod onto each host veth), a
// ClusterIP programmed into the maps, and real TCP from a client pod to the
// VIP reaching the backends, replies coming back from the VIP.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { backendId, ct4Key, ctEntry, lb4Backend, lb4Key, lb4ReverseNat, lb4Service, revNatIndex } from '../../engine/dataplane/layout.js';
import type { Dataplane } from '../../engine/dataplane/loader.js';
import { readCounters } from '../../engine/dataplane/metrics.js';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import { Prober } from '../../engine/probe/probe.js';
import { isRoot, run } from '../support/netns.js';
import { podNode, type Pod } from './pod-node.js';

const VIP = '10.96.0.10';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A ClusterIP VIP:80/tcp with the given backends on :8080, written through the layout codecs. */
function program(dp: Dataplane, backends: Pod[]): void {
  const key = (slot: number) => lb4Key.encode({ address: VIP, port: 80, proto: 'tcp', slot, scope: 'external' });
  backends.forEach((b, i) => {
    dp.maps.backends.update(backendId.encode(i + 1), lb4Backend.encode({ address: b.ip, port: 8080, proto: 'tcp', flags: 0 }), 'any');
    dp.maps.services.update(key(i + 1), lb4Service.encode({ backendId: i + 1, count: 0, revNatIndex: 1, flags: 0, affinityTimeout: 0 }), 'any');
  });
  dp.maps.revNat.update(revNatIndex.encode(1), lb4ReverseNat.encode({ address: VIP, port: 80 }), 'any');
  dp.maps.services.update(key(0), lb4Service.encode({ backendId: 0, count: backends.length, revNatIndex: 1, flags: 0, affinityTimeout: 0 }), 'any');
}

/** BPF_LINK_TYPE_TCX in the kernel's enum bpf_link_type. */
const LINK_TYPE_TCX = 11;

/** How many tcx links run this dataplane's pinned from_pod, by bpftool (links are global, the program id is ours). */
function tcxLinksOf(dp: Dataplane): number {
  const prog = JSON.parse(run('bpftool', ['-j', 'prog', 'show', 'pinned', fromPodPin(dp.pinRoot)])) as { id: number };
  const links = JSON.parse(run('bpftool', ['-j', 'link', 'show'])) as Array<{ type: number | string; prog_id: number }>;
  return links.filter((l) => (l.type === LINK_TYPE_TCX || l.type === 'tcx') && l.prog_id === prog.id).length;
}

describe.skipIf(!isRoot)('ClusterIP through the eBPF dataplane (needs root)', () => {
  it('CNI ADD attaches from_pod with tcx; a client pod reaches the VIP, load-balanced over both backends', async () => {
    const { dp, add } = await podNode(cleanups, 'fe2e');
    const client = await add('client');
    const backends = [await add('be1'), await add('be2')];
    for (const pod of [client, ...backends]) expect(existsSync(linkPin(dp.pinRoot, pod.hostVeth))).toBe(true);
    // One tcx link per pod runs the pinned from_pod (Debian's bpftool 7.1 knows tcx links only by number).
    expect(tcxLinksOf(dp)).toBe(3);
    program(dp, backends);

    const prober = new Prober();
    cleanups.push(() => prober.close());
    for (const b of backends) await prober.serveTcp(b.netns, b.ip, 8080);
    for (let i = 0; i < 30; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `hello ${i}`);
      // The backend saw the client's own address: no SNAT on the way in.
      expect(r.reply).toMatch(new RegExp(`^pong hello ${i} \\(you are ${client.ip.replaceAll('.', '\\.')}:\\d+\\)$`));
    }
    // Conntrack tells which backend each flow went to: both were used (30 flows, each backend 1/2: all on one has p = 2^-29).
    const chosen = new Set<number>();
    for (const [k, v] of dp.maps.conntrack.entries()) {
      const key = ct4Key.decode(k);
      if (key.dir === 'forward' && key.daddr === VIP) chosen.add(ctEntry.decode(v).backendId);
    }
    expect([...chosen].sort()).toEqual([1, 2]);
  });

  it('a ClusterIP without endpoints is refused at once: TCP connect and a connected UDP socket get ECONNREFUSED', async () => {
    const { dp, add } = await podNode(cleanups, 'fe2e');
    const client = await add('client');
    program(dp, []);
    const udpKey = (slot: number) => lb4Key.encode({ address: VIP, port: 53, proto: 'udp', slot, scope: 'external' });
    dp.maps.revNat.update(revNatIndex.encode(2), lb4ReverseNat.encode({ address: VIP, port: 53 }), 'any');
    dp.maps.services.update(udpKey(0), lb4Service.encode({ backendId: 0, count: 0, revNatIndex: 2, flags: 0, affinityTimeout: 0 }), 'any');

    const prober = new Prober();
    cleanups.push(() => prober.close());
    // Without the ICMP port unreachable the SYN would be retransmitted until the 3 s timeout.
    // (ECONNREFUSED comes only from that ICMP error; a lost SYN ends in ETIMEDOUT.)
    await expect(prober.tcpExchange(client.netns, VIP, 80, 'anyone?', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(prober.udpExchange(client.netns, VIP, 53, 'anyone?', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(readCounters(dp.maps.metrics).reject_no_backend).toBe(2n);
    expect(dp.maps.conntrack.entries().next().done).toBe(true);
  });

  it('DEL removes the pinned link with the veth', async () => {
    const { dp, add, del } = await podNode(cleanups, 'fe2e');
    const pod = await add('solo');
    expect(existsSync(linkPin(dp.pinRoot, pod.hostVeth))).toBe(true);
    expect(tcxLinksOf(dp)).toBe(1);
    await del('solo', pod);
    expect(existsSync(linkPin(dp.pinRoot, pod.hostVeth))).toBe(false);
    expect(tcxLinksOf(dp)).toBe(0);
  });
});
