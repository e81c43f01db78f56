// Nodes leaving and joining, and daemons restarting, on three simulated
// nodes (cluster.ts): each node's routes — and in vxlan mode neighbours and
// FDB entries — follow the Node objects in the manifest folder, nothing of
// a removed node stays behind, and a restarted daemon adopts what the
// kernel holds, writes nothing when it is right, and removes what it does
// not want any more (a node that left while it was down, entries someone
// else added with ferry's route protocol or on ferry's device). The time
// from the manifest edit to the kernel state is printed, not asserted (the
// 1 s target belongs to a bench, not to a test).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Prober } from '../../engine/probe/probe.js';
import { prepareClients } from '../support/ferry.js';
import { isRoot, run } from '../support/netns.js';
import { newProber } from '../support/probing.js';
import { expectedState, nodeState, PROTO, startCluster, until, VXLAN_DEVICE, type TestCluster, type TestNode, type TestPod } from './cluster.js';

async function reaches(p: Prober, from: TestPod, to: TestPod): Promise<boolean> {
  const replies = await p.ping(from.ns, to.ip, { count: 2, intervalMs: 50, timeoutMs: 1500 }).catch(() => []);
  return replies.some((r) => r.rttMs !== undefined);
}

/** Waits until every node in `nodes` holds what `peers` call for; returns how long that took. */
async function converged(c: TestCluster, nodes: TestNode[], peers: TestNode[]): Promise<number> {
  const same = (n: TestNode) => JSON.stringify(nodeState(n)) === JSON.stringify(expectedState(c.mode, n, peers));
  const ms = await until(`${nodes.map((n) => n.name).join(', ')} to match nodes ${peers.map((p) => p.name).join(', ')}`, () => nodes.every(same));
  for (const n of nodes) expect(nodeState(n), n.name).toEqual(expectedState(c.mode, n, peers));
  return ms;
}

describe.skipIf(!isRoot)('nodes leaving, joining, daemons restarting (needs root)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['direct', 'vxlan'] as const) {
    it(`${mode}: a removed node's routes${mode === 'vxlan' ? ', neighbours and FDB entries' : ''} go from every node; it comes back when re-added`, { timeout: 120_000 }, async () => {
      const c = await startCluster(mode);
      const [n1, n2] = c.nodes as [TestNode, TestNode];
      const [p1, p2, p3] = c.nodes.map((n) => c.addPod(n)) as [TestPod, TestPod, TestPod];
      const prober = newProber();
      expect(await reaches(prober, p1, p3)).toBe(true);

      c.writeManifests([1, 2]);
      const removedMs = await converged(c, [n1, n2], [n1, n2]);
      console.log(`${mode}: node-3 removed from the manifests → gone from node-1 and node-2 in ${removedMs} ms`);
      if (mode === 'vxlan') for (const n of [n1, n2]) expect(nodeState(n)).toMatchObject({ neighbors: [expect.any(String)], fdb: [expect.any(String)] });
      expect(await reaches(prober, p1, p3), 'pod on node-1 → pod on the removed node-3').toBe(false);
      expect(await reaches(prober, p1, p2), 'pod on node-1 → pod on node-2').toBe(true);

      c.writeManifests([1, 2, 3]);
      const addedMs = await converged(c, c.nodes, c.nodes);
      console.log(`${mode}: node-3 back in the manifests → routed again in ${addedMs} ms`);
      expect(await reaches(prober, p1, p3)).toBe(true);
      expect(await reaches(prober, p3, p2)).toBe(true);
    });
  }

  it('vxlan: a restarted daemon adopts the kernel state, removes what went stale while it was down, and pods keep talking meanwhile', { timeout: 120_000 }, async () => {
    const c = await startCluster('vxlan');
    const [n1, n2] = c.nodes as [TestNode, TestNode];
    const [p1, p2] = [c.addPod(n1), c.addPod(n2)];
    const prober = newProber();

    await n1.daemon.kill('SIGKILL');
    expect(nodeState(n1), 'the kernel state outlives the daemon').toEqual(expectedState('vxlan', n1, c.nodes));
    expect(await reaches(prober, p1, p2), 'pods talk with node-1 daemon-less').toBe(true);

    // While it is down: node-3 leaves, and someone adds entries that look like ferry's.
    c.writeManifests([1, 2]);
    const ip = (...args: string[]) => run('ip', ['-n', n1.f.node, ...args]);
    ip('route', 'add', '10.244.9.0/24', 'via', '192.168.100.19', 'proto', PROTO);
    ip('neigh', 'add', '10.244.9.0', 'lladdr', '66:79:c0:a8:64:13', 'dev', VXLAN_DEVICE, 'nud', 'permanent');
    run('bridge', ['-n', n1.f.node, 'fdb', 'append', '66:79:c0:a8:64:13', 'dev', VXLAN_DEVICE, 'dst', '192.168.100.19', 'self', 'permanent']);
    const index = (): number => JSON.parse(ip('-j', 'link', 'show', 'dev', VXLAN_DEVICE))[0].ifindex;
    const before = index();

    const first = await c.startDaemon(n1);
    expect(first, 'the first sync after the restart').toMatchObject({
      device: 'adopted',
      routes: { added: 0, changed: 0, removed: 2 },
      neighbors: { added: 0, changed: 0, removed: 2 },
      fdb: { added: 0, changed: 0, removed: 2 },
      errors: 0,
    });
    expect(index(), 'the device is adopted, not recreated').toBe(before);
    await converged(c, [n1, n2], [n1, n2]);
    expect(await reaches(prober, p1, p2)).toBe(true);

    // A second restart with nothing to change writes nothing.
    await n1.daemon.kill('SIGKILL');
    expect(await c.startDaemon(n1)).toMatchObject({
      device: 'adopted',
      routes: { added: 0, changed: 0, removed: 0 },
      neighbors: { added: 0, changed: 0, removed: 0 },
      fdb: { added: 0, changed: 0, removed: 0 },
    });
  });
});
