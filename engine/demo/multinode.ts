// `ferry demo --nodes N`: N nodes (network namespaces) on an underlay
// bridge, one pod per node attached by ferry's CNI plugin, and the node
// network that lets pods on different nodes talk, applied by ferry's engine
// from the list of Nodes: first by direct routes (each remote pod CIDR via
// that node's address), then — the same nodes, re-reconciled — by a VXLAN
// overlay (a vxlan device per node, remote VTEPs in routes, neighbours and
// FDB entries; pods re-added with the device's MTU). Every pod reaches
// every other one over ICMP and TCP in both modes; finally the last node is
// taken out of the others' view and its routes, neighbours and FDB entries
// disappear. Everything is removed at the end.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import type { Handle } from '../handle.js';
import type { NodeNetworkMode } from '../nodes/model.js';
import { DEFAULT_VXLAN } from '../nodes/model.js';
import { ROUTE_PROTOCOL, type NodeNetworkReport } from '../nodes/reconcile.js';
import { Prober } from '../probe/probe.js';
import { SimCluster, type SimPod } from './cluster.js';

const TCP_PORT = 8080;

export async function runMultiNodeDemo(count: number, log: (line: string) => void = console.log): Promise<boolean> {
  if (!Number.isInteger(count) || count < 2 || count > 8) {
    log(`ferry demo --nodes: 2 to 8 nodes, not ${count}`);
    return false;
  }
  const run = randomBytes(2).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'ferry-demo-nodes-'));
  let cluster: SimCluster | undefined;
  const prober = new Prober();
  let ok = true;
  try {
    log(`ferry demo — ${count} nodes on an underlay bridge, a pod on each, pod↔pod across nodes by direct routes and by a VXLAN overlay (run ${run})\n`);
    cluster = await SimCluster.create(`ferry-mn-${run}`, count, dir);
    const underlay = new Table({ head: ['node', 'netns', 'address on eth0 (underlay br0)', 'pod CIDR'] });
    for (const n of cluster.nodes) underlay.push([n.name, n.netns.name, n.address, n.podCidr]);
    log(underlay.toString());

    for (const mode of ['direct', 'vxlan'] as const) {
      log(`\n== ${mode === 'direct' ? 'direct routes' : 'VXLAN overlay'} ==`);
      const reports = await cluster.applyNodeNetwork(mode);
      log(summarizeApply(cluster, reports));
      log(await describeNode(cluster.nodes[0]!.handle, mode));
      const pods: SimPod[] = [];
      for (const node of cluster.nodes) pods.push(await cluster.addPod(node, `pod-${node.name.slice(5)}-${mode}`, mode));
      log(`CNI ADD: ${pods.map((p) => `${p.label} ${p.ip} on ${p.node.name} (eth0 mtu ${p.mtu})`).join(', ')}`);
      ok = (await allPairs(prober, pods, log)) && ok;
      if (mode === 'vxlan') ok = (await nodeLeaves(cluster, prober, pods, log)) && ok;
      await prober.close(); // its workers live in the pods' namespaces, deleted next
      for (const pod of pods) await cluster.delPod(pod, mode);
      log(`CNI DEL: ${pods.map((p) => p.label).join(', ')}`);
    }
  } catch (e) {
    ok = false;
    log(`\nFAILED: ${(e as Error).message}`);
  } finally {
    await prober.close();
    const problems = cluster?.destroy() ?? [];
    for (const p of problems) log(`cleanup: ${p}`);
    ok &&= problems.length === 0;
    rmSync(dir, { recursive: true, force: true });
    log(`\ncleaned up: the underlay, node and pod namespaces, the demo's IPAM state`);
  }
  log(ok ? '\ndemo OK' : '\ndemo FAILED');
  return ok;
}

function summarizeApply(cluster: SimCluster, reports: NodeNetworkReport[]): string {
  return reports
    .map((r, i) => {
      const c = (what: string, n: { added: number; changed: number; removed: number }) => `${what} +${n.added} ~${n.changed} -${n.removed}`;
      const device = r.device ? `${r.device.link.name} ${r.device.action} (mtu ${r.device.link.mtu}), ` : r.deviceRemoved ? 'vxlan device removed, ' : '';
      return `${cluster.nodes[i]!.name}: ${device}${c('routes', r.routes)}${r.device ? `, ${c('neighbours', r.neighbors)}, ${c('fdb', r.fdb)}` : ''}`;
    })
    .join('\n');
}

/** What the first node's namespace holds for the node network, read back through the engine. */
async function describeNode(h: Handle, mode: NodeNetworkMode): Promise<string> {
  const lines = [`${h.netns.name}:`];
  for (const r of await h.route.list({ family: 4 })) {
    if (r.protocol !== ROUTE_PROTOCOL) continue;
    const via = r.gw ? ` via ${r.gw}` : '';
    lines.push(`  route ${r.type === 'blackhole' ? 'blackhole ' : ''}${r.dst}${via}${r.devName ? ` dev ${r.devName}` : ''}${r.onlink ? ' onlink' : ''} proto ${ROUTE_PROTOCOL}`);
  }
  if (mode === 'vxlan') {
    const dev = DEFAULT_VXLAN.device;
    for (const n of await h.neigh.list({ dev, family: 4 })) if (n.state === 'permanent') lines.push(`  neigh ${n.ip} lladdr ${n.mac} dev ${dev} PERMANENT`);
    for (const f of await h.fdb.list({ dev })) if (f.dst) lines.push(`  fdb ${f.mac} dev ${dev} dst ${f.dst} self ${f.state}`);
  }
  return lines.join('\n');
}

async function allPairs(prober: Prober, pods: SimPod[], log: (line: string) => void): Promise<boolean> {
  let ok = true;
  for (const pod of pods) await prober.serveTcp(pod.netns, pod.ip, TCP_PORT);
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      const replies = await prober.ping(a.netns, b.ip, { count: 3, intervalMs: 50 });
      const rtts = replies.flatMap((r) => (r.rttMs === undefined ? [] : [r.rttMs]));
      const icmp = rtts.length === replies.length;
      let tcp: string;
      try {
        const r = await prober.tcpExchange(a.netns, b.ip, TCP_PORT, `hello from ${a.label}`);
        tcp = `TCP connected in ${r.connectMs.toFixed(2)} ms`;
      } catch (e) {
        tcp = `TCP FAILED (${(e as Error).message})`;
        ok = false;
      }
      ok &&= icmp;
      const avg = rtts.length ? ` avg ${(rtts.reduce((s, x) => s + x, 0) / rtts.length).toFixed(3)} ms` : '';
      log(`${a.label} (${a.node.name}) → ${b.label} ${b.ip} (${b.node.name}): ICMP ${rtts.length}/${replies.length}${avg}${icmp ? '' : ' ← FAILED'}, ${tcp}`);
    }
  }
  return ok;
}

/** The last node leaves the others' view: its routes, neighbours and FDB entries go, and its pod is unreachable. */
async function nodeLeaves(cluster: SimCluster, prober: Prober, pods: SimPod[], log: (line: string) => void): Promise<boolean> {
  const gone = cluster.nodes[cluster.nodes.length - 1]!;
  log(`\n== ${gone.name} leaves the cluster ==`);
  const reports = await cluster.applyNodeNetwork('vxlan', cluster.clusterNodes().filter((n) => n.name !== gone.name));
  log(summarizeApply(cluster, reports));
  log(await describeNode(cluster.nodes[0]!.handle, 'vxlan'));
  const from = pods[0]!;
  const to = pods.find((p) => p.node === gone)!;
  const replies = await prober.ping(from.netns, to.ip, { count: 2, intervalMs: 50, timeoutMs: 500 });
  const unreachable = replies.every((r) => r.rttMs === undefined);
  log(`${from.label} → ${to.label} ${to.ip}: ${unreachable ? 'no route any more, as expected' : 'still answers ← FAILED'}`);
  return unreachable;
}
