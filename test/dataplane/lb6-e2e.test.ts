// End to end, IPv6: real TCP through ferry's programs attached to real veths,
// in namespaces this file makes (iproute2 builds what ferry does not):
//
//   pods fd00:10:244::/64 ─ node 2001:db8::1/64 ═ uplink ═ eth0 2001:db8::100/64 outside
//                                                 (fd00:10:244:1::5 on its lo: a pod of another node)
//
// Pods are added by ferry's CNI ADD (dual stack; from_pod on their host
// veths), from_uplink and to_uplink by attachUplink(). Service entries are
// written straight into the IPv6 maps with layout.ts's codecs.
//
// Checksums: both ends of the uplink checksum in software (ethtool tx and
// rx off), so a pod's packet, which leaves it with CHECKSUM_PARTIAL (the
// field holds only the pseudo header's sum), is finished by the node's
// stack from what the NAT left there and checked by the receiver; the
// other way, whole checksums are updated (RFC 1624). A wrong sum stalls the
// exchange; TCP's InCsumErrors must stay 0.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import type { BpfMap } from '../../engine/bpf/index.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { backendId, lb4Service, lb6Backend, lb6Key, lb6ReverseNat, revNatIndex, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { readCounters } from '../../engine/dataplane/metrics.js';
import { attachUplink, detachUplink } from '../../engine/dataplane/uplink.js';
import { Handle } from '../../engine/handle.js';
import type { Netns } from '../../engine/netns/netns.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { defer } from '../bpf/support.js';
import { inNetns, isRoot, makeNetns, run } from '../support/netns.js';
import { newProber, openNetns } from '../support/probing.js';

const NODE_IP6 = '2001:db8::1';
const OUTSIDE_IP6 = '2001:db8::100';
const REMOTE_POD_IP6 = 'fd00:10:244:1::5';
const VIP = 'fd00:10:96::40';

interface Pod {
  netns: Netns;
  ip6: string;
}

interface World {
  dp: Dataplane;
  node: Netns;
  outside: Netns;
  pods: Pod[];
}

async function world(labels: string[]): Promise<World> {
  const pinRoot = makePinDir('ferry-lb6e2e');
  defer(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  defer(() => dp.close());
  const state = mkdtempSync(join(tmpdir(), 'ferry-lb6e2e-'));
  defer(() => rmSync(state, { recursive: true, force: true }));

  const nodeName = makeNetns('f6-node');
  const outsideName = makeNetns('f6-out');
  const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  ip(nodeName, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outsideName);
  ip(nodeName, 'addr', 'add', '192.0.2.1/24', 'dev', 'uplink');
  ip(nodeName, '-6', 'addr', 'add', `${NODE_IP6}/64`, 'dev', 'uplink', 'nodad');
  ip(nodeName, 'link', 'set', 'uplink', 'up');
  ip(nodeName, '-6', 'route', 'add', 'fd00:10:244:1::/64', 'via', OUTSIDE_IP6);
  ip(outsideName, '-6', 'addr', 'add', `${OUTSIDE_IP6}/64`, 'dev', 'eth0', 'nodad');
  ip(outsideName, '-6', 'addr', 'add', `${REMOTE_POD_IP6}/128`, 'dev', 'lo');
  for (const dev of ['lo', 'eth0']) ip(outsideName, 'link', 'set', dev, 'up');
  ip(outsideName, '-6', 'route', 'add', 'fd00:10:244::/64', 'via', NODE_IP6);
  for (const [ns, dev] of [[nodeName, 'uplink'], [outsideName, 'eth0']] as const) inNetns(ns, 'ethtool', ['-K', dev, 'tx', 'off', 'rx', 'off']);

  const node = openNetns(nodeName);
  const handle = await Handle.open(node);
  defer(() => handle.close());
  const handlers = createHandlers({ nodeNetns: node });
  const conf = {
    cniVersion: '1.0.0',
    name: 'lb6-e2e',
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ebpf: { pinRoot },
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }], [{ subnet: 'fd00:10:244::/64' }]] },
  };
  const pods: Pod[] = [];
  for (const label of labels) {
    const netns = openNetns(makeNetns(`f6-${label}`));
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `lb6-${label}`, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: JSON.stringify(conf) }, handlers);
    expect(out.exitCode, out.stdout).toBe(0);
    const ips = (JSON.parse(out.stdout) as { ips: Array<{ address: string }> }).ips.map((i) => i.address.split('/')[0]!);
    const ip6 = ips.find((a) => a.includes(':'));
    expect(ip6, `pod ${label} has an IPv6 address`).toBeDefined();
    // The pod checks what it receives in software too.
    inNetns(netns.name, 'ethtool', ['-K', 'eth0', 'rx', 'off']);
    pods.push({ netns, ip6: ip6! });
  }
  const uplink = await attachUplink(dp, handle, 'uplink');
  defer(() => detachUplink(pinRoot, 'uplink'));
  expect(uplink.config.snatAddress6).toBe(NODE_IP6);
  return { dp, node, outside: openNetns(outsideName), pods };
}

/** One IPv6 frontend with its backends, as the reconciler writes them. */
function addService6(dp: Dataplane, frontend: { address: string; port: number; revNatIndex: number; flags?: number }, backends: Array<{ id: number; address: string; port: number }>): void {
  const services = dp.maps.services6 as BpfMap;
  const key = (slot: number) => lb6Key.encode({ address: frontend.address, port: frontend.port, proto: 'tcp', slot, scope: 'external' });
  for (const b of backends) (dp.maps.backends6 as BpfMap).update(backendId.encode(b.id), lb6Backend.encode({ address: b.address, port: b.port, proto: 'tcp', flags: 0 }));
  backends.forEach((b, i) => services.update(key(i + 1), lb4Service.encode({ backendId: b.id, count: 0, revNatIndex: frontend.revNatIndex, flags: 0, affinityTimeout: 0 })));
  services.update(key(0), lb4Service.encode({ backendId: 0, count: backends.length, revNatIndex: frontend.revNatIndex, flags: frontend.flags ?? 0, affinityTimeout: 0 }));
  (dp.maps.revNat6 as BpfMap).update(revNatIndex.encode(frontend.revNatIndex), lb6ReverseNat.encode({ address: frontend.address, port: frontend.port }));
}

/** TCP's InCsumErrors in a namespace (the TCP MIB is both families'). */
function tcpCsumErrors(ns: Netns): number {
  const snmp = run('nsenter', [`--net=${ns.path}`, 'cat', '/proc/net/snmp']).split('\n');
  const [head, values] = snmp.filter((l) => l.startsWith('Tcp:')).map((l) => l.split(/\s+/));
  return Number(values![head!.indexOf('InCsumErrors')]);
}

/**
 * Counts, in `ns`, the TCP packets it receives from `sport` (or to `dport`)
 * with each hop limit: an ip6tables rule per value (ACCEPT, so nothing
 * else changes), read back by `read()`.
 */
function countHopLimits(ns: Netns, match: string[], limits: number[]): { read(): Record<number, number> } {
  for (const hl of limits) inNetns(ns.name, 'ip6tables', ['-A', 'INPUT', '-p', 'tcp', ...match, '-m', 'hl', '--hl-eq', String(hl), '-j', 'ACCEPT']);
  return {
    read() {
      const out: Record<number, number> = {};
      for (const line of inNetns(ns.name, 'ip6tables', ['-L', 'INPUT', '-v', '-x', '-n']).split('\n')) {
        const m = /^\s*(\d+)\s+\d+\s+ACCEPT.*HL match HL == (\d+)/.exec(line);
        if (m) out[Number(m[2])] = Number(m[1]);
      }
      return out;
    },
  };
}

/** The client address:port a server's "pong … (you are ADDRESS:PORT)" line names. */
function peerOf(reply: string): string {
  const m = /\(you are (.+):\d+\)$/.exec(reply.trim());
  if (!m) throw new Error(`no peer in ${JSON.stringify(reply)}`);
  return m[1]!;
}

describe.skipIf(!isRoot)('IPv6 services end to end (needs root)', () => {
  it('a pod reaches an IPv6 ClusterIP whose backend is beyond the uplink: 200 kB each way, checksums checked in software', async () => {
    const w = await world(['a']);
    const pod = w.pods[0]!;
    addService6(w.dp, { address: VIP, port: 80, revNatIndex: 1 }, [{ id: 1, address: REMOTE_POD_IP6, port: 9000 }]);
    const prober = newProber();
    await prober.serveTcp(w.outside, REMOTE_POD_IP6, 9000);
    const before = [tcpCsumErrors(pod.netns), tcpCsumErrors(w.outside)];

    const long = 'x'.repeat(200_000);
    const r = await prober.tcpExchange(pod.netns, VIP, 80, long, 5000);
    expect(r.reply.startsWith(`pong ${long} `)).toBe(true);
    expect(peerOf(r.reply)).toBe(pod.ip6);
    expect([tcpCsumErrors(pod.netns), tcpCsumErrors(w.outside)]).toEqual(before);
    const c = readCounters(w.dp.maps.metrics);
    expect(c.translated).toBeGreaterThan(0n);
    expect(c.rev_translated).toBeGreaterThan(0n);
  });

  it('a pod reaches an IPv6 ClusterIP whose backend is another pod of the node', async () => {
    const w = await world(['a', 'b']);
    const [client, backend] = w.pods as [Pod, Pod];
    addService6(w.dp, { address: VIP, port: 80, revNatIndex: 1 }, [{ id: 1, address: backend.ip6, port: 9000 }]);
    const prober = newProber();
    await prober.serveTcp(backend.netns, backend.ip6, 9000);
    for (let i = 0; i < 3; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `hello ${i}`, 3000);
      expect(r.reply.startsWith(`pong hello ${i} `)).toBe(true);
      expect(peerOf(r.reply)).toBe(client.ip6);
    }
  });

  it('a client outside reaches an IPv6 NodePort: SNATed to the node, both ways past the stack by FIB redirects', async () => {
    const w = await world(['a']);
    const pod = w.pods[0]!;
    addService6(w.dp, { address: NODE_IP6, port: 30080, revNatIndex: 2, flags: SVC_FLAGS.external }, [{ id: 2, address: pod.ip6, port: 9000 }]);
    const prober = newProber();
    await prober.serveTcp(pod.netns, pod.ip6, 9000);
    const before = [tcpCsumErrors(pod.netns), tcpCsumErrors(w.outside)];
    // Each way one hop, the node's, as its forwarding would take it: 64 → 63.
    const atPod = countHopLimits(pod.netns, ['--dport', '9000'], [63, 64]);
    const atClient = countHopLimits(w.outside, ['--sport', '30080'], [63, 64]);

    const long = 'y'.repeat(100_000);
    const r = await prober.tcpExchange(w.outside, NODE_IP6, 30080, long, 5000);
    expect(r.reply.startsWith(`pong ${long} `)).toBe(true);
    // The pod saw the node, not the client (externalTrafficPolicy Cluster).
    expect(peerOf(r.reply)).toBe(NODE_IP6);
    expect([tcpCsumErrors(pod.netns), tcpCsumErrors(w.outside)]).toEqual(before);
    const c = readCounters(w.dp.maps.metrics);
    expect(c.translated).toBeGreaterThan(0n);
    expect(c.rev_translated).toBeGreaterThan(0n);
    expect(c.fib_redirect).toBeGreaterThan(0n);
    expect(c.drop_ttl).toBe(0n);
    for (const seen of [atPod.read(), atClient.read()]) {
      expect(seen[63]).toBeGreaterThan(0);
      expect(seen[64]).toBe(0);
    }
  });
});
