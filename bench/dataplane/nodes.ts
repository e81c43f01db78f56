// The nodes the dataplane bench measures, each a node netns with a client
// pod and a server pod:
//   - ferry: pods added by ferry's CNI ADD (routed mode, ferry's IPAM), run
//     in this process exactly as the daemon runs it; with `pinRoot` the eBPF
//     dataplane loaded there is attached to each host veth (tcx ingress),
//     without it the pods are plain routed pods;
//   - reference: Debian's bridge + host-local, run by libcni's cnitool inside
//     the node netns (as bench/cni does), isGateway, no masquerade.
// The ClusterIP is programmed here too: into ferry's maps by its reconciler,
// or as kube-proxy's iptables rules in a node netns.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ct4Key } from '../../engine/dataplane/layout.js';
import type { Dataplane } from '../../engine/dataplane/loader.js';
import { parseEndpoints, parseService } from '../../engine/dataplane/model.js';
import { linkPin } from '../../engine/dataplane/paths.js';
import { desiredState, Reconciler } from '../../engine/dataplane/reconcile.js';
import { Netns } from '../../engine/netns/netns.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { cnitool } from '../../test/support/cnitool.js';
import type { Cleanup } from '../support/cleanup.js';
import { netnsPath } from '../support/netns.js';
import { IPERF_PORT } from './iperf.js';
import { dnatCounts, kubeProxyRules, restoreInNetns, saveNat, type IptablesBackend, type KubeService } from './kube-proxy.js';

export const CLUSTER_IP = '10.96.0.10';
export const CLUSTER_CIDR = '10.244.0.0/16';
export const SERVICE = { namespace: 'bench', name: 'iperf', portName: 'iperf' } as const;

export interface Pod {
  netns: string;
  ip: string;
  hostVeth: string;
}

export interface Node {
  name: string;
  /** What the node is, for the output. */
  description: string;
  client: Pod;
  server: Pod;
}

type WireResult = { interfaces: Array<{ name: string; sandbox?: string }>; ips: Array<{ address: string; interface?: number }> };

function podFrom(result: WireResult, netns: string, exclude: string[] = []): Pod {
  const ip = result.ips.find((i) => !i.address.includes(':'));
  const hostVeth = result.interfaces.find((i) => !i.sandbox && !exclude.includes(i.name));
  if (!ip || !hostVeth) throw new Error(`CNI ADD for ${netns} returned no IPv4 address or host veth: ${JSON.stringify(result)}`);
  return { netns, ip: ip.address.split('/')[0]!, hostVeth: hostVeth.name };
}

export interface FerryNodePlan {
  node: string;
  client: string;
  server: string;
  /** Temp dir for ferry's state, IPAM and log. */
  dir: string;
  subnet: string;
  /** A loaded dataplane to attach to the pods; none: plain routed pods. */
  dataplane?: Dataplane;
}

/** CNI ADD of both pods by ferry's handlers in this process, the node netns being plan.node (which exists). */
export async function ferryNode(plan: FerryNodePlan, cleanup: Cleanup): Promise<Node> {
  const nodeNs = Netns.open(plan.node);
  cleanup.add(`close ${plan.node}`, () => nodeNs.close());
  mkdirSync(plan.dir, { recursive: true });
  const handlers = createHandlers({ nodeNetns: nodeNs });
  // Without a dataplane the pin root is a path where nothing is pinned, so
  // CNI ADD cannot pick up one another process pinned in the default place.
  const pinRoot = plan.dataplane?.pinRoot ?? join(plan.dir, 'no-dataplane');
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: `bench-${randomBytes(3).toString('hex')}`,
    type: 'ferry',
    mode: 'routed',
    logFile: join(plan.dir, 'cni.log'),
    dataDir: join(plan.dir, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(plan.dir, 'ipam'), ranges: [[{ subnet: plan.subnet }]] },
  });
  const add = async (netns: string): Promise<Pod> => {
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `bench-${netns}`, CNI_NETNS: netnsPath(netns), CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: conf }, handlers);
    if (out.exitCode !== 0) throw new Error(`ferry CNI ADD ${netns}: ${out.stdout.trim()}`);
    const pod = podFrom(JSON.parse(out.stdout) as WireResult, netns);
    const hooked = existsSync(linkPin(pinRoot, pod.hostVeth));
    if (hooked !== (plan.dataplane !== undefined)) {
      throw new Error(`ferry CNI ADD ${netns}: from_pod is ${hooked ? '' : 'not '}attached to ${pod.hostVeth}, expected ${hooked ? 'no dataplane' : 'it'}`);
    }
    return pod;
  };
  const client = await add(plan.client);
  const server = await add(plan.server);
  const description = plan.dataplane
    ? `ferry CNI, routed, ${plan.subnet}; eBPF from_pod at tcx ingress of every host veth`
    : `ferry CNI, routed, ${plan.subnet}; no eBPF dataplane (plain routing)`;
  return { name: plan.node, description, client, server };
}

export interface ReferenceNodePlan {
  node: string;
  client: string;
  server: string;
  dir: string;
  subnet: string;
  pluginDir: string;
}

/** CNI ADD of both pods with the reference bridge + host-local, through cnitool inside the node netns. */
export function referenceNode(plan: ReferenceNodePlan): Node {
  const confDir = join(plan.dir, 'net.d');
  const cacheDir = join(plan.dir, 'libcni-cache');
  for (const d of [confDir, cacheDir]) mkdirSync(d, { recursive: true });
  const bridge = `rbr${randomBytes(4).toString('hex')}`;
  const network = `bench-ref-${randomBytes(3).toString('hex')}`;
  const plugin = {
    type: 'bridge',
    bridge,
    isGateway: true,
    ipMasq: false,
    ipam: { type: 'host-local', ranges: [[{ subnet: plan.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(plan.dir, 'host-local') },
  };
  writeFileSync(join(confDir, '10-bench.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: network, plugins: [plugin] }, null, 2));
  const add = (netns: string): Pod => {
    const r = cnitool({ command: 'add', network, netnsPath: netnsPath(netns), confDir, pluginPaths: [plan.pluginDir], cacheDir, nodeNetns: plan.node });
    if (r.status !== 0 || !r.result) throw new Error(`reference CNI ADD ${netns} (cnitool, exit ${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
    return podFrom(r.result as WireResult, netns, [bridge]);
  };
  const client = add(plan.client);
  const server = add(plan.server);
  return { name: plan.node, description: `reference bridge ${bridge} + host-local, ${plan.subnet}, isGateway, no ipMasq`, client, server };
}

/** What a ClusterIP setup can tell afterwards: how many connections it DNATed to the backend. */
export interface ClusterIpProbe {
  describe: string;
  dnatConnections(): number;
}

/** Service bench/iperf, ClusterIP CLUSTER_IP:5201 → the server pod's :5201, written into ferry's maps by its reconciler. */
export async function ferryClusterIp(dp: Dataplane, server: Pod): Promise<ClusterIpProbe> {
  const service = parseService({
    namespace: SERVICE.namespace,
    name: SERVICE.name,
    clusterIPs: [CLUSTER_IP],
    ports: [{ name: SERVICE.portName, port: IPERF_PORT, protocol: 'TCP', targetPort: IPERF_PORT }],
  });
  const endpoints = parseEndpoints(service, [{ addresses: [server.ip], ports: [{ name: SERVICE.portName, port: IPERF_PORT, protocol: 'TCP' }] }]);
  const reconciler = await Reconciler.adopt(dp.maps);
  const applied = reconciler.apply(desiredState([service], new Map([[`${SERVICE.namespace}/${SERVICE.name}`, endpoints]]), { nodeName: 'bench' }));
  if (applied.services.added === 0 || applied.backends.added !== 1) {
    throw new Error(`the reconciler did not program ${CLUSTER_IP}:${IPERF_PORT}: ${JSON.stringify(applied)}`);
  }
  return {
    describe: `Service ${SERVICE.namespace}/${SERVICE.name} in ferry's eBPF maps (reconciler: services +${applied.services.added}, backends +${applied.backends.added}, rev-NAT +${applied.revNat.added})`,
    // Forward conntrack entries towards the VIP: one per connection the dataplane DNATed.
    dnatConnections: () => {
      let n = 0;
      for (const [k] of dp.maps.conntrack.entries()) {
        const key = ct4Key.decode(k);
        if (key.dir === 'forward' && key.daddr === CLUSTER_IP) n++;
      }
      return n;
    },
  };
}

/** The same Service as kube-proxy's iptables mode writes it, loaded by iptables-restore in the node netns. */
export function iptablesClusterIp(node: string, backend: IptablesBackend, server: Pod): ClusterIpProbe & { rules: string } {
  const svc: KubeService = {
    ...SERVICE,
    clusterIp: CLUSTER_IP,
    port: IPERF_PORT,
    protocol: 'tcp',
    endpoints: [`${server.ip}:${IPERF_PORT}`],
    clusterCidr: CLUSTER_CIDR,
  };
  const rules = kubeProxyRules([svc]);
  restoreInNetns(node, backend, rules);
  return {
    rules,
    describe: `Service ${SERVICE.namespace}/${SERVICE.name} as kube-proxy's iptables mode writes it (iptables-${backend}-restore in the node netns)`,
    dnatConnections: () => [...dnatCounts(saveNat(node, backend), svc).values()].reduce((a, b) => a + b, 0),
  };
}
