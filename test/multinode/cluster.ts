// Simulated nodes for the multi-node tests. The fabric is built with
// iproute2 (an oracle independent of ferry): an underlay namespace holding
// bridge br0, and per node a ferry fixture's node namespace plugged into it
// by a veth (eth0 in the node, ulN a port of br0) with 192.168.100.1N/24 on
// eth0. Each node runs the real `ferry daemon` (through tsx) with its own
// BPF pin root, the shared manifest folder (Node objects, and any
// Services) and `--node-network MODE`; pods are added through cnitool and
// the CNI frontend, which forwards to that node's daemon. Daemons and pin
// roots are removed after each test, namespaces and fixture dirs by the
// support modules, even when the test fails.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { stringify } from 'yaml';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import type { Netns } from '../../engine/netns/netns.js';
import { DEFAULT_VXLAN, type NodeNetworkMode } from '../../engine/nodes/model.js';
import { DaemonProcess, type LogLine } from '../daemon/support.js';
import { ferryCnitool, ferryFixture, ferryPlugin, podNetns, writeConflist, type FerryFixture } from '../support/ferry.js';
import { ipJson, makeNetns, run } from '../support/netns.js';
import { openNetns } from '../support/probing.js';

export const VXLAN_DEVICE = DEFAULT_VXLAN.device;
export const VXLAN_PORT = DEFAULT_VXLAN.port;
/** The route protocol ferry's node-network routes carry (`ip route show proto 102`). */
export const PROTO = '102';

export interface TestNode {
  name: string;
  index: number;
  f: FerryFixture;
  /** Its address on the underlay (eth0). */
  ip: string;
  podCidr: string;
  /** Its port on the underlay bridge. */
  port: string;
  pinRoot: string;
  daemon: DaemonProcess;
  socket: string;
}

export interface TestPod {
  /** The netns name. */
  name: string;
  ns: Netns;
  ip: string;
  node: TestNode;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const nodeIp = (i: number) => `192.168.100.${10 + i}`;
const podCidr = (i: number) => `10.244.${i}.0/24`;

/** The v1 Node object the daemons read for node `i` (from 1). */
function nodeManifest(i: number): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: `node-${i}` },
    spec: { podCIDR: podCidr(i), podCIDRs: [podCidr(i)] },
    status: { addresses: [{ type: 'InternalIP', address: nodeIp(i) }, { type: 'Hostname', address: `node-${i}` }] },
  };
}

export class TestCluster {
  readonly nodes: TestNode[] = [];
  readonly underlay = makeNetns('mn-ul');
  readonly manifests = mkdtempSync(join(tmpdir(), 'ferry-mn-'));

  constructor(readonly mode: NodeNetworkMode) {
    cleanups.push(() => rmSync(this.manifests, { recursive: true, force: true }));
    run('ip', ['-n', this.underlay, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', this.underlay, 'link', 'set', 'br0', 'up']);
  }

  /** Replaces the Node objects (and Services) in the manifest folder in one rename, as an editor would. */
  writeManifests(nodeIndexes: number[], extra: object[] = []): void {
    const tmp = join(this.manifests, '.cluster.yaml.tmp');
    writeFileSync(tmp, [...nodeIndexes.map(nodeManifest), ...extra].map((o) => stringify(o)).join('---\n'));
    renameSync(tmp, join(this.manifests, 'cluster.yaml'));
  }

  /** Builds node `i` (from 1) on the underlay and starts its daemon; waits for its first node sync and its CNI socket. */
  async addNode(i: number): Promise<TestNode> {
    const f = ferryFixture(`mn${i}`);
    const port = `ul${i}`;
    const ip = (...args: string[]) => run('ip', ['-n', f.node, ...args]);
    run('ip', ['-n', this.underlay, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', f.node]);
    run('ip', ['-n', this.underlay, 'link', 'set', port, 'master', 'br0', 'up']);
    ip('link', 'set', 'lo', 'up');
    ip('link', 'set', 'eth0', 'up');
    ip('addr', 'add', `${nodeIp(i)}/24`, 'dev', 'eth0');
    const pinRoot = makePinDir('ferry-mn');
    cleanups.push(() => removePinDir(pinRoot));
    writeConflist(f, '1.0.0', [
      ferryPlugin(f, {
        ranges: [[{ subnet: podCidr(i) }]],
        extra: { ebpf: { pinRoot }, ...(this.mode === 'vxlan' && { vxlanDevice: VXLAN_DEVICE }) },
      }),
    ]);
    const socket = join(f.dir, 'cni.sock');
    const node: TestNode = { name: `node-${i}`, index: i, f, ip: nodeIp(i), podCidr: podCidr(i), port, pinRoot, socket, daemon: undefined! };
    await this.startDaemon(node);
    this.nodes.push(node);
    return node;
  }

  /** (Re)starts the node's daemon; resolves once it has synced the node network and listens for CNI calls. */
  async startDaemon(node: TestNode): Promise<LogLine> {
    const daemon = new DaemonProcess(node.f.node, [
      '--cni-socket', node.socket, '--pin-root', node.pinRoot, '--services', this.manifests, '--node-name', node.name,
      '--uplink', 'eth0', '--node-network', this.mode,
    ]);
    cleanups.push(() => daemon.kill());
    node.daemon = daemon;
    const synced = await daemon.waitFor((l) => typeof l.nodeSync === 'number', 30_000);
    await until(`${node.name}'s daemon listening on ${node.socket}`, () => existsSync(node.socket));
    return synced;
  }

  /** A pod on `node`, added by cnitool through the CNI frontend and that node's daemon. */
  addPod(node: TestNode): TestPod {
    const name = podNetns(`mn${node.index}-pod`);
    const add = ferryCnitool(node.f, 'add', name, { socket: node.socket });
    expect(add.status, `CNI ADD on ${node.name}: ${add.stderr}${add.stdout}`).toBe(0);
    const ip = (add.result.ips[0].address as string).split('/')[0]!;
    return { name, ns: openNetns(name), ip, node };
  }
}

/** A cluster of `count` nodes (node-1…), every one listed in the manifests from the start. */
export async function startCluster(mode: NodeNetworkMode, count = 3, extra: object[] = []): Promise<TestCluster> {
  const c = new TestCluster(mode);
  c.writeManifests(Array.from({ length: count }, (_, k) => k + 1), extra);
  for (let i = 1; i <= count; i++) await c.addNode(i);
  return c;
}

/** Polls `f` every 20 ms until it returns true; fails naming `what` after `ms`. */
export async function until(what: string, f: () => boolean, ms = 10_000): Promise<number> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

// --- the kernel's state, read with iproute2 ---------------------------------------

export interface NodeState {
  /** `DST via GW [dev DEV] [onlink]` and `blackhole DST` of ferry's routes. */
  routes: string[];
  /** `IP MAC` of the permanent neighbours on the vxlan device. */
  neighbors: string[];
  /** `MAC DST` of the vxlan device's remote entries. */
  fdb: string[];
}

export function nodeState(node: TestNode): NodeState {
  const routes = ipJson<any[]>(node.f.node, ['route', 'show', 'proto', PROTO]).map((r) =>
    r.type === 'blackhole' ? `blackhole ${r.dst}` : `${r.dst} via ${r.gateway}${r.flags?.includes('onlink') ? ` dev ${r.dev} onlink` : ''}`,
  );
  const device = ipJson<any[]>(node.f.node, ['link', 'show']).some((l) => l.ifname === VXLAN_DEVICE);
  const neighbors = device
    ? ipJson<any[]>(node.f.node, ['neigh', 'show', 'dev', VXLAN_DEVICE, 'nud', 'permanent']).map((n) => `${n.dst} ${n.lladdr}`)
    : [];
  const fdb = device
    ? (JSON.parse(run('bridge', ['-n', node.f.node, '-j', 'fdb', 'show', 'dev', VXLAN_DEVICE])) as any[]).filter((e) => e.dst).map((e) => `${e.mac} ${e.dst}`)
    : [];
  return { routes: routes.sort(), neighbors: neighbors.sort(), fdb: fdb.sort() };
}

/** What `node` should hold, in nodeState()'s words, when `peers` are the other nodes. */
export function expectedState(mode: NodeNetworkMode, node: TestNode, peers: TestNode[]): NodeState {
  const others = peers.filter((p) => p !== node);
  const vtep = (p: TestNode) => p.podCidr.replace(/\/24$/, '');
  const mac = (p: TestNode) => `66:79:${p.ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0')).join(':')}`;
  const routes = others.map((p) => (mode === 'direct' ? `${p.podCidr} via ${p.ip}` : `${p.podCidr} via ${vtep(p)} dev ${VXLAN_DEVICE} onlink`));
  return {
    routes: [...routes, `blackhole ${node.podCidr}`].sort(),
    neighbors: mode === 'vxlan' ? others.map((p) => `${vtep(p)} ${mac(p)}`).sort() : [],
    fdb: mode === 'vxlan' ? others.map((p) => `${mac(p)} ${p.ip}`).sort() : [],
  };
}

// --- the underlay capture -----------------------------------------------------------

const CAPTURE = fileURLToPath(new URL('./capture.py', import.meta.url));

/** An IPv4 frame capture.py saw. */
export interface Frame {
  src: string;
  dst: string;
  proto: number;
  len: number;
  df: boolean;
  mf: boolean;
  fragOffset: number;
  sport?: number;
  dport?: number;
  vxlan?: { vni: number; inner: Frame | null };
}

/**
 * Captures on `port` (an underlay bridge port) while `during` runs, and
 * returns every IPv4 frame that crossed it.
 */
export async function captureOnUnderlay(c: TestCluster, port: string, during: () => Promise<void>): Promise<Frame[]> {
  const child = spawn('nsenter', [`--net=/var/run/netns/${c.underlay}`, 'python3', CAPTURE, port, String(VXLAN_PORT)], { stdio: ['pipe', 'pipe', 'pipe'] });
  cleanups.push(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await until(`the capture on ${port} (${err})`, () => out.includes('"ready"') || child.exitCode !== null);
  expect(child.exitCode, `capture.py: ${err}`).toBeNull();
  await during();
  child.stdin.end();
  expect(await exited, `capture.py: ${err}`).toBe(0);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Frame & { ready?: boolean })
    .filter((f) => f.ready === undefined);
}
