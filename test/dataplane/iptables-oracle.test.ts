// iptables kube-proxy as the behavioural oracle: the same pods and the same
// Service, served once by ferry's eBPF maps and once by the rules
// kube-proxy's iptables mode writes (bench/dataplane/kube-proxy.ts, loaded
// with iptables-restore in the node namespace). What a client can observe
// must be the same: the reply comes from the ClusterIP, the backend sees the
// client's own address, new flows spread over the endpoints, a removed
// endpoint gets no new flow (not even one from a source port its flows
// used before: kube-proxy clears their UDP conntrack entries, ferry its),
// a flow already open keeps its backend.
import { afterEach, describe, expect, it } from 'vitest';
import { clearUdpConntrack, kubeProxyRules, kubeProxyServiceUpdate, restoreInNetns, type KubeService } from '../../bench/dataplane/kube-proxy.js';
import { forgetBackends } from '../../engine/dataplane/ct-gc.js';
import { parseEndpoints, parseService } from '../../engine/dataplane/model.js';
import { desiredState, Reconciler } from '../../engine/dataplane/reconcile.js';
import { Prober } from '../../engine/probe/probe.js';
import { isRoot } from '../support/netns.js';
import { podNode, type Pod } from './pod-node.js';

const VIP = '10.96.0.10';
/** Per exchange: generous, the machine may be busy (an answer normally takes a millisecond). */
const WAIT_MS = 5000;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Programmer {
  /** Serves VIP:53/udp and VIP:80/tcp from `backends` (ports 5353, 8080). */
  program(backends: Pod[]): void;
}

interface Observed {
  /** The client address TCP backends saw (the reply came from the VIP, or the connect would not have completed). */
  tcpClientSeen: string;
  /** Which backends answered 30 new UDP flows (fresh source ports), by address. */
  udpBackends: string[];
  /** After the update removing the last backend: which answered 20 new flows. */
  udpBackendsAfter: string[];
  /** After the update: which answered a new socket on a source port whose flow went to the removed backend. */
  reusedPortBackend: string;
  /** A held UDP socket (fixed source port) pinned to a kept backend: the same backend after the update. */
  heldFlowKept: boolean;
}

async function observe(prefix: string, setup: (node: string, dp: Awaited<ReturnType<typeof podNode>>['dp']) => Programmer, ebpf: boolean): Promise<Observed> {
  // kube-proxy's world has no eBPF on the pods' veths: the stack and its netfilter alone.
  const world = await podNode(cleanups, prefix, { ebpf });
  const client = await world.add('client');
  const backends = [await world.add('be1'), await world.add('be2')];
  const prober = new Prober();
  cleanups.push(() => prober.close());
  for (const b of backends) {
    await prober.serveTcp(b.netns, b.ip, 8080);
    await prober.serveUdp(b.netns, b.ip, 5353);
  }
  const programmer = setup(world.node.name, world.dp);
  programmer.program(backends);

  const tcp = await prober.tcpExchange(client.netns, VIP, 80, 'hello', WAIT_MS);
  const answeredBy = (reply: string) => backends.find((b) => reply.includes(`from ${b.ip} `))?.ip ?? `?${reply}`;
  const removedPorts: number[] = []; // source ports of flows that went to the backend the update removes
  const spread = async (n: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const reply = await prober.udpExchange(client.netns, VIP, 53, `q${i}`, WAIT_MS);
      const backend = answeredBy(reply);
      seen.add(backend);
      if (backend === backends[1]!.ip) removedPorts.push(Number(/ \(you are [^ ]+:(\d+)\)$/.exec(reply)![1]));
    }
    return [...seen].sort();
  };
  const udpBackends = await spread(30);

  // A held flow on be1 (the backend that stays), found by retrying fresh sockets.
  let held: Awaited<ReturnType<Prober['openUdpSocket']>> | undefined;
  for (let i = 0; i < 50 && held === undefined; i++) {
    const socket = await prober.openUdpSocket(client.netns, VIP, 53);
    if (answeredBy(await socket.send('pin', WAIT_MS)) === backends[0]!.ip) {
      held = socket;
      cleanups.push(() => socket.close());
    } else {
      // Closed at once: left open, it could hold removedPorts[0], which `reused` binds below.
      await socket.close();
    }
  }
  expect(held, 'no UDP flow reached be1 in 50 tries').toBeDefined();

  programmer.program([backends[0]!]);
  const udpBackendsAfter = await spread(20);
  const reused = await prober.openUdpSocket(client.netns, VIP, 53, { localPort: removedPorts[0]! });
  cleanups.push(() => reused.close());
  const reusedPortBackend = answeredBy(await reused.send('reused', WAIT_MS)) === backends[0]!.ip ? 'be1' : 'be2';
  const heldFlowKept = answeredBy(await held!.send('again', WAIT_MS)) === backends[0]!.ip;
  return { tcpClientSeen: tcp.peer.split(':')[0] === client.ip ? 'client' : tcp.peer, udpBackends, udpBackendsAfter: udpBackendsAfter.map((ip) => (ip === backends[0]!.ip ? 'be1' : ip)), reusedPortBackend, heldFlowKept };
}

/** ferry: the Reconciler over the pinned maps, and forgetBackends() after it, as the daemon does. */
function ferry(_node: string, dp: Awaited<ReturnType<typeof podNode>>['dp']): Programmer {
  const reconciler = new Reconciler(dp.maps);
  const service = parseService({
    namespace: 'default',
    name: 'web',
    clusterIPs: [VIP],
    ports: [
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 },
      { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 },
    ],
  });
  return {
    program(backends) {
      const ports = [{ name: 'dns', port: 5353, protocol: 'UDP' as const }, { name: 'http', port: 8080, protocol: 'TCP' as const }];
      const endpoints = parseEndpoints(service, backends.map((b) => ({ addresses: [b.ip], ports })));
      const result = reconciler.apply(desiredState([service], new Map([['default/web', endpoints]]), { nodeName: 'n' }));
      forgetBackends(dp.maps.conntrack, result.removedBackendIds);
    },
  };
}

/** kube-proxy's iptables mode: the full ruleset, then its minimized update and its clearing of the removed UDP endpoints' conntrack entries. */
function iptables(node: string): Programmer {
  let before: KubeService[] | undefined;
  const services = (backends: Pod[]): KubeService[] => [
    { namespace: 'default', name: 'web', portName: 'dns', clusterIp: VIP, port: 53, protocol: 'udp', endpoints: backends.map((b) => `${b.ip}:5353`), clusterCidr: '10.244.0.0/16' },
    { namespace: 'default', name: 'web', portName: 'http', clusterIp: VIP, port: 80, protocol: 'tcp', endpoints: backends.map((b) => `${b.ip}:8080`), clusterCidr: '10.244.0.0/16' },
  ];
  return {
    program(backends) {
      const now = services(backends);
      if (before === undefined) restoreInNetns(node, 'legacy', kubeProxyRules(now), { noflush: false });
      else {
        now.forEach((s, i) => restoreInNetns(node, 'legacy', kubeProxyServiceUpdate(now, before![i]!, s)));
        const kept = new Set(backends.map((b) => b.ip));
        for (const gone of before.flatMap((s) => (s.protocol === 'udp' ? s.endpoints : []))) {
          const ip = gone.split(':')[0]!;
          if (!kept.has(ip)) clearUdpConntrack(node, VIP, ip);
        }
      }
      before = now;
    },
  };
}

describe.skipIf(!isRoot)('ferry against iptables kube-proxy on the same pods (needs root)', () => {
  it('a client observes the same Service both ways', { timeout: 90_000 }, async () => {
    const viaIptables = await observe('fio', iptables, false);
    // The oracle itself works: both endpoints answered through the rules.
    expect(viaIptables.udpBackends).toHaveLength(2);
    const viaFerry = await observe('fof', ferry, true);
    expect(viaFerry).toEqual(viaIptables);
    expect(viaFerry).toEqual({ tcpClientSeen: 'client', udpBackends: expect.any(Array), udpBackendsAfter: ['be1'], reusedPortBackend: 'be1', heldFlowKept: true });
  });
});
