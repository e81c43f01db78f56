// Link verbs against iproute2 as the oracle, both ways: what ferry creates or
// changes `ip -d -j link show` must see, and what `ip link` creates ferry must
// read back the same. Every test works in namespaces it made itself.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Handle } from '../../engine/handle.js';
import type { Link, LinkEvent } from '../../engine/link.js';
import { NetlinkConnection } from '../../engine/netlink/connection.js';
import { ExistsError, InvalidArgumentError, LinkNotFoundError, NetlinkError } from '../../engine/netlink/errors.js';
import { Netns, NetnsError } from '../../engine/netns/netns.js';
import { ipJson, isRoot, makeNetns, run, uniqueName } from '../support/netns.js';

/** The parts of `ip -j -d link show` these tests read. */
interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  operstate: string;
  mtu: number;
  address?: string;
  master?: string;
  txqlen?: number;
  /** The peer or parent, by name, when it is in this namespace. */
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: {
    info_kind?: string;
    info_slave_kind?: string;
    info_data?: Record<string, unknown>;
  };
}

/** Whether this kernel can make `ip link add probe0 type ARGS…` (dummy and bridge VLAN filtering are options some kernels lack). */
function kernelSupports(...type: string[]): boolean {
  const ns = uniqueName('flk-probe');
  run('ip', ['netns', 'add', ns]);
  try {
    run('ip', ['-n', ns, 'link', 'add', 'probe0', 'type', ...type]);
    return true;
  } catch {
    return false;
  } finally {
    run('ip', ['netns', 'del', ns]);
  }
}

const hasDummy = isRoot && kernelSupports('dummy');
const hasVlanFiltering = isRoot && kernelSupports('bridge', 'vlan_filtering', '0');

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A fresh namespace and a handle in it, both gone after the test. */
async function setup(): Promise<{ ns: string; h: Handle }> {
  const ns = makeNetns('flk');
  const h = await Handle.open(ns);
  cleanups.push(() => h.close());
  return { ns, h };
}

/** An open Netns for a peer namespace, closed after the test. */
function openNetns(name: string): Netns {
  const ns = Netns.open(name);
  cleanups.push(() => ns.close());
  return ns;
}

function ipLinks(ns: string): IpLink[] {
  return ipJson<IpLink[]>(ns, ['-d', 'link', 'show']);
}

function ipLink(ns: string, name: string): IpLink {
  const [link] = ipJson<IpLink[]>(ns, ['-d', 'link', 'show', 'dev', name]);
  if (link === undefined) throw new Error(`ip shows no ${name} in ${ns}`);
  return link;
}

function ipNames(ns: string): string[] {
  return ipLinks(ns)
    .map((l) => l.ifname)
    .sort();
}

/** The thrown error, for assertions on its fields. */
async function failure<T extends Error>(cls: abstract new (...args: any[]) => T, fn: () => Promise<unknown>): Promise<T> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return e as T;
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}

/**
 * Asserts, once the kernel's link watcher has settled the operstate of a link
 * just brought up, that ferry reads it as `ip` does.
 */
async function expectSameSoon(h: Handle, ns: string, name: string): Promise<void> {
  await vi.waitFor(async () => expectSame(await h.link.get(name), ipLink(ns, name)), { timeout: 3000 });
}

/** Asserts that ferry's view of a link is the one `ip` has. */
function expectSame(link: Link, ip: IpLink): void {
  expect(link.index).toBe(ip.ifindex);
  expect(link.name).toBe(ip.ifname);
  expect(link.mtu).toBe(ip.mtu);
  expect(link.mac).toBe(ip.address);
  expect(link.up).toBe(ip.flags.includes('UP'));
  expect(link.operState.toUpperCase()).toBe(ip.operstate);
  expect(link.kind).toBe(ip.linkinfo?.info_kind);
  expect(link.portKind).toBe(ip.linkinfo?.info_slave_kind);
  expect(link.linkNetnsId).toBe(ip.link_netnsid);
  if (ip.txqlen !== undefined) expect(link.txqlen).toBe(ip.txqlen);
}

describe.skipIf(!isRoot)('link verbs (needs root: creates network namespaces)', () => {
  describe('veth', () => {
    it('add with the peer in another namespace: ip sees both ends and the nsid', async () => {
      const { ns, h } = await setup();
      const peerNs = makeNetns('flk-peer');
      const link = await h.link.add({
        kind: 'veth',
        name: 'v0',
        mtu: 1400,
        up: true,
        peer: { name: 'eth0', netns: openNetns(peerNs), mac: '02:00:00:00:00:02' },
      });
      const ip = ipLink(ns, 'v0');
      expect(ip.linkinfo?.info_kind).toBe('veth');
      expect(ip.mtu).toBe(1400);
      expect(ip.flags).toContain('UP');
      expect(ip.link_netnsid).toBeTypeOf('number');
      expect(link.linkNetnsId).toBe(ip.link_netnsid);
      await expectSameSoon(h, ns, 'v0');

      const peer = ipLink(peerNs, 'eth0');
      expect(peer.linkinfo?.info_kind).toBe('veth');
      expect(peer.address).toBe('02:00:00:00:00:02');
      expect(peer.mtu).toBe(1400); // the peer inherits the link's mtu when it has none of its own
      expect(peer.link_index).toBe(link.index);
      expect(link.parent).toBe(peer.ifindex);
      expect(ipNames(ns)).toEqual(['lo', 'v0']);

      // The other end, read through a handle in the peer namespace.
      const hp = await Handle.open(peerNs);
      cleanups.push(() => hp.close());
      const eth0 = await hp.link.get('eth0');
      expectSame(eth0, peer);
      expect(eth0.parent).toBe(link.index);
    });

    it('add with both ends here: ip shows each as the other one\'s link', async () => {
      const { ns, h } = await setup();
      const a = await h.link.add({ kind: 'veth', name: 'va', peer: { name: 'vb', mtu: 9000 }, mtu: 1500 });
      const b = await h.link.get('vb');
      expect(ipLink(ns, 'va').link).toBe('vb');
      expect(ipLink(ns, 'vb').link).toBe('va');
      expect(ipLink(ns, 'vb').mtu).toBe(9000);
      expect(a.parent).toBe(b.index);
      expect(b.parent).toBe(a.index);
      expect(a.linkNetnsId).toBeUndefined();
      expectSame(a, ipLink(ns, 'va'));
      expectSame(b, ipLink(ns, 'vb'));
    });

    it('made with ip (peer in another namespace) is read by ferry', async () => {
      const { ns, h } = await setup();
      const peerNs = makeNetns('flk-peer');
      run('ip', ['-n', ns, 'link', 'add', 'host0', 'mtu', '1450', 'type', 'veth', 'peer', 'name', 'ctr0', 'netns', peerNs]);
      const link = await h.link.get('host0');
      const ip = ipLink(ns, 'host0');
      expectSame(link, ip);
      expect(link.kind).toBe('veth');
      expect(link.linkNetnsId).toBe(ip.link_netnsid);
      expect(link.parent).toBe(ipLink(peerNs, 'ctr0').ifindex);
    });

    it('deleting one end removes the other, across namespaces', async () => {
      const { ns, h } = await setup();
      const peerNs = makeNetns('flk-peer');
      await h.link.add({ kind: 'veth', name: 'v0', peer: { name: 'eth0', netns: openNetns(peerNs) } });
      expect(ipNames(peerNs)).toEqual(['eth0', 'lo']);
      await h.link.delete('v0');
      expect(ipNames(ns)).toEqual(['lo']);
      expect(ipNames(peerNs)).toEqual(['lo']);
    });

    it('a peer name taken in the peer namespace fails and leaves neither end behind', async () => {
      const { ns, h } = await setup();
      const peerNs = makeNetns('flk-peer');
      run('ip', ['-n', peerNs, 'link', 'add', 'eth0', 'type', 'bridge']);
      const peerBefore = ipLink(peerNs, 'eth0');
      const e = await failure(NetlinkError, () => h.link.add({ kind: 'veth', name: 'v1', peer: { name: 'eth0', netns: openNetns(peerNs) } }));
      expect(e.code).toBe('EEXIST');
      expect(e.message).toContain('"v1"');
      expect(ipNames(ns)).toEqual(['lo']);
      expect(ipNames(peerNs)).toEqual(['eth0', 'lo']);
      // The existing eth0 is untouched.
      expect(ipLink(peerNs, 'eth0')).toMatchObject({ ifindex: peerBefore.ifindex, linkinfo: { info_kind: 'bridge' } });
      expect(await h.link.find('v1')).toBeUndefined();
    });

    it('a peer name equal to an existing link here fails and leaves neither end behind', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      const e = await failure(NetlinkError, () => h.link.add({ kind: 'veth', name: 'v2', peer: { name: 'br0' } }));
      expect(e.code).toBe('EEXIST');
      expect(ipNames(ns)).toEqual(['br0', 'lo']);
    });

    it('a name taken here fails before the peer is made in the other namespace', async () => {
      const { ns, h } = await setup();
      const peerNs = makeNetns('flk-peer');
      run('ip', ['-n', ns, 'link', 'add', 'v0', 'type', 'bridge']);
      await failure(ExistsError, () => h.link.add({ kind: 'veth', name: 'v0', peer: { name: 'eth0', netns: openNetns(peerNs) } }));
      expect(ipNames(peerNs)).toEqual(['lo']);
      expect(ipLink(ns, 'v0').linkinfo?.info_kind).toBe('bridge');
    });

    it('a peer name over 15 bytes is refused before anything is sent', async () => {
      const { ns, h } = await setup();
      const e = await failure(InvalidArgumentError, () => h.link.add({ kind: 'veth', name: 'v0', peer: { name: 'p'.repeat(16) } }));
      expect(e.errno).toBe(22);
      expect(ipNames(ns)).toEqual(['lo']);
    });
  });

  describe('bridge', () => {
    it('add: ip sees the kind, mtu, mac, txqlen and bridge options', async () => {
      const { ns, h } = await setup();
      const link = await h.link.add({ kind: 'bridge', name: 'br0', mtu: 1450, mac: '02:11:22:33:44:55', txqlen: 500, stp: true });
      const ip = ipLink(ns, 'br0');
      expect(ip.linkinfo?.info_kind).toBe('bridge');
      expect(ip.linkinfo?.info_data).toMatchObject({ stp_state: 1 });
      expect(ip).toMatchObject({ mtu: 1450, address: '02:11:22:33:44:55', txqlen: 500 });
      expect(ip.flags).not.toContain('UP');
      expectSame(link, ip);
    });

    it('add with STP off', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0', stp: false });
      expect(ipLink(ns, 'br0').linkinfo?.info_data).toMatchObject({ stp_state: 0 });
    });

    it.skipIf(!hasVlanFiltering)('add with VLAN filtering on and off (skipped: kernel without CONFIG_BRIDGE_VLAN_FILTERING)', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0', vlanFiltering: true });
      await h.link.add({ kind: 'bridge', name: 'br1', vlanFiltering: false });
      expect(ipLink(ns, 'br0').linkinfo?.info_data).toMatchObject({ vlan_filtering: 1 });
      expect(ipLink(ns, 'br1').linkinfo?.info_data).toMatchObject({ vlan_filtering: 0 });
    });

    it.skipIf(hasVlanFiltering)('VLAN filtering on a kernel without it fails with EOPNOTSUPP and makes nothing', async () => {
      const { ns, h } = await setup();
      const e = await failure(NetlinkError, () => h.link.add({ kind: 'bridge', name: 'br0', vlanFiltering: true }));
      expect(e).toMatchObject({ errno: 95, code: 'EOPNOTSUPP' });
      expect(ipNames(ns)).toEqual(['lo']);
    });

    it('made with ip is read by ferry', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'cni0', 'mtu', '1400', 'type', 'bridge']);
      run('ip', ['-n', ns, 'link', 'set', 'cni0', 'up']);
      const link = await h.link.get('cni0');
      await expectSameSoon(h, ns, 'cni0');
      expect(link).toMatchObject({ kind: 'bridge', up: true, mtu: 1400 });
    });
  });

  describe('vxlan', () => {
    it('add: ip sees VNI, local, port, learning off and the underlay device', async () => {
      const { ns, h } = await setup();
      const underlay = await h.link.add({ kind: 'bridge', name: 'ul0' });
      const link = await h.link.add({ kind: 'vxlan', name: 'vxlan.calico', vni: 4096, local: '10.5.0.1', port: 4789, dev: 'ul0', mtu: 1450 });
      const ip = ipLink(ns, 'vxlan.calico');
      expect(ip.linkinfo?.info_kind).toBe('vxlan');
      expect(ip.linkinfo?.info_data).toMatchObject({ id: 4096, local: '10.5.0.1', port: 4789, learning: false, link: 'ul0' });
      expect(ip.mtu).toBe(1450);
      expectSame(link, ip);
      expect(link.vxlan).toEqual({ vni: 4096, local: '10.5.0.1', port: 4789, learning: false, dev: underlay.index });
    });

    it('add with learning on, an IPv6 local and no port: the kernel default port 8472', async () => {
      const { ns, h } = await setup();
      const link = await h.link.add({ kind: 'vxlan', name: 'vx6', vni: 1, local: 'fd00::1', learning: true });
      const data = ipLink(ns, 'vx6').linkinfo?.info_data;
      expect(data).toMatchObject({ id: 1, local6: 'fd00::1', learning: true, port: 8472 });
      expect(data?.link).toBeUndefined();
      expect(link.vxlan).toEqual({ vni: 1, local: 'fd00::1', port: 8472, learning: true });
    });

    it('made with ip is read by ferry', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'ul0', 'type', 'bridge']);
      run('ip', ['-n', ns, 'link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'local', '192.168.0.10', 'dstport', '8472', 'nolearning', 'dev', 'ul0']);
      run('ip', ['-n', ns, 'link', 'add', 'vxg', 'type', 'vxlan', 'id', '16777215', 'group', '239.1.1.1', 'dstport', '4789', 'dev', 'ul0']);
      const ul0 = await h.link.get('ul0');
      const flannel = await h.link.get('flannel.1');
      expectSame(flannel, ipLink(ns, 'flannel.1'));
      expect(flannel.vxlan).toEqual({ vni: 1, local: '192.168.0.10', port: 8472, learning: false, dev: ul0.index });
      const vxg = await h.link.get('vxg');
      expect(vxg.vxlan).toEqual({ vni: 16777215, group: '239.1.1.1', port: 4789, learning: true, dev: ul0.index });
    });

    it('a VNI over 24 bits, a bad port or a bad local is refused and nothing is made', async () => {
      const { ns, h } = await setup();
      await failure(InvalidArgumentError, () => h.link.add({ kind: 'vxlan', name: 'vx0', vni: 1 << 24 }));
      await failure(InvalidArgumentError, () => h.link.add({ kind: 'vxlan', name: 'vx0', vni: 1, port: 0 }));
      const e = await failure(InvalidArgumentError, () => h.link.add({ kind: 'vxlan', name: 'vx0', vni: 1, local: '10.0.0.1/24' }));
      expect(e.message).toContain('10.0.0.1/24');
      expect(ipNames(ns)).toEqual(['lo']);
    });

    it('a missing underlay device is a LinkNotFoundError and nothing is made', async () => {
      const { ns, h } = await setup();
      const e = await failure(LinkNotFoundError, () => h.link.add({ kind: 'vxlan', name: 'vx0', vni: 1, dev: 'nope0' }));
      expect(e.message).toContain('"nope0"');
      expect(ipNames(ns)).toEqual(['lo']);
    });
  });

  describe.skipIf(!hasDummy)('dummy (skipped: this kernel has no dummy link kind)', () => {
    it('add: ip sees a dummy', async () => {
      const { ns, h } = await setup();
      const link = await h.link.add({ kind: 'dummy', name: 'dm0', mtu: 9000, up: true });
      const ip = ipLink(ns, 'dm0');
      expect(ip.linkinfo?.info_kind).toBe('dummy');
      expect(ip.flags).toContain('UP');
      expect(link.index).toBe(ip.ifindex);
      await expectSameSoon(h, ns, 'dm0');
    });

    it('made with ip is read by ferry', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'dm1', 'type', 'dummy']);
      expectSame(await h.link.get('dm1'), ipLink(ns, 'dm1'));
    });
  });

  describe.skipIf(hasDummy)('dummy where the kernel lacks it', () => {
    it('fails with EOPNOTSUPP and the kernel\'s reason, and nothing is made', async () => {
      const { ns, h } = await setup();
      const e = await failure(NetlinkError, () => h.link.add({ kind: 'dummy', name: 'dm0' }));
      expect(e).toMatchObject({ errno: 95, code: 'EOPNOTSUPP' });
      if (e.extack !== undefined) expect(e.message).toContain(e.extack);
      expect(ipNames(ns)).toEqual(['lo']);
    });
  });

  describe('list and get', () => {
    it('list matches `ip -d link show`, link by link', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      run('ip', ['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
      run('ip', ['-n', ns, 'link', 'set', 'vb', 'master', 'br0']);
      const links = await h.link.list();
      const ip = ipLinks(ns);
      expect(links.map((l) => l.index)).toEqual(ip.map((l) => l.ifindex));
      for (const [i, link] of links.entries()) expectSame(link, ip[i]!);
      expect(links.find((l) => l.name === 'lo')?.kind).toBeUndefined();
    });

    it('list reads a dump that spans many datagrams', async () => {
      const { ns, h } = await setup();
      const batch = Array.from({ length: 150 }, (_, i) => `link add br${i} type bridge`).join('\n');
      execFileSync('ip', ['-n', ns, '-batch', '-'], { input: `${batch}\n` });
      const links = await h.link.list();
      expect(links.length).toBe(151);
      expect(links.map((l) => l.index)).toEqual(ipLinks(ns).map((l) => l.ifindex));
      expect(new Set(links.map((l) => l.name)).size).toBe(151);
    });

    it('concurrent requests on one handle each get their own answer', async () => {
      const { h } = await setup();
      await Promise.all(Array.from({ length: 8 }, (_, i) => h.link.add({ kind: 'bridge', name: `br${i}` })));
      const got = await Promise.all(Array.from({ length: 8 }, (_, i) => h.link.get(`br${i}`)));
      expect(got.map((l) => l.name)).toEqual(Array.from({ length: 8 }, (_, i) => `br${i}`));
      const mixed = await Promise.allSettled([h.link.get('br0'), h.link.get('nope0'), h.link.list(), h.link.get('br7')]);
      expect(mixed.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect((mixed[3] as PromiseFulfilledResult<Link>).value.name).toBe('br7');
    });

    it('get by name, by index and by Link agree', async () => {
      const { h } = await setup();
      const byName = await h.link.get('lo');
      expect(await h.link.get(byName.index)).toEqual(byName);
      expect(await h.link.get(byName)).toEqual(byName);
      expect(await h.link.indexOf('lo')).toBe(byName.index);
      expect(await h.link.find('nope0')).toBeUndefined();
    });
  });

  describe('set', () => {
    it('setUp and setDown toggle IFF_UP as ip sees it', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0' });
      await h.link.setUp('br0');
      expect(ipLink(ns, 'br0').flags).toContain('UP');
      expect((await h.link.get('br0')).up).toBe(true);
      await h.link.setDown('br0');
      expect(ipLink(ns, 'br0').flags).not.toContain('UP');
      expect((await h.link.get('br0')).up).toBe(false);
      // By index too.
      const idx = await h.link.indexOf('br0');
      await h.link.setUp(idx);
      expect(ipLink(ns, 'br0').flags).toContain('UP');
    });

    it('setMtu and setMac are what ip shows', async () => {
      const { ns, h } = await setup();
      const link = await h.link.add({ kind: 'veth', name: 'va', peer: { name: 'vb' } });
      await h.link.setMtu('va', 1280);
      await h.link.setMac(link, '02:aa:bb:cc:dd:ee');
      expect(ipLink(ns, 'va')).toMatchObject({ mtu: 1280, address: '02:aa:bb:cc:dd:ee' });
      expect(ipLink(ns, 'vb').mtu).toBe(1500);
      expectSame(await h.link.get('va'), ipLink(ns, 'va'));
    });

    it('setMtu and setMac refuse bad values before sending', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0' });
      await failure(InvalidArgumentError, () => h.link.setMtu('br0', 67));
      await failure(InvalidArgumentError, () => h.link.setMac('br0', '02:aa:bb:cc:dd'));
      expect(ipLink(ns, 'br0').mtu).toBe(1500);
    });

    it('setMaster enslaves to a bridge and null releases it (`nomaster`)', async () => {
      const { ns, h } = await setup();
      const br = await h.link.add({ kind: 'bridge', name: 'br0' });
      await h.link.add({ kind: 'veth', name: 'va', peer: { name: 'vb' } });
      await h.link.setMaster('va', 'br0');
      expect(ipLink(ns, 'va').master).toBe('br0');
      expect(ipLink(ns, 'va').linkinfo?.info_slave_kind).toBe('bridge');
      const va = await h.link.get('va');
      expect(va.master).toBe(br.index);
      expect(va.portKind).toBe('bridge');
      await h.link.setMaster(va, null);
      expect(ipLink(ns, 'va').master).toBeUndefined();
      expect((await h.link.get('va')).master).toBeUndefined();
    });

    it('add with master and up does both in one request', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0' });
      await h.link.add({ kind: 'veth', name: 'va', peer: { name: 'vb' }, master: 'br0', up: true });
      expect(ipLink(ns, 'va').master).toBe('br0');
      expect(ipLink(ns, 'va').flags).toContain('UP');
    });

    it('ip link set master is seen by ferry', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      run('ip', ['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
      run('ip', ['-n', ns, 'link', 'set', 'va', 'master', 'br0']);
      expect((await h.link.get('va')).master).toBe(ipLink(ns, 'br0').ifindex);
    });

    it('setNetns moves the link to the other namespace', async () => {
      const { ns, h } = await setup();
      const otherNs = makeNetns('flk-peer');
      await h.link.add({ kind: 'veth', name: 'm0', peer: { name: 'm1' } });
      await h.link.setNetns('m1', openNetns(otherNs));
      expect(ipNames(ns)).toEqual(['lo', 'm0']);
      expect(ipNames(otherNs)).toEqual(['lo', 'm1']);
      expect(await h.link.find('m1')).toBeUndefined();
      const m0 = await h.link.get('m0');
      expect(m0.linkNetnsId).toBe(ipLink(ns, 'm0').link_netnsid);
      expect(m0.linkNetnsId).toBeTypeOf('number');
    });

    it('setName renames, and ip sees only the new name', async () => {
      const { ns, h } = await setup();
      const before = await h.link.add({ kind: 'bridge', name: 'br0' });
      await h.link.setName('br0', 'cbr0');
      expect(ipNames(ns)).toEqual(['cbr0', 'lo']);
      expect((await h.link.get('cbr0')).index).toBe(before.index);
      const e = await failure(InvalidArgumentError, () => h.link.setName('cbr0', 'x'.repeat(16)));
      expect(e.errno).toBe(22);
      expect(ipNames(ns)).toEqual(['cbr0', 'lo']);
    });

    it('setName to a name in use fails with EEXIST', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0' });
      await h.link.add({ kind: 'bridge', name: 'br1' });
      await failure(ExistsError, () => h.link.setName('br0', 'br1'));
      expect(ipNames(ns)).toEqual(['br0', 'br1', 'lo']);
    });

    it('delete removes a link ip made', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      await h.link.delete('br0');
      expect(ipNames(ns)).toEqual(['lo']);
    });
  });

  describe('subscribe', () => {
    it('delivers new and delete events for a link made and removed', async () => {
      const { h } = await setup();
      const events: LinkEvent[] = [];
      const errors: Error[] = [];
      const sub = await h.link.subscribe(
        (e) => events.push(e),
        (e) => errors.push(e),
      );
      cleanups.push(() => sub.close());
      const kind = hasDummy ? 'dummy' : 'bridge';
      const made = await h.link.add({ kind, name: 'ev0' });
      await vi.waitFor(() => expect(events.some((e) => e.action === 'new' && e.link.name === 'ev0')).toBe(true), { timeout: 5000 });
      await h.link.delete('ev0');
      await vi.waitFor(() => expect(events.some((e) => e.action === 'delete' && e.link.name === 'ev0')).toBe(true), { timeout: 5000 });
      const created = events.find((e) => e.action === 'new' && e.link.name === 'ev0')!;
      expect(created.link).toMatchObject({ index: made.index, kind });
      expect(events.find((e) => e.action === 'delete')!.link.index).toBe(made.index);
      expect(errors).toEqual([]);
    });

    it('sees no events from another namespace and none after close', async () => {
      const { h } = await setup();
      const other = await setup();
      const events: LinkEvent[] = [];
      const sub = await h.link.subscribe(
        (e) => events.push(e),
        () => undefined,
      );
      await other.h.link.add({ kind: 'bridge', name: 'elsewhere' });
      await h.link.add({ kind: 'bridge', name: 'here0' });
      await vi.waitFor(() => expect(events.some((e) => e.link.name === 'here0')).toBe(true), { timeout: 5000 });
      expect(events.some((e) => e.link.name === 'elsewhere')).toBe(false);
      sub.close();
      const seen = events.length;
      await h.link.add({ kind: 'bridge', name: 'after0' });
      await new Promise((r) => setTimeout(r, 100));
      expect(events.length).toBe(seen);
    });
  });

  describe('errors', () => {
    it('a missing link is LinkNotFoundError ENODEV naming the link and the namespace', async () => {
      const { ns, h } = await setup();
      const e = await failure(LinkNotFoundError, () => h.link.get('nope0'));
      expect(e).toMatchObject({ errno: 19, code: 'ENODEV', name: 'LinkNotFoundError' });
      expect(e.message).toContain('"nope0"');
      expect(e.message).toContain(ns);
      expect(e.object).toContain(ns);
    });

    it('every verb on a missing link is LinkNotFoundError', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0' });
      const calls: Array<() => Promise<unknown>> = [
        () => h.link.get(9999),
        () => h.link.setUp('nope0'),
        () => h.link.setDown(9999),
        () => h.link.setMtu('nope0', 1400),
        () => h.link.setMac('nope0', '02:00:00:00:00:01'),
        () => h.link.setMaster('nope0', 'br0'),
        () => h.link.setMaster('br0', 'nope0'),
        () => h.link.setName('nope0', 'x0'),
        () => h.link.delete('nope0'),
        () => h.link.delete(9999),
      ];
      for (const call of calls) {
        const e = await failure(LinkNotFoundError, call);
        expect(e).toMatchObject({ errno: 19, code: 'ENODEV' });
        expect(e.message).toContain(ns);
      }
      expect(ipNames(ns)).toEqual(['br0', 'lo']);
    });

    it('a name over 15 bytes is InvalidArgumentError EINVAL and nothing is created', async () => {
      const { ns, h } = await setup();
      const request = vi.spyOn(NetlinkConnection.prototype, 'request');
      cleanups.push(() => request.mockRestore());
      const e = await failure(InvalidArgumentError, () => h.link.add({ kind: 'bridge', name: 'b'.repeat(16) }));
      expect(e).toMatchObject({ errno: 22, code: 'EINVAL' });
      expect(e.message).toContain('b'.repeat(16));
      expect(request).not.toHaveBeenCalled();
      expect(ipNames(ns)).toEqual(['lo']);
    });

    it('a duplicate name is ExistsError EEXIST, with the kernel\'s text when it gives one', async () => {
      const { ns, h } = await setup();
      await h.link.add({ kind: 'bridge', name: 'br0' });
      const e = await failure(ExistsError, () => h.link.add({ kind: 'bridge', name: 'br0' }));
      expect(e).toMatchObject({ errno: 17, code: 'EEXIST', op: 'ip link add type bridge' });
      expect(e.message).toContain('"br0"');
      expect(e.message).toContain(ns);
      if (e.extack !== undefined) expect(e.message).toContain(`kernel says "${e.extack}"`);
      expect(ipNames(ns)).toEqual(['br0', 'lo']);
    });

    it('a template name (`br%d`) is refused, so nothing is made under another name', async () => {
      const { ns, h } = await setup();
      await failure(InvalidArgumentError, () => h.link.add({ kind: 'bridge', name: 'br%d' }));
      expect(ipNames(ns)).toEqual(['lo']);
      await h.link.add({ kind: 'bridge', name: 'br1' });
      await failure(InvalidArgumentError, () => h.link.setName('br1', 'eth%d'));
      expect(ipNames(ns)).toEqual(['br1', 'lo']);
    });

    it('a handle on a missing namespace fails with NetnsError ENOENT', async () => {
      const missing = uniqueName('flk-missing');
      const e = await failure(NetnsError, () => Handle.open(missing));
      expect(e).toMatchObject({ code: 'ENOENT' });
      expect(e.message).toContain(missing);
    });

    it('a closed handle refuses requests with EBADF', async () => {
      const ns = makeNetns('flk');
      const h = await Handle.open(ns);
      h.close();
      const e = await failure(NetlinkError, () => h.link.list());
      expect(e.code).toBe('EBADF');
    });

    it('the same name made with ip is a duplicate too', async () => {
      const { ns, h } = await setup();
      run('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      await failure(ExistsError, () => h.link.add({ kind: 'veth', name: 'br0', peer: { name: 'p0' } }));
      expect(ipNames(ns)).toEqual(['br0', 'lo']);
    });

    it('moving a netns-local device (a bridge) keeps the kernel\'s errno', async () => {
      const { ns, h } = await setup();
      const otherNs = makeNetns('flk-peer');
      await h.link.add({ kind: 'bridge', name: 'br0' });
      const e = await failure(NetlinkError, () => h.link.setNetns('br0', openNetns(otherNs)));
      expect(e.errno).toBeGreaterThan(0);
      expect(e.message).toContain('"br0"');
      expect(ipNames(ns)).toEqual(['br0', 'lo']);
      expect(ipNames(otherNs)).toEqual(['lo']);
    });
  });
});
