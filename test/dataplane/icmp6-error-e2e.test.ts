// End to end: ICMPv6 errors about translated IPv6 flows reach the sender as
// about what it sent (lib/icmp6_error.h), icmp-error-e2e.test.ts's IPv6
// twin. A backend's port unreachable for a UDP flow to an IPv6 ClusterIP
// fails the client's connected socket at once (ECONNREFUSED: its stack
// matched the quote to the socket); a router's "packet too big" for a
// ClusterIP flow to a pod on another node teaches the client the path MTU
// to the ClusterIP, the address it sent to, and fails its connected socket
// with EMSGSIZE (IPv6 routers never fragment).
//
//   pods 10.244.0.0/24 fd00:244::/64 ─ node 2001:db8:1::1/64 ═ uplink ═ eth0 2001:db8:1::100/64 outside
//                                                                       far0 2001:db8:2::1/64 (MTU FAR_MTU) ═ eth0 2001:db8:2::2/64 far
//
// The far host holds REMOTE_POD on its loopback: a pod of another node (the
// node routes fd00:244:1::/64 to the outside, which routes it to the far
// host). Everything but what ferry does itself is built with iproute2 (the
// oracle), the pods by ferry's CNI ADD; all of it goes after each test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import type { ServiceInput } from '../../engine/dataplane/model.js';
import { attachUplink, detachUplink } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import type { Netns } from '../../engine/netns/netns.js';
import type { Prober } from '../../engine/probe/probe.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { defer } from '../bpf/support.js';
import { ipJson, isRoot, makeNetns, run } from '../support/netns.js';
import { newProber, openNetns } from '../support/probing.js';
import { counters, NODE_NAME, programServices } from './uplink-world.js';

const NODE_IP4 = '192.0.2.1';
const NODE_IP6 = '2001:db8:1::1';
const OUTSIDE_IP6 = '2001:db8:1::100';
const FAR_LINK = { outside: '2001:db8:2::1', far: '2001:db8:2::2' };
const REMOTE_POD = 'fd00:244:1::5';
const FAR_MTU = 1280;
const VIP = 'fd00:96::53';

interface Pod {
  netns: Netns;
  ip6: string;
}

interface World {
  dp: Dataplane;
  pods: Pod[];
  prober: Prober;
}

async function world(labels: string[]): Promise<World> {
  const pinRoot = makePinDir('ferry-icmp6');
  defer(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  defer(() => dp.close());
  const state = mkdtempSync(join(tmpdir(), 'ferry-icmp6-'));
  defer(() => rmSync(state, { recursive: true, force: true }));

  const nodeName = makeNetns('fi6-node');
  const outsideName = makeNetns('fi6-out');
  const farName = makeNetns('fi6-far');
  // nodad: no wait for duplicate address detection.
  const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  ip(nodeName, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outsideName);
  ip(nodeName, 'addr', 'add', `${NODE_IP4}/24`, 'dev', 'uplink');
  ip(nodeName, '-6', 'addr', 'add', `${NODE_IP6}/64`, 'dev', 'uplink', 'nodad');
  ip(nodeName, 'link', 'set', 'uplink', 'up');
  ip(nodeName, '-6', 'route', 'add', 'fd00:244:1::/64', 'via', OUTSIDE_IP6);
  ip(outsideName, 'link', 'add', 'far0', 'mtu', String(FAR_MTU), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', farName);
  ip(outsideName, '-6', 'addr', 'add', `${OUTSIDE_IP6}/64`, 'dev', 'eth0', 'nodad');
  ip(outsideName, '-6', 'addr', 'add', `${FAR_LINK.outside}/64`, 'dev', 'far0', 'nodad');
  for (const dev of ['lo', 'eth0', 'far0']) ip(outsideName, 'link', 'set', dev, 'up');
  ip(outsideName, '-6', 'route', 'add', 'fd00:244::/64', 'via', NODE_IP6);
  ip(outsideName, '-6', 'route', 'add', 'fd00:244:1::/64', 'via', FAR_LINK.far);
  run('ip', ['netns', 'exec', outsideName, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  ip(farName, 'link', 'set', 'eth0', 'mtu', String(FAR_MTU));
  ip(farName, '-6', 'addr', 'add', `${FAR_LINK.far}/64`, 'dev', 'eth0', 'nodad');
  ip(farName, '-6', 'addr', 'add', `${REMOTE_POD}/128`, 'dev', 'lo');
  for (const dev of ['lo', 'eth0']) ip(farName, 'link', 'set', dev, 'up');
  ip(farName, '-6', 'route', 'add', 'default', 'via', FAR_LINK.outside);

  const node = openNetns(nodeName);
  const handle = await Handle.open(node);
  defer(() => handle.close());
  const handlers = createHandlers({ nodeNetns: node });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'icmp6-error-e2e',
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }], [{ subnet: 'fd00:244::/64' }]] },
  });
  const pods: Pod[] = [];
  for (const label of labels) {
    const netns = openNetns(makeNetns(`fi6-${label}`));
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `icmp6-${label}`, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: conf }, handlers);
    expect(out.exitCode, out.stdout).toBe(0);
    const ips = (JSON.parse(out.stdout) as { ips: Array<{ address: string }> }).ips.map((i) => i.address.split('/')[0]!);
    pods.push({ netns, ip6: ips.find((a) => a.includes(':'))! });
  }

  const uplink = await attachUplink(dp, handle, 'uplink');
  defer(() => detachUplink(pinRoot, 'uplink'));
  expect(uplink.config).toMatchObject({ snatAddress6: NODE_IP6 });
  return { dp, pods, prober: newProber() };
}

/** An IPv6-only ClusterIP Service on VIP: `port` to `targetPort` over UDP. */
function udpService(name: string, port: number, targetPort: number): ServiceInput {
  return { namespace: 'default', name, type: 'ClusterIP', clusterIPs: [VIP], ipFamilies: ['IPv6'], ports: [{ port, targetPort, protocol: 'UDP' }] } as ServiceInput;
}

/** The MTU the pod's route to `dst` has learnt (`ip -6 route get`: a cached exception), if any. */
function learntMtu(podNetns: string, dst: string): number | undefined {
  const [route] = ipJson<Array<{ metrics?: Array<{ mtu?: number }> }>>(podNetns, ['-6', 'route', 'get', dst]);
  return route?.metrics?.find((m) => m.mtu !== undefined)?.mtu;
}

describe.skipIf(!isRoot)('ICMPv6 errors about translated IPv6 flows, end to end (needs root)', () => {
  it('a backend’s port unreachable for a UDP flow to an IPv6 ClusterIP reaches the client: ECONNREFUSED', async () => {
    const w = await world(['client', 'backend']);
    const [client, backend] = w.pods as [Pod, Pod];
    // Nothing listens on the backend's 5353.
    programServices(w.dp, [{ service: udpService('dns', 53, 5353), endpoints: [{ addresses: [backend.ip6], ports: [{ port: 5353, protocol: 'UDP' }], nodeName: NODE_NAME }] }], [NODE_IP4, NODE_IP6]);
    // ECONNREFUSED, not ETIMEDOUT: the translated error reached the client's socket.
    await expect(w.prober.udpExchange(client.netns, VIP, 53, 'anyone?', 5000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(counters(w.dp).icmp_translated).toBe(1n);
  });

  it('“packet too big” from a router on the way to a pod of another node reaches the client: it learns the path MTU to the ClusterIP', async () => {
    const w = await world(['client']);
    const [client] = w.pods as [Pod];
    programServices(w.dp, [{ service: udpService('far', 9999, 9999), endpoints: [{ addresses: [REMOTE_POD], ports: [{ port: 9999, protocol: 'UDP' }], nodeName: 'node-b' }] }], [NODE_IP4, NODE_IP6]);
    expect(learntMtu(client.netns.name, VIP)).toBeUndefined();
    // Too big for the far link: the outside cannot forward it, and IPv6 routers never fragment. The
    // connected socket's error is the path's MTU (EMSGSIZE), once the error is matched to it; the
    // links' first neighbour discovery (about a second, while link-local addresses are tentative)
    // holds the datagram up, hence the long wait.
    await expect(w.prober.udpExchange(client.netns, VIP, 9999, 'x'.repeat(1400), 4000)).rejects.toMatchObject({ code: 'EMSGSIZE' });
    expect(learntMtu(client.netns.name, VIP)).toBe(FAR_MTU);
    // What the client learnt is about the address it used: the backend's own address is nothing to it.
    expect(learntMtu(client.netns.name, REMOTE_POD)).toBeUndefined();
    expect(counters(w.dp).icmp_translated).toBe(1n);
  });
});
