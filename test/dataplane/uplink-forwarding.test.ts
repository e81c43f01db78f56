// attachUplink() turns forwarding on in the node for the families its
// uplink has: IPv4 always (NodePort flows to other nodes' backends), IPv6
// when the uplink has a global IPv6 address. An uplink that takes router
// advertisements (accept_ra 1) is raised to 2 first, because a forwarding
// interface with 1 ignores them and would lose a default route learnt from
// them. Read back through /proc/sys in the node namespace.
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane } from '../../engine/dataplane/loader.js';
import { attachUplink } from '../../engine/dataplane/uplink.js';
import { handleIn, ip } from '../support/handle.js';
import { inNetns, isRoot } from '../support/netns.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `cat /proc/sys/KEY` inside `ns`, KEY with '/' separators. */
const sysctl = (ns: string, key: string) => inNetns(ns, 'cat', [`/proc/sys/${key}`]).trim();

async function node(prefix: string, acceptRa: number, address6?: string) {
  const pinRoot = makePinDir(`ferry-${prefix}`);
  cleanups.push(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  cleanups.push(() => dp.close());
  const { ns, h } = await handleIn(prefix);
  ip(ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'far');
  inNetns(ns, 'sysctl', ['-qw', `net.ipv6.conf.up0.accept_ra=${acceptRa}`]);
  ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'up0');
  if (address6 !== undefined) ip(ns, 'addr', 'add', `${address6}/64`, 'dev', 'up0', 'nodad');
  ip(ns, 'link', 'set', 'up0', 'up');
  return { ns, attach: () => attachUplink(dp, h, 'up0') };
}

describe.skipIf(!isRoot)('forwarding turned on by attachUplink (needs root)', () => {
  it('an IPv4-only uplink: IPv4 forwarding only', async () => {
    const n = await node('ffw4', 1);
    const ipv6Before = sysctl(n.ns, 'net/ipv6/conf/all/forwarding');
    const up = await n.attach();
    expect(up.forwarding).toEqual([4]);
    expect(sysctl(n.ns, 'net/ipv4/ip_forward')).toBe('1');
    expect(sysctl(n.ns, 'net/ipv6/conf/all/forwarding')).toBe(ipv6Before);
    expect(sysctl(n.ns, 'net/ipv6/conf/up0/accept_ra')).toBe('1');
  });

  it('a dual-stack uplink taking router advertisements: IPv6 forwarding on, accept_ra raised to 2', async () => {
    const n = await node('ffw6', 1, '2001:db8::1');
    const up = await n.attach();
    expect(up).toMatchObject({ forwarding: [4, 6], acceptRaRaised: true });
    expect(sysctl(n.ns, 'net/ipv6/conf/all/forwarding')).toBe('1');
    expect(sysctl(n.ns, 'net/ipv6/conf/up0/forwarding')).toBe('1');
    expect(sysctl(n.ns, 'net/ipv6/conf/up0/accept_ra')).toBe('2');
  });

  it('a dual-stack uplink not taking them (accept_ra 0): left at 0', async () => {
    const n = await node('ffw0', 0, '2001:db8::1');
    const up = await n.attach();
    expect(up.forwarding).toEqual([4, 6]);
    expect(up.acceptRaRaised).toBeUndefined();
    expect(sysctl(n.ns, 'net/ipv6/conf/all/forwarding')).toBe('1');
    expect(sysctl(n.ns, 'net/ipv6/conf/up0/accept_ra')).toBe('0');
  });
});
