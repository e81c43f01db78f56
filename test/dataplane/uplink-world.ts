// End-to-end fixture for traffic that crosses the node's uplink: a node
// namespace whose uplink leads to a router ("outside") with a host beyond it
// ("far"), pods attached by ferry's CNI ADD (which hooks from_pod onto their
// veths), the dataplane loaded and pinned, and from_uplink and to_uplink
// attached by attachUplink() with the default cluster CIDRs, 10.244.0.0/16
// and fd00:10:244::/56 (the pods here are IPv4 only).
// Everything but what ferry does itself is built with iproute2 (the oracle);
// all of it goes after each test, even a failed one.
//
//   pods 10.244.0.0/24 ─ node 192.0.2.1/24 ═ uplink ═ eth0 192.0.2.100/24 outside
//                                                       far0 198.18.0.1/24 ═ eth0 198.18.0.2/24 far
//
// The outside routes 10.244.0.0/24 back to the node, as the network between
// nodes does, and holds 10.244.1.5 on its loopback: a pod on another node
// (the node routes 10.244.1.0/24 to it). The far host knows no way to pods:
// their packets get answers from it only masqueraded. The link to it has an
// MTU of FAR_MTU, so the outside answers bigger packets with
// "fragmentation needed".
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { desiredState } from '../../engine/dataplane/desired.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { readCounters } from '../../engine/dataplane/metrics.js';
import { parseEndpoints, parseService, serviceKey, type Endpoint, type Service, type ServiceInput } from '../../engine/dataplane/model.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import { attachUplink, detachUplink } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import type { Netns } from '../../engine/netns/netns.js';
import type { Prober } from '../../engine/probe/probe.js';
import { runCni, type CniOutput } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { defer } from '../bpf/support.js';
import { inNetns, makeNetns, run } from '../support/netns.js';
import { newProber, openNetns } from '../support/probing.js';

export const NODE_NAME = 'node-a';
export const NODE_IP = '192.0.2.1';
export const OUTSIDE_IP = '192.0.2.100';
export const FAR_IP = '198.18.0.2';
export const REMOTE_POD_IP = '10.244.1.5';
export const FAR_MTU = 1280;

export interface Pod {
  netns: Netns;
  ip: string;
}

export interface UplinkWorld {
  dp: Dataplane;
  node: Netns;
  outside: Netns;
  far: Netns;
  pods: Pod[];
  prober: Prober;
  /** Runs a CNI command with the world's config, `extra` merged in (runtimeConfig, say); CNI_ARGS from `args`. */
  cni(command: 'ADD' | 'DEL' | 'CHECK' | 'GC', containerId: string, netns: Netns, extra?: Record<string, unknown>, args?: string): Promise<CniOutput>;
}

/** The world above with one pod per label. */
export async function uplinkWorld(labels: string[]): Promise<UplinkWorld> {
  const pinRoot = makePinDir('ferry-uplink');
  defer(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  defer(() => dp.close());
  const state = mkdtempSync(join(tmpdir(), 'ferry-uplink-'));
  defer(() => rmSync(state, { recursive: true, force: true }));

  const nodeName = makeNetns('fup-node');
  const outsideName = makeNetns('fup-out');
  const farName = makeNetns('fup-far');
  const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  ip(nodeName, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outsideName);
  ip(nodeName, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'uplink');
  ip(nodeName, 'link', 'set', 'uplink', 'up');
  ip(nodeName, 'route', 'add', '198.18.0.0/24', 'via', OUTSIDE_IP);
  ip(nodeName, 'route', 'add', '10.244.1.0/24', 'via', OUTSIDE_IP);
  ip(outsideName, 'link', 'add', 'far0', 'mtu', String(FAR_MTU), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', farName);
  ip(outsideName, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0');
  ip(outsideName, 'addr', 'add', '198.18.0.1/24', 'dev', 'far0');
  ip(outsideName, 'addr', 'add', `${REMOTE_POD_IP}/32`, 'dev', 'lo');
  for (const dev of ['lo', 'eth0', 'far0']) ip(outsideName, 'link', 'set', dev, 'up');
  ip(outsideName, 'route', 'add', '10.244.0.0/24', 'via', NODE_IP);
  inNetns(outsideName, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  ip(farName, 'link', 'set', 'eth0', 'mtu', String(FAR_MTU));
  ip(farName, 'addr', 'add', `${FAR_IP}/24`, 'dev', 'eth0');
  for (const dev of ['lo', 'eth0']) ip(farName, 'link', 'set', dev, 'up');
  ip(farName, 'route', 'add', '192.0.2.0/24', 'via', '198.18.0.1');

  const node = openNetns(nodeName);
  const handle = await Handle.open(node);
  defer(() => handle.close());
  const handlers = createHandlers({ nodeNetns: node });
  const conf = {
    cniVersion: '1.0.0',
    name: 'uplink-e2e',
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }]] },
  };
  const cni: UplinkWorld['cni'] = (command, containerId, netns, extra = {}, args) => {
    const env = { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0', ...(args ? { CNI_ARGS: args } : {}) };
    return runCni({ env, stdin: JSON.stringify({ ...conf, ...extra }) }, handlers);
  };
  const pods: Pod[] = [];
  for (const label of labels) {
    const netns = openNetns(makeNetns(`fup-${label}`));
    const out = await cni('ADD', `uplink-${label}`, netns);
    expect(out.exitCode, out.stdout).toBe(0);
    const result = JSON.parse(out.stdout) as { ips: Array<{ address: string }> };
    pods.push({ netns, ip: result.ips[0]!.address.split('/')[0]! });
  }

  const uplink = await attachUplink(dp, handle, 'uplink');
  defer(() => detachUplink(pinRoot, 'uplink'));
  expect(uplink.config).toMatchObject({ snatAddress: NODE_IP, clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'] });
  return { dp, node, outside: openNetns(outsideName), far: openNetns(farName), pods, prober: newProber(), cni };
}

/**
 * Services and their endpoints into the maps, the way the daemon does it
 * (NodePorts at `nodeAddresses`); returns the Reconciler that wrote them.
 */
export function programServices(dp: Dataplane, services: Array<{ service: ServiceInput; endpoints: unknown[] }>, nodeAddresses: string[] = [NODE_IP]): Reconciler {
  const parsed: Service[] = [];
  const endpoints = new Map<string, Endpoint[]>();
  for (const s of services) {
    const service = parseService(s.service);
    parsed.push(service);
    endpoints.set(serviceKey(service), parseEndpoints(service, s.endpoints));
  }
  const desired = desiredState(parsed, endpoints, { nodeName: NODE_NAME, nodeAddresses });
  expect(desired.skipped).toEqual([]);
  const reconciler = new Reconciler(dp.maps);
  reconciler.apply(desired);
  return reconciler;
}

/** An endpoint of `pod`, on this node unless `nodeName` says otherwise. */
export function endpointOf(pod: Pod, port: number, protocol: 'TCP' | 'UDP' = 'TCP', nodeName = NODE_NAME) {
  return { addresses: [pod.ip], ports: [{ port, protocol }], nodeName };
}

/** The client address a server's "pong … (you are ADDRESS:PORT)" line names. */
export function peerOf(reply: string): { address: string; port: number } {
  const m = /\(you are ([0-9.]+):(\d+)\)$/.exec(reply);
  if (!m) throw new Error(`no peer in ${JSON.stringify(reply)}`);
  return { address: m[1]!, port: Number(m[2]) };
}

export function counters(dp: Dataplane) {
  return readCounters(dp.maps.metrics);
}
