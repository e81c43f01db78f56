// `ferry demo`: a node and three pods in throw-away network namespaces. The
// eBPF dataplane is loaded and pinned first; the pods are attached by
// ferry's CNI plugin (the same ADD kubelet runs, with ferry's IPAM, in routed
// mode, dual stack), which hooks the dataplane onto each pod's veth; pod-a
// probes pod-b with ICMP and TCP, then reaches a ClusterIP served by pod-b
// and pod-c through eBPF load balancing, programmed from manifests by the
// daemon's file source (service.ts); finally DEL detaches every pod and
// everything is removed. Later stages add NodePorts and more nodes.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { makePinDir, removePinDir } from '../bpf/index.js';
import { addressPort } from '../dataplane/layout.js';
import { loadDataplane, type Dataplane } from '../dataplane/loader.js';
import { Handle } from '../handle.js';
import { RTPROT_KERNEL } from '../netlink/constants.js';
import { Netns } from '../netns/netns.js';
import { Prober, type EchoResult } from '../probe/probe.js';
import { demoService } from './service.js';

interface Pod {
  label: string;
  netns: Netns;
  handle: Handle;
  ips: string[];
  hostVeth: string;
  mac: string;
}

const POD_LABELS = ['pod-a', 'pod-b', 'pod-c'];
const TCP_PORT = 8080;

/** The network config a node would have in /etc/cni/net.d (state kept in `dir`). */
function networkConfig(dir: string, pinRoot: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'ferry-demo',
    type: 'ferry',
    mode: 'routed',
    logFile: join(dir, 'cni.log'),
    dataDir: join(dir, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }], [{ subnet: 'fd00:10:244::/64' }]] },
  });
}

export async function runDemo(log: (line: string) => void = console.log): Promise<boolean> {
  const run = randomBytes(2).toString('hex');
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  const created: Netns[] = [];
  const handles: Handle[] = [];
  let prober: Prober | undefined;
  let pinRoot: string | undefined;
  let dataplane: Dataplane | undefined;
  let ok = true;
  const onSignal = () => log('\ninterrupted: finishing the current step, then cleaning up…');
  process.once('SIGINT', onSignal);
  try {
    log(`ferry demo — a node and three pods, attached by ferry's CNI plugin, a ClusterIP served by eBPF (run ${run})\n`);
    pinRoot = makePinDir('ferry-demo');
    dataplane = await loadDataplane(pinRoot);
    log(`eBPF dataplane loaded, maps and from_pod pinned under ${pinRoot}`);
    const nodeNs = await Netns.create(`ferry-demo-node-${run}`);
    created.push(nodeNs);
    const node = await Handle.open(nodeNs);
    handles.push(node);
    await node.link.setUp('lo');
    const cni = createHandlers({ nodeNetns: nodeNs });
    const conf = networkConfig(stateDir, pinRoot);
    const call = async (command: 'ADD' | 'DEL', pod: { netns: Netns; label: string }) => {
      const env = { CNI_COMMAND: command, CNI_CONTAINERID: `demo-${run}-${pod.label}`, CNI_NETNS: pod.netns.path, CNI_IFNAME: 'eth0', CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.label}` };
      const out = await runCni({ env, stdin: conf }, cni);
      if (out.exitCode !== 0) throw new Error(`CNI ${command} ${pod.label}: ${out.stdout.trim()}`);
      return out.stdout === '' ? undefined : (JSON.parse(out.stdout) as { interfaces: Array<{ name: string; mac: string }>; ips: Array<{ address: string }> });
    };

    const pods: Pod[] = [];
    for (const label of POD_LABELS) {
      const netns = await Netns.create(`ferry-demo-${label}-${run}`);
      created.push(netns);
      const handle = await Handle.open(netns);
      handles.push(handle);
      const result = (await call('ADD', { netns, label }))!;
      log(`CNI ADD ${label}: ${result.ips.map((i) => i.address).join(', ')}`);
      pods.push({
        label,
        netns,
        handle,
        ips: result.ips.map((i) => i.address.split('/')[0]!),
        hostVeth: result.interfaces[0]!.name,
        mac: result.interfaces[1]!.mac,
      });
    }
    log(`\n${await describeNode(nodeNs, node, pods)}`);

    prober = new Prober();
    const [a, b, c] = pods as [Pod, Pod, Pod];
    for (const dst of b.ips) {
      const replies = await prober.ping(a.netns, dst, { count: 3 });
      const line = summarizePing(a.label, b.label, dst, replies);
      ok &&= line.ok;
      log(line.text);
    }
    // Line servers on every pod but the client, each address, port 8080.
    for (const pod of [b, c]) for (const ip of pod.ips) await prober.serveTcp(pod.netns, ip, TCP_PORT);
    for (const dst of b.ips) {
      const hostPort = addressPort(dst, TCP_PORT);
      try {
        const r = await prober.tcpExchange(a.netns, dst, TCP_PORT, `hello from ${a.label}`);
        log(`TCP   ${a.label} → ${b.label} ${hostPort}: connected in ${r.connectMs.toFixed(2)} ms, answer "${r.reply}"`);
      } catch (e) {
        ok = false;
        log(`TCP   ${a.label} → ${b.label} ${hostPort}: FAILED — ${(e as Error).message}`);
      }
    }
    const service = await demoService(dataplane, prober, a, [b, c], join(stateDir, 'services.yaml'), TCP_PORT);
    ok &&= service.ok;
    log(`\n${service.text}`);
    log('');
    for (const pod of pods) {
      await call('DEL', pod);
      log(`CNI DEL ${pod.label}: host veth ${pod.hostVeth} and addresses ${pod.ips.join(', ')} released`);
    }
  } catch (e) {
    ok = false;
    log(`\nFAILED: ${(e as Error).message}`);
  } finally {
    process.removeListener('SIGINT', onSignal);
    await prober?.close();
    dataplane?.close();
    if (pinRoot !== undefined) removePinDir(pinRoot);
    for (const h of handles) h.close();
    for (const ns of created.reverse()) {
      ns.close();
      try {
        Netns.delete(ns.path);
      } catch (e) {
        ok = false;
        log(`cleanup: ${(e as Error).message}`);
      }
    }
    rmSync(stateDir, { recursive: true, force: true });
    log(`\ncleaned up: deleted ${created.length} network namespaces, the demo's IPAM state and its eBPF pins`);
  }
  log(ok ? '\ndemo OK' : '\ndemo FAILED');
  return ok;
}

async function describeNode(nodeNs: Netns, node: Handle, pods: Pod[]): Promise<string> {
  const table = new Table({ head: ['pod', 'netns', 'pod eth0 MAC', 'addresses', 'node-side veth', 'routes on the node'] });
  const routes = [...(await node.route.list({ family: 4 })), ...(await node.route.list({ family: 6 }))];
  for (const p of pods) {
    const hostRoutes = routes.filter((r) => r.devName === p.hostVeth && r.protocol !== RTPROT_KERNEL).map((r) => r.dst);
    table.push([p.label, p.netns.name, p.mac, p.ips.join('\n'), p.hostVeth, hostRoutes.join('\n')]);
  }
  const podRoutes = [...(await pods[0]!.handle.route.list({ family: 4 })), ...(await pods[0]!.handle.route.list({ family: 6 }))]
    .filter((r) => r.dst === 'default')
    .map((r) => `default via ${r.gw} dev ${r.devName ?? r.dev}${r.onlink ? ' onlink' : ''}`);
  return `node netns ${nodeNs.name} (forwarding on)\n${table.toString()}\nin each pod: ${podRoutes.join('; ')}, gateways resolved by static neighbor entries\n`;
}

function summarizePing(from: string, to: string, dst: string, replies: EchoResult[]): { ok: boolean; text: string } {
  const rtts = replies.flatMap((r) => (r.rttMs === undefined ? [] : [r.rttMs]));
  const stats =
    rtts.length === 0
      ? ''
      : `, rtt min/avg/max ${Math.min(...rtts).toFixed(3)}/${(rtts.reduce((s, x) => s + x, 0) / rtts.length).toFixed(3)}/${Math.max(...rtts).toFixed(3)} ms`;
  const ok = rtts.length === replies.length && replies.length > 0;
  return { ok, text: `ICMP  ${from} → ${to} ${dst}: ${rtts.length}/${replies.length} echo replies${stats}${ok ? '' : '  ← FAILED'}` };
}
