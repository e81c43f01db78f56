// Pods that ferry attached can talk: three pods in one node, wired by
// cnitool + ferry (in-process), routed and bridge mode, IPv4 and IPv6.
// pod↔pod, node→pod and pod→node, ICMP (raw sockets) and TCP (a line
// server that echoes the client address, so no NAT hides in the path).
// The node has addresses of its own (192.0.2.1, 2001:db8::1), as its uplink
// would. After a pod's DEL, it is unreachable and the others still talk.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Netns } from '../../engine/netns/netns.js';
import type { Prober } from '../../engine/probe/probe.js';
import { newProber, openNetns } from '../support/probing.js';
import { isRoot } from '../support/netns.js';
import {
  addNodeAddresses,
  expectNothingLeft,
  ferryCnitool,
  ferryFixture,
  ferryPlugin,
  NODE_V4,
  NODE_V6,
  podNetns,
  prepareClients,
  writeConflist,
} from '../support/ferry.js';


interface Pod {
  name: string;
  ns: Netns;
  v4: string;
  v6: string;
}

const PORT = 8080;

/** At least one echo reply out of a few (the first may wait on neighbor discovery in bridge mode). */
async function expectPing(p: Prober, from: Netns, dst: string): Promise<void> {
  const replies = await p.ping(from, dst, { count: 2, intervalMs: 50, timeoutMs: 2000 });
  expect(
    replies.some((r) => r.rttMs !== undefined),
    `ping ${dst} from ${from.name}`,
  ).toBe(true);
}

async function expectNoPing(p: Prober, from: Netns, dst: string): Promise<void> {
  const replies = await p.ping(from, dst, { count: 2, intervalMs: 100, timeoutMs: 500 }).catch(() => []);
  expect(
    replies.some((r) => r.rttMs !== undefined),
    `ping ${dst} from ${from.name} after DEL`,
  ).toBe(false);
}

/** A TCP line exchange whose server saw exactly `srcIp` as the client. */
async function expectTcp(p: Prober, from: Netns, dst: string, port: number, srcIp: string): Promise<void> {
  const r = await p.tcpExchange(from, dst, port, `hi from ${from.name}`, 5000);
  expect(r.reply, `tcp ${dst}:${port} from ${from.name}`).toBe(`pong hi from ${from.name} (you are ${srcIp}:${r.peer.slice(r.peer.lastIndexOf(':') + 1)})`);
  expect(r.peer.slice(0, r.peer.lastIndexOf(':'))).toBe(srcIp);
}

describe.skipIf(!isRoot)('connectivity between pods ferry attached (needs root: namespaces, raw sockets)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['routed', 'bridge'] as const) {
    it(`${mode}: pod↔pod, node→pod, pod→node over ICMP and TCP, IPv4 and IPv6`, async () => {
      const f = ferryFixture(mode === 'routed' ? 'fyr' : 'fyb');
      addNodeAddresses(f);
      writeConflist(f, '1.0.0', [ferryPlugin(f, { mode })]);
      const pods: Pod[] = [];
      for (let i = 0; i < 3; i++) {
        const name = podNetns(`${mode === 'routed' ? 'fyr' : 'fyb'}-pod`);
        const add = ferryCnitool(f, 'add', name);
        expect(add.status, add.stderr).toBe(0);
        const [v4, v6] = add.result.ips.map((c: any) => (c.address as string).split('/')[0]!);
        pods.push({ name, ns: openNetns(name), v4: v4!, v6: v6! });
      }
      const node = openNetns(f.node);
      const prober = newProber();
      // Source addresses the node uses: its own in routed mode (the host veths
      // carry none), the bridge's gateway address in bridge mode.
      const nodeSrc4 = mode === 'routed' ? NODE_V4 : `${f.v4}.1`;
      const nodeSrc6 = mode === 'routed' ? NODE_V6 : `${f.v6}1`;

      for (const pod of pods) {
        await prober.serveTcp(pod.ns, pod.v4, PORT);
        await prober.serveTcp(pod.ns, pod.v6, PORT);
      }
      await prober.serveTcp(node, NODE_V4, PORT);
      await prober.serveTcp(node, NODE_V6, PORT);

      // pod ↔ pod, every ordered pair.
      for (const a of pods) {
        for (const b of pods) {
          if (a === b) continue;
          await expectPing(prober, a.ns, b.v4);
          await expectPing(prober, a.ns, b.v6);
          await expectTcp(prober, a.ns, b.v4, PORT, a.v4);
          await expectTcp(prober, a.ns, b.v6, PORT, a.v6);
        }
      }
      // node → pod and pod → node.
      for (const pod of pods) {
        await expectPing(prober, node, pod.v4);
        await expectPing(prober, node, pod.v6);
        await expectTcp(prober, node, pod.v4, PORT, nodeSrc4);
        await expectTcp(prober, node, pod.v6, PORT, nodeSrc6);
        await expectPing(prober, pod.ns, NODE_V4);
        await expectPing(prober, pod.ns, NODE_V6);
        await expectTcp(prober, pod.ns, NODE_V4, PORT, pod.v4);
        await expectTcp(prober, pod.ns, NODE_V6, PORT, pod.v6);
      }

      // DEL one pod: it is gone from the network, the others still talk.
      const [p0, p1, p2] = pods as [Pod, Pod, Pod];
      const del = ferryCnitool(f, 'del', p2.name);
      expect(del.status, del.stderr).toBe(0);
      await expectNoPing(prober, p0.ns, p2.v4);
      await expectNoPing(prober, p0.ns, p2.v6);
      await expectPing(prober, p0.ns, p1.v4);
      await expectTcp(prober, p1.ns, p0.v6, PORT, p1.v6);

      for (const pod of [p0, p1]) expect(ferryCnitool(f, 'del', pod.name).status).toBe(0);
      expectNothingLeft(f, 'DEL of every pod');
    }, 60_000);
  }
});
