// End to end: Services reached from outside the node. A node namespace with
// an uplink veth to an "outside" namespace, backend pods attached by ferry's
// CNI ADD, the dataplane loaded and pinned, from_uplink attached to the
// uplink by attachUplink(), Services reconciled into the maps from the
// model (desiredState with the node's address, Reconciler); then real TCP
// from outside to a NodePort at the node's address and to an external IP.
//
//   outside 192.0.2.100/24 ── eth0 ═══ uplink ── node 192.0.2.1/24 ── pods 10.244.0.0/24
//   (route 198.51.100.0/24 via 192.0.2.1)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { ct4Key, ctEntry,
  type CtEntry, CT_FLAGS, LB_METRICS, metricKey, metricValue, type LbMetric } from '../../engine/dataplane/layout.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { fromUplinkPin, uplinkLinkPin } from '../../engine/dataplane/paths.js';
import { attachUplink, DEFAULT_SNAT_PORTS, detachUplink, readNodeConfig } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import { Netns } from '../../engine/netns/netns.js';
import { Prober } from '../../engine/probe/probe.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { isRoot, makeNetns, run } from '../support/netns.js';
import { endpointOf, programServices } from './uplink-world.js';

const NODE_IP = '192.0.2.1';
const OUTSIDE_IP = '192.0.2.100';
const EXTERNAL_IP = '198.51.100.10';
const LOCAL_EXTERNAL_IP = '198.51.100.11';
/** BPF_LINK_TYPE_TCX in the kernel's enum bpf_link_type (Debian's bpftool 7.1 prints only the number). */
const LINK_TYPE_TCX = 11;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Pod {
  netns: Netns;
  ip: string;
}

interface World {
  dp: Dataplane;
  node: Handle;
  outside: Netns;
  pods: Pod[];
  prober: Prober;
}

/**
 * Waits until no tcx link runs the pinned program. Unpinning drops the last
 * reference to a link, but the kernel detaches it from a workqueue
 * (bpf_link_put_deferred), a moment later: a probe sent at once can still
 * be translated.
 */
async function untilNoTcxLinkRuns(progPin: string, timeoutMs = 2000): Promise<void> {
  const prog = JSON.parse(run('bpftool', ['-j', 'prog', 'show', 'pinned', progPin])) as { id: number };
  for (const deadline = performance.now() + timeoutMs; ; ) {
    const links = JSON.parse(run('bpftool', ['-j', 'link', 'show'])) as Array<{ type: number | string; prog_id: number }>;
    if (!links.some((l) => (l.type === LINK_TYPE_TCX || l.type === 'tcx') && l.prog_id === prog.id)) return;
    if (performance.now() > deadline) throw new Error(`a tcx link still runs ${progPin} ${timeoutMs} ms after detach`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The node, the outside, two pods added through CNI ADD, the dataplane on the uplink. */
async function world(): Promise<World> {
  const pinRoot = makePinDir('ferry-nodeport');
  cleanups.push(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  cleanups.push(() => dp.close());
  const state = mkdtempSync(join(tmpdir(), 'ferry-nodeport-'));
  cleanups.push(() => rmSync(state, { recursive: true, force: true }));

  const nodeName = makeNetns('fnp-node');
  const outsideName = makeNetns('fnp-out');
  // The uplink and the outside, made with iproute2 (the oracle), not by ferry.
  run('ip', ['-n', nodeName, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outsideName]);
  run('ip', ['-n', nodeName, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'uplink']);
  run('ip', ['-n', nodeName, 'link', 'set', 'uplink', 'up']);
  run('ip', ['-n', outsideName, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
  run('ip', ['-n', outsideName, 'link', 'set', 'eth0', 'up']);
  run('ip', ['-n', outsideName, 'link', 'set', 'lo', 'up']);
  run('ip', ['-n', outsideName, 'route', 'add', '198.51.100.0/24', 'via', NODE_IP]);

  const nodeNetns = Netns.open(nodeName);
  cleanups.push(() => nodeNetns.close());
  const outside = Netns.open(outsideName);
  cleanups.push(() => outside.close());
  const node = await Handle.open(nodeNetns);
  cleanups.push(() => node.close());

  const handlers = createHandlers({ nodeNetns });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'nodeport-e2e',
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }]] },
  });
  const pods: Pod[] = [];
  for (const label of ['be1', 'be2']) {
    const netns = Netns.open(makeNetns(`fnp-${label}`));
    cleanups.push(() => netns.close());
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `nodeport-${label}`, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: conf }, handlers);
    expect(out.exitCode, out.stdout).toBe(0);
    const result = JSON.parse(out.stdout) as { ips: Array<{ address: string }> };
    pods.push({ netns, ip: result.ips[0]!.address.split('/')[0]! });
  }

  const uplink = await attachUplink(dp, node, 'uplink');
  cleanups.push(() => detachUplink(pinRoot, 'uplink'));
  expect(uplink).toMatchObject({ mode: 'tcx', config: { snatAddress: NODE_IP, snatPortMin: DEFAULT_SNAT_PORTS.min, snatPortMax: DEFAULT_SNAT_PORTS.max } });
  expect(readNodeConfig(dp.maps.nodeConfig)).toEqual(uplink.config);
  // The pinned tcx link runs the pinned from_uplink (bpftool as the oracle).
  const link = JSON.parse(run('bpftool', ['-j', 'link', 'show', 'pinned', uplinkLinkPin(pinRoot, 'uplink')])) as { type: number | string; prog_id: number };
  const prog = JSON.parse(run('bpftool', ['-j', 'prog', 'show', 'pinned', fromUplinkPin(pinRoot)])) as { id: number; name: string };
  expect(link.type === LINK_TYPE_TCX || link.type === 'tcx').toBe(true);
  expect(link.prog_id).toBe(prog.id);
  expect(prog.name).toBe('from_uplink');

  const prober = new Prober();
  cleanups.push(() => prober.close());
  for (const pod of pods) await prober.serveTcp(pod.netns, pod.ip, 8080);
  return { dp, node, outside, pods, prober };
}

/** The client address:port each backend saw, by asking from outside `count` times. */
async function exchanges(w: World, host: string, port: number, count: number): Promise<string[]> {
  const peers: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await w.prober.tcpExchange(w.outside, host, port, `hello ${i}`);
    expect(r.reply).toMatch(new RegExp(`^pong hello ${i} \\(you are [0-9.]+:\\d+\\)$`));
    peers.push(/\(you are (.+)\)$/.exec(r.reply)![1]!);
  }
  return peers;
}

/** Backend ids of the forward conntrack entries for flows to host:port. */
/** The forward conntrack entries of flows to host:port. */
function flowsTo(dp: Dataplane, host: string, port: number): CtEntry[] {
  const out: CtEntry[] = [];
  for (const [k, v] of dp.maps.conntrack.entries()) {
    const key = ct4Key.decode(k);
    if (key.dir === 'forward' && key.daddr === host && key.dport === port) out.push(ctEntry.decode(v));
  }
  return out;
}

function backendsUsed(dp: Dataplane, host: string, port: number): Set<number> {
  return new Set(flowsTo(dp, host, port).map((e) => e.backendId));
}

function counters(dp: Dataplane): Record<LbMetric, bigint> {
  const out = {} as Record<LbMetric, bigint>;
  LB_METRICS.forEach((name, index) => {
    const value = dp.maps.metrics.lookup(metricKey.encode(index))!;
    out[name] = dp.maps.metrics.perCpuValues(value).reduce((sum, slot) => sum + metricValue.decode(slot), 0n);
  });
  return out;
}

describe.skipIf(!isRoot)('Services from outside the node through from_uplink (needs root)', () => {
  it('NodePort and external IP with externalTrafficPolicy Cluster: both backends answer, seeing the node as the client', async () => {
    const w = await world();
    const reconciler = programServices(w.dp, [
      {
        service: {
          namespace: 'default',
          name: 'web',
          type: 'NodePort',
          clusterIPs: ['10.96.0.10'],
          externalIPs: [EXTERNAL_IP],
          ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }],
        },
        endpoints: w.pods.map((p) => endpointOf(p, 8080)),
      },
    ]);
    // The NodePort is a frontend at the node's address, with its own reverse NAT.
    expect(reconciler.revNatIndex(`${NODE_IP}:30080/tcp`)).toBeGreaterThan(0);

    for (const [host, port] of [[NODE_IP, 30080], [EXTERNAL_IP, 80]] as const) {
      const peers = await exchanges(w, host, port, 30);
      for (const peer of peers) {
        const [address, sport] = peer.split(':');
        expect(address).toBe(NODE_IP); // SNAT: the backend sees the node
        expect(Number(sport)).toBeGreaterThanOrEqual(DEFAULT_SNAT_PORTS.min);
      }
      // SNAT ports are claimed per backend: two flows to one backend never share one
      // (flows to different backends may, their reply tuples differ).
      const claims = flowsTo(w.dp, host, port).map((e) => `${e.backendId}/${e.natPort}`);
      expect(claims).toHaveLength(peers.length);
      expect(new Set(claims).size).toBe(claims.length);
      // Both backends took flows (30 flows, each backend 1/2: all on one has p = 2^-29).
      expect(backendsUsed(w.dp, host, port).size).toBe(2);
    }
    // Every flow's entries say SNAT, and its replies went out past the stack.
    for (const [k, v] of w.dp.maps.conntrack.entries()) {
      if (ct4Key.decode(k).dir === 'forward') expect(ctEntry.decode(v)).toMatchObject({ flags: CT_FLAGS.snat | CT_FLAGS.redirect, natAddress: NODE_IP });
    }
    const c = counters(w.dp);
    expect(c.fib_redirect).toBeGreaterThan(0n);
    expect(c.fib_miss).toBe(0n);
  });

  it('externalTrafficPolicy Local: only this node’s backend answers, and it sees the outside client’s address', async () => {
    const w = await world();
    const [local, remote] = w.pods;
    const reconciler = programServices(w.dp, [
      {
        service: {
          namespace: 'default',
          name: 'local',
          type: 'NodePort',
          clusterIPs: ['10.96.0.11'],
          externalIPs: [LOCAL_EXTERNAL_IP],
          externalTrafficPolicy: 'Local',
          ports: [{ port: 81, targetPort: 8080, nodePort: 30081 }],
        },
        // The second backend pod is, as far as the Service knows, on another node.
        endpoints: [endpointOf(local!, 8080), endpointOf(remote!, 8080, 'TCP', 'node-b')],
      },
    ]);
    for (const [host, port] of [[NODE_IP, 30081], [LOCAL_EXTERNAL_IP, 81]] as const) {
      const peers = await exchanges(w, host, port, 8);
      for (const peer of peers) expect(peer.split(':')[0]).toBe(OUTSIDE_IP);
      expect([...backendsUsed(w.dp, host, port)]).toEqual([reconciler.backendId(`${local!.ip}:8080/tcp`)]);
    }
    for (const [k, v] of w.dp.maps.conntrack.entries()) {
      if (ct4Key.decode(k).dir === 'forward') expect(ctEntry.decode(v)).toMatchObject({ flags: CT_FLAGS.redirect, natAddress: '0.0.0.0' });
    }
  });

  it('a Service without endpoints is refused at once (ICMP port unreachable); a Local one without a local endpoint drops', async () => {
    const w = await world();
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'empty', type: 'NodePort', clusterIPs: ['10.96.0.12'], ports: [{ port: 82, targetPort: 8080, nodePort: 30082 }] },
        endpoints: [],
      },
      {
        service: {
          namespace: 'default',
          name: 'elsewhere',
          type: 'NodePort',
          clusterIPs: ['10.96.0.13'],
          externalTrafficPolicy: 'Local',
          ports: [{ port: 83, targetPort: 8080, nodePort: 30083 }],
        },
        endpoints: w.pods.map((p) => endpointOf(p, 8080, 'TCP', 'node-b')),
      },
    ]);
    // ECONNREFUSED is the immediate reject (a dropped SYN would end in ETIMEDOUT); how fast is a bench's question.
    await expect(w.prober.tcpExchange(w.outside, NODE_IP, 30082, 'anyone?', 2000)).rejects.toThrow(/ECONNREFUSED|refused/i);
    // kube-proxy writes DROP for "has no local endpoints": the client times out.
    await expect(w.prober.tcpExchange(w.outside, NODE_IP, 30083, 'anyone?', 700)).rejects.toThrow(/ETIMEDOUT|no answer/i);
    expect(counters(w.dp).reject_no_backend).toBeGreaterThanOrEqual(1n);
    expect(counters(w.dp).drop_no_backend).toBeGreaterThanOrEqual(1n);
  });

  it('detachUplink removes the pinned link; the node then answers for itself (nothing listens: refused)', async () => {
    const w = await world();
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'web', type: 'NodePort', clusterIPs: ['10.96.0.10'], ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] },
        endpoints: w.pods.map((p) => endpointOf(p, 8080)),
      },
    ]);
    await exchanges(w, NODE_IP, 30080, 1);
    expect(detachUplink(w.dp.pinRoot, 'uplink')).toBe(true);
    expect(detachUplink(w.dp.pinRoot, 'uplink')).toBe(false);
    expect(existsSync(uplinkLinkPin(w.dp.pinRoot, 'uplink'))).toBe(false);
    await untilNoTcxLinkRuns(fromUplinkPin(w.dp.pinRoot));
    await expect(w.prober.tcpExchange(w.outside, NODE_IP, 30080, 'still there?', 3000)).rejects.toThrow(/ECONNREFUSED|refused/i);
  });
});
