// A simulated cluster made of network namespaces, wired by ferry's engine
// alone (no `ip`): an underlay namespace holding a bridge, and N node
// namespaces each plugged into it by a veth (eth0 in the node, a bridge port
// in the underlay) with an address on the underlay subnet. Pods are attached
// by ferry's CNI plugin run in this process (the ADD kubelet runs), routed
// mode, from each node's own pod CIDR; the node network (engine/nodes/) is
// applied to every node from the same list of Nodes. The multi-node demo and
// the multi-node bench stand on it.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCni, type CniHandlers } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { Handle } from '../handle.js';
import { Netns } from '../netns/netns.js';
import { desiredNodeNetwork } from '../nodes/desired.js';
import { DEFAULT_VXLAN, type ClusterNode, type NodeNetworkMode } from '../nodes/model.js';
import { applyNodeNetwork, type NodeNetworkReport } from '../nodes/reconcile.js';

const UNDERLAY_BRIDGE = 'br0';

export interface SimNode {
  name: string;
  netns: Netns;
  handle: Handle;
  /** On eth0, in 192.168.100.0/24. */
  address: string;
  podCidr: string;
  /** ferry's CNI verbs bound to this node's namespace. */
  cni: CniHandlers;
  /** Its IPAM and endpoint records and CNI log. */
  stateDir: string;
}

export interface SimPod {
  label: string;
  node: SimNode;
  netns: Netns;
  /** Its IPv4 address, once added. */
  ip: string;
  /** eth0's MTU in the pod, as the kernel reports it once added. */
  mtu: number;
}

/** Node i (from 0): 192.168.100.(11+i) on the underlay, pod CIDR 10.244.(i+1).0/24. */
const nodeAddress = (i: number) => `192.168.100.${11 + i}`;
const nodePodCidr = (i: number) => `10.244.${i + 1}.0/24`;

export class SimCluster {
  private readonly namespaces: Netns[] = [];
  private readonly handles: Handle[] = [];
  readonly nodes: SimNode[] = [];
  private pods = 0;

  /** `prefix` names every namespace (unique per run); `dir` holds each node's IPAM and endpoint state. */
  private constructor(
    private readonly prefix: string,
    private readonly dir: string,
  ) {}

  /** Builds the underlay and `count` nodes. On failure, what was made is removed before the error is thrown. */
  static async create(prefix: string, count: number, dir: string): Promise<SimCluster> {
    const c = new SimCluster(prefix, dir);
    try {
      const ul = await c.open(await c.namespace('underlay'));
      await ul.link.setUp('lo');
      await ul.link.add({ kind: 'bridge', name: UNDERLAY_BRIDGE, up: true });
      for (let i = 0; i < count; i++) c.nodes.push(await c.addNode(i, ul));
      return c;
    } catch (e) {
      c.destroy();
      throw e;
    }
  }

  /** The Node objects every node's node network is computed from. */
  clusterNodes(): ClusterNode[] {
    return this.nodes.map((n) => ({ name: n.name, addresses: [n.address], podCIDRs: [n.podCidr] }));
  }

  /** Makes every node's namespace match `mode` for the nodes in `view` (default: all of them). */
  async applyNodeNetwork(mode: NodeNetworkMode, view: ClusterNode[] = this.clusterNodes()): Promise<NodeNetworkReport[]> {
    const reports: NodeNetworkReport[] = [];
    const selves = this.clusterNodes();
    for (const [i, node] of this.nodes.entries()) {
      const report = await applyNodeNetwork(node.handle, { mode, vxlan: { ...DEFAULT_VXLAN } }, desiredNodeNetwork(mode, selves[i]!, view));
      if (report.errors.length > 0) throw new Error(`node network on ${node.name}: ${report.errors.join('; ')}`);
      reports.push(report);
    }
    return reports;
  }

  /** A pod namespace on `node`, attached by CNI ADD (routed; in vxlan mode with the vxlan device's MTU). */
  async addPod(node: SimNode, label: string, mode: NodeNetworkMode): Promise<SimPod> {
    const netns = await this.namespace(`pod${++this.pods}`);
    const pod: SimPod = { label, node, netns, ip: '', mtu: 0 };
    const result = JSON.parse(await this.cni('ADD', pod, mode)) as { ips: Array<{ address: string }> };
    pod.ip = result.ips[0]!.address.split('/')[0]!;
    const h = await Handle.open(netns);
    try {
      pod.mtu = (await h.link.get('eth0')).mtu;
    } finally {
      h.close();
    }
    return pod;
  }

  async delPod(pod: SimPod, mode: NodeNetworkMode): Promise<void> {
    await this.cni('DEL', pod, mode);
    const i = this.namespaces.indexOf(pod.netns);
    if (i >= 0) this.namespaces.splice(i, 1);
    pod.netns.close();
    Netns.delete(pod.netns.path);
  }

  /**
   * Deletes every namespace (which takes their links, routes and pods with
   * them); returns what could not be removed. Synchronous, so a signal
   * handler can run it.
   */
  destroy(): string[] {
    const problems: string[] = [];
    for (const h of this.handles.splice(0)) h.close();
    for (const ns of this.namespaces.splice(0).reverse()) {
      ns.close();
      try {
        Netns.delete(ns.path);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    return problems;
  }

  private async addNode(i: number, ul: Handle): Promise<SimNode> {
    const name = `node-${i + 1}`;
    const netns = await this.namespace(name);
    const handle = await this.open(netns);
    await handle.link.setUp('lo');
    const port = `ul${i + 1}`;
    await handle.link.add({ kind: 'veth', name: 'eth0', peer: { name: port, netns: ul.netns }, up: true });
    await handle.addr.add('eth0', `${nodeAddress(i)}/24`);
    await ul.link.setMaster(port, UNDERLAY_BRIDGE);
    await ul.link.setUp(port);
    const stateDir = join(this.dir, name);
    mkdirSync(stateDir, { recursive: true });
    return { name, netns, handle, address: nodeAddress(i), podCidr: nodePodCidr(i), cni: createHandlers({ nodeNetns: netns }), stateDir };
  }

  /** Runs CNI ADD or DEL for `pod` on its node as kubelet would, in routed mode from the node's pod CIDR; returns stdout. */
  private async cni(command: 'ADD' | 'DEL', pod: SimPod, mode: NodeNetworkMode): Promise<string> {
    const { node } = pod;
    const conf = JSON.stringify({
      cniVersion: '1.0.0',
      name: `${this.prefix}-net`,
      type: 'ferry',
      mode: 'routed',
      ...(mode === 'vxlan' && { vxlanDevice: DEFAULT_VXLAN.device }),
      logFile: join(node.stateDir, 'cni.log'),
      dataDir: join(node.stateDir, 'endpoints'),
      // No eBPF dataplane: a path where nothing is pinned, so a dataplane pinned elsewhere on the host is never picked up.
      ebpf: { pinRoot: join(node.stateDir, 'no-dataplane') },
      ipam: { type: 'ferry', dataDir: join(node.stateDir, 'ipam'), ranges: [[{ subnet: node.podCidr }]] },
    });
    const env = { CNI_COMMAND: command, CNI_CONTAINERID: `${this.prefix}-${pod.label}`, CNI_NETNS: pod.netns.path, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: conf }, node.cni);
    if (out.exitCode !== 0) throw new Error(`CNI ${command} ${pod.label} on ${node.name}: ${out.stdout.trim()}`);
    return out.stdout;
  }

  private async namespace(what: string): Promise<Netns> {
    const ns = await Netns.create(`${this.prefix}-${what}`);
    this.namespaces.push(ns);
    return ns;
  }

  private async open(ns: Netns): Promise<Handle> {
    const h = await Handle.open(ns);
    this.handles.push(h);
    return h;
  }
}
