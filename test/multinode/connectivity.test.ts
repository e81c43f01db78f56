// Pods across three nodes (test/multinode/cluster.ts: node namespaces on an
// underlay bridge, a real `ferry daemon --node-network MODE` per node, pods
// added through cnitool and the CNI frontend), in both modes:
//   - each node's kernel state, read with ip/bridge, is what the mode
//     prescribes (routes, and for vxlan the device, neighbours, FDB);
//   - every pod reaches every other pod, across nodes and on the same node,
//     over ICMP and TCP (the server sees the client's own address);
//   - a capture on the underlay shows what carries the traffic: in direct
//     mode the pods' packets themselves, in vxlan mode only UDP to the VXLAN
//     port between node addresses, VNI 1, with the pods' packets inside;
//   - a 1400-byte ping with DF set crosses unfragmented (nothing on the
//     underlay is a fragment); in vxlan mode the pods' MTU is the device's,
//     1450, so a packet one byte over it cannot even leave the pod.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Prober } from '../../engine/probe/probe.js';
import { prepareClients } from '../support/ferry.js';
import { ipJson, isRoot } from '../support/netns.js';
import { newProber } from '../support/probing.js';
import { captureOnUnderlay, expectedState, nodeState, startCluster, VXLAN_DEVICE, VXLAN_PORT, type TestNode, type TestPod } from './cluster.js';

const PORT = 8080;

async function expectPing(p: Prober, from: TestPod, to: TestPod, payloadBytes?: number): Promise<void> {
  const replies = await p.ping(from.ns, to.ip, { count: 2, intervalMs: 50, timeoutMs: 3000, ...(payloadBytes !== undefined && { payloadBytes, dontFragment: true }) });
  expect(replies.some((r) => r.rttMs !== undefined), `ping ${to.ip} (${to.node.name}) from ${from.ip} (${from.node.name})`).toBe(true);
}

async function expectTcp(p: Prober, from: TestPod, to: TestPod): Promise<void> {
  const r = await p.tcpExchange(from.ns, to.ip, PORT, 'hi', 5000);
  expect(r.reply, `tcp ${to.ip}:${PORT} (${to.node.name}) from ${from.ip} (${from.node.name})`).toMatch(new RegExp(`^pong hi \\(you are ${from.ip.replace(/\./g, '\\.')}:\\d+\\)$`));
}

function linkOf(ns: string, dev: string): any {
  return ipJson<any[]>(ns, ['-d', '-s', 'link', 'show', 'dev', dev])[0];
}

describe.skipIf(!isRoot)('pods across three nodes (needs root: namespaces, BPF, raw sockets)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['direct', 'vxlan'] as const) {
    it(`${mode}: kernel state, all-pairs ICMP and TCP, what the underlay carries, 1400-byte DF pings`, { timeout: 180_000 }, async () => {
      const c = await startCluster(mode);
      const [n1, n2] = c.nodes as [TestNode, TestNode];

      for (const node of c.nodes) expect(nodeState(node), node.name).toEqual(expectedState(mode, node, c.nodes));
      if (mode === 'vxlan') {
        for (const node of c.nodes) {
          const dev = linkOf(node.f.node, VXLAN_DEVICE);
          expect(dev.mtu, `${VXLAN_DEVICE} on ${node.name}: uplink 1500 - 50`).toBe(1450);
          expect(dev.linkinfo.info_data).toMatchObject({ id: 1, port: VXLAN_PORT, local: node.ip, learning: false, link: 'eth0' });
        }
      } else {
        for (const node of c.nodes) expect(ipJson<any[]>(node.f.node, ['link', 'show']).some((l) => l.ifname === VXLAN_DEVICE), `no vxlan device on ${node.name}`).toBe(false);
      }

      // Two pods on node-1 (same-node pairs too), one on each other node.
      const pods = [c.addPod(n1), c.addPod(n1), ...c.nodes.slice(1).map((n) => c.addPod(n))];
      for (const pod of pods) {
        expect(linkOf(pod.name, 'eth0').mtu, `eth0 of a pod on ${pod.node.name}`).toBe(mode === 'vxlan' ? 1450 : 1500);
      }
      const prober = newProber();
      for (const pod of pods) await prober.serveTcp(pod.ns, pod.ip, PORT);
      for (const a of pods) {
        for (const b of pods) {
          if (a === b) continue;
          await expectPing(prober, a, b);
          await expectTcp(prober, a, b);
        }
      }

      // What crosses node-1's underlay port while pod A (node-1) pings pod C (node-2) with 1400 bytes, DF set.
      const [a, , cPod] = pods as [TestPod, TestPod, TestPod];
      expect(cPod.node).toBe(n2);
      const txBefore = mode === 'vxlan' ? linkOf(n1.f.node, VXLAN_DEVICE).stats64.tx.packets : 0;
      const frames = await captureOnUnderlay(c, n1.port, async () => {
        await expectPing(prober, a, cPod, 1400);
        await expectTcp(prober, a, cPod);
      });
      expect(frames.filter((f) => f.mf || f.fragOffset !== 0), 'fragments on the underlay').toEqual([]);
      const podPackets = (f: { src: string; dst: string } | null | undefined) => f != null && f.src === a.ip && f.dst === cPod.ip;
      if (mode === 'direct') {
        const plain = frames.filter(podPackets);
        expect(plain.some((f) => f.proto === 1 && f.len === 1428 && f.df), 'the 1400-byte echo request, DF set, as it is').toBe(true);
        expect(plain.some((f) => f.proto === 6 && f.dport === PORT), 'the TCP connection, as it is').toBe(true);
        expect(frames.filter((f) => f.vxlan !== undefined), 'no VXLAN on the underlay in direct mode').toEqual([]);
      } else {
        expect(frames.filter(podPackets), "pods' packets never cross the underlay bare").toEqual([]);
        const tunnelled = frames.filter((f) => f.vxlan !== undefined && podPackets(f.vxlan.inner));
        expect(tunnelled.length).toBeGreaterThan(0);
        for (const f of tunnelled) {
          expect(f, 'outer header: node-1 → node-2, UDP to the VXLAN port, VNI 1').toMatchObject({ src: n1.ip, dst: n2.ip, proto: 17, dport: VXLAN_PORT, vxlan: { vni: 1 } });
        }
        expect(tunnelled.some((f) => f.vxlan!.inner!.proto === 1 && f.vxlan!.inner!.len === 1428 && f.vxlan!.inner!.df && f.len === 1478), 'the 1400-byte echo request inside a 1478-byte outer packet').toBe(true);
        expect(tunnelled.some((f) => f.vxlan!.inner!.proto === 6 && f.vxlan!.inner!.dport === PORT), 'the TCP connection, tunnelled').toBe(true);
        expect(linkOf(n1.f.node, VXLAN_DEVICE).stats64.tx.packets - txBefore, `${VXLAN_DEVICE} tx packets on node-1`).toBeGreaterThanOrEqual(tunnelled.filter((f) => f.src === n1.ip).length);
        // 1423 + 8 (ICMP) + 20 (IPv4) = 1451 > the pod's 1450: refused in the pod, not fragmented on the way.
        await expect(prober.ping(a.ns, cPod.ip, { count: 1, payloadBytes: 1423, dontFragment: true })).rejects.toThrow(/too long|EMSGSIZE/i);
      }
    });
  }
});
