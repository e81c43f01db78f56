// `ferry demo`: a node and two pods, wired by ferry's own rtnetlink engine,
// then an ICMP echo and a TCP exchange between the pods, everything removed
// afterwards. Later stages add the CNI plugin, services and more nodes.
import { randomBytes } from 'node:crypto';
import Table from 'cli-table3';
import { Handle } from '../handle.js';
import { RTPROT_KERNEL } from '../netlink/constants.js';
import { Netns } from '../netns/netns.js';
import { Prober, type EchoResult } from '../probe/probe.js';
import { attachRouted } from '../../plugin/network/routed.js';
import type { Attached, ResultInterface } from '../../plugin/network/types.js';

interface Pod {
  label: string;
  netns: Netns;
  handle: Handle;
  ips: string[];
  hostVeth: string;
  attached?: Attached;
}

const PODS = [
  { label: 'pod-a', ips: ['10.244.0.10', 'fd00:10:244::a'] },
  { label: 'pod-b', ips: ['10.244.0.11', 'fd00:10:244::b'] },
];
const TCP_PORT = 8080;

export async function runDemo(log: (line: string) => void = console.log): Promise<boolean> {
  const run = randomBytes(2).toString('hex');
  const created: Netns[] = [];
  const handles: Handle[] = [];
  let prober: Prober | undefined;
  let ok = true;
  const onSignal = () => log('\ninterrupted: finishing the current step, then cleaning up…');
  process.once('SIGINT', onSignal);
  try {
    log(`ferry demo — a node and two pods wired by ferry's rtnetlink engine (run ${run})\n`);
    const nodeNs = await Netns.create(`ferry-demo-node-${run}`);
    created.push(nodeNs);
    const node = await Handle.open(nodeNs);
    handles.push(node);
    await node.link.setUp('lo');
    await nodeNs.sysctlSet('net.ipv4.ip_forward', 1);
    await nodeNs.sysctlSet('net.ipv6.conf.all.forwarding', 1);

    const pods: Pod[] = [];
    for (const [i, spec] of PODS.entries()) {
      const netns = await Netns.create(`ferry-demo-${spec.label}-${run}`);
      created.push(netns);
      const handle = await Handle.open(netns);
      handles.push(handle);
      const pod: Pod = { label: spec.label, netns, handle, ips: spec.ips, hostVeth: `fd${run}${String.fromCharCode(97 + i)}` };
      pod.attached = await attachRouted(node, handle, {
        containerId: `demo-${spec.label}`,
        ifname: 'eth0',
        hostVeth: pod.hostVeth,
        mtu: 1500,
        addresses: spec.ips.map((ip) => ({ address: ip })),
        routes: [],
      });
      pods.push(pod);
    }
    log(await describeNode(nodeNs, node, pods));

    prober = new Prober();
    const [a, b] = pods as [Pod, Pod];
    for (const dst of b.ips) {
      const replies = await prober.ping(a.netns, dst, { count: 3 });
      const line = summarizePing(a.label, b.label, dst, replies);
      ok &&= line.ok;
      log(line.text);
    }
    for (const dst of b.ips) {
      await prober.serveTcp(b.netns, dst, TCP_PORT);
      const hostPort = dst.includes(':') ? `[${dst}]:${TCP_PORT}` : `${dst}:${TCP_PORT}`;
      try {
        const r = await prober.tcpExchange(a.netns, dst, TCP_PORT, `hello from ${a.label}`);
        log(`TCP   ${a.label} → ${b.label} ${hostPort}: connected in ${r.connectMs.toFixed(2)} ms, answer "${r.reply}"`);
      } catch (e) {
        ok = false;
        log(`TCP   ${a.label} → ${b.label} ${hostPort}: FAILED — ${(e as Error).message}`);
      }
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    await prober?.close();
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
    log(`\ncleaned up: deleted ${created.length} network namespaces (and with them every veth, route and neighbor entry)`);
  }
  log(ok ? '\ndemo OK' : '\ndemo FAILED');
  return ok;
}

async function describeNode(nodeNs: Netns, node: Handle, pods: Pod[]): Promise<string> {
  const table = new Table({ head: ['pod', 'netns', 'pod eth0', 'addresses', 'node-side veth', 'routes on the node'] });
  const routes = await node.route.list();
  for (const p of pods) {
    const [host, podIf] = p.attached!.interfaces as [ResultInterface, ResultInterface];
    const hostRoutes = routes.filter((r) => r.devName === p.hostVeth && r.protocol !== RTPROT_KERNEL).map((r) => r.dst);
    table.push([p.label, p.netns.name, podIf.mac, p.ips.join('\n'), `${host.name}\n${host.mac}`, hostRoutes.join('\n')]);
  }
  const podRoutes = (await pods[0]!.handle.route.list({ family: 4 }))
    .concat(await pods[0]!.handle.route.list({ family: 6 }))
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
