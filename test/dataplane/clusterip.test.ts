// End to end: the dataplane loaded and pinned like the daemon does it, pods
// attached by ferry's CNI ADD (which hooks from_pod onto each host veth), a
// ClusterIP programmed into the maps, and real TCP from a client pod to the
// VIP reaching the backends, replies coming back from the VIP.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { backendId, ct4Key, ctEntry, lb4Backend, lb4Key, lb4ReverseNat, lb4Service, revNatIndex } from '../../engine/dataplane/layout.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { readCounters } from '../../engine/dataplane/metrics.js';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import { Netns } from '../../engine/netns/netns.js';
import { Prober } from '../../engine/probe/probe.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { isRoot, makeNetns, run } from '../support/netns.js';

const VIP = '10.96.0.10';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Pod {
  netns: Netns;
  ip: string;
  hostVeth: string;
}

interface Setup {
  dp: Dataplane;
  node: Netns;
  add(label: string): Promise<Pod>;
  del(label: string, pod: Pod): Promise<void>;
}

async function setup(): Promise<Setup> {
  const pinRoot = makePinDir('ferry-e2e');
  cleanups.push(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  cleanups.push(() => dp.close());
  const state = mkdtempSync(join(tmpdir(), 'ferry-e2e-'));
  cleanups.push(() => rmSync(state, { recursive: true, force: true }));
  const node = Netns.open(makeNetns('fe2e-node'));
  cleanups.push(() => node.close());
  const handlers = createHandlers({ nodeNetns: node });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'e2e',
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }]] },
  });
  const call = async (command: 'ADD' | 'DEL', label: string, netns: Netns) => {
    const env = { CNI_COMMAND: command, CNI_CONTAINERID: `e2e-${label}`, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: conf }, handlers);
    expect(out.exitCode, out.stdout).toBe(0);
    return out.stdout;
  };
  const add = async (label: string): Promise<Pod> => {
    const netns = Netns.open(makeNetns(`fe2e-${label}`));
    cleanups.push(() => netns.close());
    const result = JSON.parse(await call('ADD', label, netns)) as { interfaces: Array<{ name: string }>; ips: Array<{ address: string }> };
    return { netns, ip: result.ips[0]!.address.split('/')[0]!, hostVeth: result.interfaces[0]!.name };
  };
  const del = async (label: string, pod: Pod) => {
    await call('DEL', label, pod.netns);
  };
  return { dp, node, add, del };
}

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
    const { dp, node, add } = await setup();
    const client = await add('client');
    const backends = [await add('be1'), await add('be2')];
    for (const pod of [client, ...backends]) expect(existsSync(linkPin(dp.pinRoot, pod.hostVeth))).toBe(true);
    // One tcx link per pod runs the pinned from_pod (Debian's bpftool 7.1 knows tcx links only by number).
    expect(tcxLinksOf(dp)).toBe(3);
    program(dp, backends);

    const prober = new Prober();
    cleanups.push(() => prober.close());
    for (const b of backends) await prober.serveTcp(b.netns, b.ip, 8080);
    for (let i = 0; i < 12; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `hello ${i}`);
      // The backend saw the client's own address: no SNAT on the way in.
      expect(r.reply).toMatch(new RegExp(`^pong hello ${i} \\(you are ${client.ip.replaceAll('.', '\\.')}:\\d+\\)$`));
    }
    // Conntrack tells which backend each flow went to: both were used.
    const chosen = new Set<number>();
    for (const [k, v] of dp.maps.conntrack.entries()) {
      const key = ct4Key.decode(k);
      if (key.dir === 'forward' && key.daddr === VIP) chosen.add(ctEntry.decode(v).backendId);
    }
    expect([...chosen].sort()).toEqual([1, 2]);
  });

  it('a ClusterIP without endpoints is refused at once: TCP connect and a connected UDP socket get ECONNREFUSED', async () => {
    const { dp, add } = await setup();
    const client = await add('client');
    program(dp, []);
    const udpKey = (slot: number) => lb4Key.encode({ address: VIP, port: 53, proto: 'udp', slot, scope: 'external' });
    dp.maps.revNat.update(revNatIndex.encode(2), lb4ReverseNat.encode({ address: VIP, port: 53 }), 'any');
    dp.maps.services.update(udpKey(0), lb4Service.encode({ backendId: 0, count: 0, revNatIndex: 2, flags: 0, affinityTimeout: 0 }), 'any');

    const prober = new Prober();
    cleanups.push(() => prober.close());
    // Without the ICMP port unreachable the SYN would be retransmitted until the 3 s timeout.
    let t0 = performance.now();
    await expect(prober.tcpExchange(client.netns, VIP, 80, 'anyone?', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(performance.now() - t0).toBeLessThan(1000);
    t0 = performance.now();
    await expect(prober.udpExchange(client.netns, VIP, 53, 'anyone?', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(readCounters(dp.maps.metrics).reject_no_backend).toBe(2n);
    expect(dp.maps.conntrack.entries().next().done).toBe(true);
  });

  it('DEL removes the pinned link with the veth', async () => {
    const { dp, add, del } = await setup();
    const pod = await add('solo');
    expect(existsSync(linkPin(dp.pinRoot, pod.hostVeth))).toBe(true);
    expect(tcxLinksOf(dp)).toBe(1);
    await del('solo', pod);
    expect(existsSync(linkPin(dp.pinRoot, pod.hostVeth))).toBe(false);
    expect(tcxLinksOf(dp)).toBe(0);
  });
});
