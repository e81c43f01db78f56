// How long the daemon's node network takes to follow a Node leaving and
// joining: startNodeNetwork() (plugin/daemon/node-network.ts, exactly what
// `ferry daemon --node-network` runs) bound to node-1's namespace, its Node
// objects in a manifest file; the file is rewritten without node-2, then
// with it again, and the kernel is polled (every 5 ms, through the engine)
// until node-2's pod CIDR route is gone, then back. The target: within 1 s.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import type { SimCluster } from '../../engine/demo/cluster.js';
import { DEFAULT_VXLAN, type NodeNetworkMode } from '../../engine/nodes/model.js';
import { ROUTE_PROTOCOL } from '../../engine/nodes/reconcile.js';
import { startNodeNetwork } from '../../plugin/daemon/node-network.js';

export interface MembershipTimes {
  mode: NodeNetworkMode;
  /** Manifest rename → node-2's route gone from node-1. */
  removedMs: number;
  /** Manifest rename → the route back. */
  addedMs: number;
}

export async function membershipTimes(cluster: SimCluster, mode: NodeNetworkMode): Promise<MembershipTimes> {
  const [self, other] = cluster.nodes as [SimCluster['nodes'][0], SimCluster['nodes'][0]];
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-nodes-'));
  const file = join(dir, 'nodes.yaml');
  const write = (names: string[]) => {
    const docs = cluster
      .clusterNodes()
      .filter((n) => names.includes(n.name))
      .map((n) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name }, spec: { podCIDRs: n.podCIDRs }, status: { addresses: n.addresses.map((address) => ({ type: 'InternalIP', address })) } }));
    writeFileSync(`${file}.tmp`, docs.map((d) => stringify(d)).join('---\n'));
    renameSync(`${file}.tmp`, file);
  };
  const routed = async () => (await self.handle.route.list({ family: 4 })).some((r) => r.protocol === ROUTE_PROTOCOL && r.dst === other.podCidr);
  const timeUntil = async (want: boolean): Promise<number> => {
    const t0 = performance.now();
    while ((await routed()) !== want) {
      if (performance.now() - t0 > 10_000) throw new Error(`node-2's route on node-1 did not ${want ? 'come back' : 'go'} within 10 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return performance.now() - t0;
  };
  write(cluster.nodes.map((n) => n.name));
  const nn = await startNodeNetwork({
    settings: { mode, vxlan: { ...DEFAULT_VXLAN } },
    nodeName: self.name,
    source: file,
    netns: self.netns,
    log: pino({ level: 'silent' }),
  });
  try {
    if (!(await routed())) throw new Error(`the node network of ${self.name} did not route ${other.podCidr} after its first sync`);
    write(cluster.nodes.filter((n) => n !== other).map((n) => n.name));
    const removedMs = await timeUntil(false);
    write(cluster.nodes.map((n) => n.name));
    const addedMs = await timeUntil(true);
    return { mode, removedMs, addedMs };
  } finally {
    await nn.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
