// Probes from inside namespaces: ICMP through raw sockets on the main thread
// (with the thread back in its own namespace afterwards) and TCP through a
// worker bound to one namespace. Fixtures are wired with iproute2.
import { readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { native } from '../../engine/native/binding.js';
import type { Netns } from '../../engine/netns/netns.js';
import { newProber, openNetns } from '../support/probing.js';
import { ip } from '../support/handle.js';
import { ipJson, isRoot, makeNetns } from '../support/netns.js';


/** Two namespaces joined by a veth: a=10.77.0.1/24 fd77::1/64, b=10.77.0.2/24 fd77::2/64. */
function pair(): { a: Netns; b: Netns } {
  const [na, nb] = [makeNetns('fprb-a'), makeNetns('fprb-b')];
  ip(na, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nb);
  for (const [ns, n] of [[na, 1], [nb, 2]] as const) {
    ip(ns, 'addr', 'add', `10.77.0.${n}/24`, 'dev', 'eth0');
    ip(ns, 'addr', 'add', `fd77::${n}/64`, 'dev', 'eth0', 'nodad');
    ip(ns, 'link', 'set', 'eth0', 'up');
    ip(ns, 'link', 'set', 'lo', 'up');
  }
  // Static neighbors: on a freshly made veth the kernel's first neighbor
  // solicitation is often lost and retried after ~1 s; this test is about
  // the probe, not about neighbor discovery timing.
  const mac = (ns: string) => ipJson<Array<{ address: string }>>(ns, ['link', 'show', 'eth0'])[0]!.address;
  for (const [ns, peer, n] of [[na, nb, 2], [nb, na, 1]] as const) {
    ip(ns, 'neigh', 'add', `10.77.0.${n}`, 'lladdr', mac(peer), 'dev', 'eth0', 'nud', 'permanent');
    ip(ns, 'neigh', 'add', `fd77::${n}`, 'lladdr', mac(peer), 'dev', 'eth0', 'nud', 'permanent');
  }
  const a = openNetns(na);
  const b = openNetns(nb);
  return { a, b };
}

describe.skipIf(!isRoot)('probes inside namespaces (needs root)', () => {
  it('pings over IPv4 and IPv6 and leaves the main thread in its own namespace', async () => {
    const { a } = pair();
    const before = readlinkSync('/proc/thread-self/ns/net');
    const prober = newProber();
    for (const dst of ['10.77.0.2', 'fd77::2']) {
      const replies = await prober.ping(a, dst, { count: 3, intervalMs: 10 });
      expect(replies.map((r) => r.seq)).toEqual([1, 2, 3]);
      for (const r of replies) expect(r.rttMs, `${dst} seq ${r.seq}`).toBeGreaterThan(0);
    }
    expect(readlinkSync('/proc/thread-self/ns/net')).toBe(before);
  });

  it('reports no reply for an address nobody has', async () => {
    const { a } = pair();
    const prober = newProber();
    const replies = await prober.ping(a, '10.77.0.99', { count: 1, timeoutMs: 300 });
    expect(replies).toEqual([{ seq: 1 }]);
  });

  it('fails with the reason when there is no route, naming the namespace', async () => {
    const { a } = pair();
    const prober = newProber();
    await expect(prober.ping(a, '192.0.2.1', { count: 1 })).rejects.toThrow(new RegExp(`ping 192.0.2.1 from netns ${a.name}: Network is unreachable`));
  });

  it('exchanges a TCP line between two namespaces, the server seeing the client address', async () => {
    const { a, b } = pair();
    const prober = newProber();
    await prober.serveTcp(b, '10.77.0.2', 7001);
    const r = await prober.tcpExchange(a, '10.77.0.2', 7001, 'hello');
    expect(r.reply).toMatch(/^pong hello \(you are 10\.77\.0\.1:\d+\)$/);
    expect(r.peer).toMatch(/^10\.77\.0\.1:/);
  });

  it('reports a refused TCP connection with its code', async () => {
    const { a } = pair();
    const prober = newProber();
    await expect(prober.tcpExchange(a, '10.77.0.2', 7002, 'x')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses to move the main thread into another namespace for good', () => {
    const { a } = pair();
    expect(() => native.enterNetnsOnThisThread(a.fd, a.name)).toThrow(/main thread/);
  });
});
