// Address verbs against `ip -j addr show` as the oracle, both ways, in
// namespaces the tests made themselves.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Address } from '../../engine/addr.js';
import { Handle } from '../../engine/handle.js';
import { NetlinkConnection } from '../../engine/netlink/connection.js';
import { IFA_F_NODAD, IFA_F_PERMANENT, RT_SCOPE_LINK } from '../../engine/netlink/constants.js';
import { ExistsError, InvalidArgumentError, LinkNotFoundError, NetlinkError, NotFoundError } from '../../engine/netlink/errors.js';
import { ipJson, isRoot, makeNetns, run } from '../support/netns.js';

/** The parts of `ip -j addr show` these tests read. */
interface IpAddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  address?: string;
  prefixlen: number;
  scope: string;
  label?: string;
  nodad?: boolean;
  tentative?: boolean;
}

interface IpAddrLink {
  ifindex: number;
  ifname: string;
  addr_info: IpAddrInfo[];
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A fresh namespace with two bridges (eth0, eth1) and a handle in it. */
async function setup(): Promise<{ ns: string; h: Handle }> {
  const ns = makeNetns('fad');
  run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'bridge']);
  run('ip', ['-n', ns, 'link', 'add', 'eth1', 'type', 'bridge']);
  const h = await Handle.open(ns);
  cleanups.push(() => h.close());
  return { ns, h };
}

/** `ip -j [-4|-6] addr show [dev DEV]` as sorted `ifindex cidr` keys, one per address. */
function ipAddrs(ns: string, filter: { dev?: string; family?: 4 | 6 } = {}): string[] {
  const family = filter.family === undefined ? [] : [`-${filter.family}`];
  const dev = filter.dev === undefined ? [] : ['dev', filter.dev];
  return ipJson<IpAddrLink[]>(ns, [...family, 'addr', 'show', ...dev])
    .flatMap((l) => l.addr_info.map((a) => `${l.ifindex} ${a.local}/${a.prefixlen}`))
    .sort();
}

function ipAddrInfo(ns: string, dev: string, local: string): IpAddrInfo | undefined {
  const [link] = ipJson<IpAddrLink[]>(ns, ['addr', 'show', 'dev', dev]);
  return link?.addr_info.find((a) => a.local === local);
}

const keys = (addrs: Address[]): string[] => addrs.map((a) => `${a.index} ${a.cidr}`).sort();

async function failure<T extends Error>(cls: abstract new (...args: any[]) => T, fn: () => Promise<unknown>): Promise<T> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return e as T;
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}

describe.skipIf(!isRoot)('addr verbs (needs root: creates network namespaces)', () => {
  it('add IPv4: ip shows the address, and ferry lists it the same', async () => {
    const { ns, h } = await setup();
    await h.addr.add('eth0', '10.244.1.1/24');
    expect(ipAddrInfo(ns, 'eth0', '10.244.1.1')).toMatchObject({ family: 'inet', prefixlen: 24, scope: 'global', label: 'eth0' });
    expect(ipAddrInfo(ns, 'eth0', '10.244.1.1')?.address).toBeUndefined(); // no peer
    const [a] = await h.addr.list({ dev: 'eth0' });
    expect(a).toMatchObject({ family: 4, address: '10.244.1.1', prefixLen: 24, cidr: '10.244.1.1/24', scope: 0, label: 'eth0' });
    expect(a!.peer).toBeUndefined();
    expect(a!.flags & IFA_F_PERMANENT).toBe(IFA_F_PERMANENT);
    expect(keys(await h.addr.list())).toEqual(ipAddrs(ns));
  });

  it('add IPv6 with noDad: ip shows it nodad and not tentative', async () => {
    const { ns, h } = await setup();
    await h.addr.add('eth0', 'fd00:10::1/64', { noDad: true });
    const info = ipAddrInfo(ns, 'eth0', 'fd00:10::1');
    expect(info).toMatchObject({ family: 'inet6', prefixlen: 64, scope: 'global', nodad: true });
    expect(info?.tentative).toBeUndefined();
    const [a] = await h.addr.list({ dev: 'eth0', family: 6 });
    expect(a).toMatchObject({ family: 6, address: 'fd00:10::1', prefixLen: 64, cidr: 'fd00:10::1/64' });
    expect(a!.flags & IFA_F_NODAD).toBe(IFA_F_NODAD);
  });

  it('add with peer, label and scope: ip shows each', async () => {
    const { ns, h } = await setup();
    await h.addr.add('eth0', '10.1.0.1/32', { peer: '10.1.0.2' });
    await h.addr.add('eth0', '10.2.0.1/24', { label: 'eth0:lb' });
    await h.addr.add('eth0', '169.254.1.1/16', { scope: RT_SCOPE_LINK });
    expect(ipAddrInfo(ns, 'eth0', '10.1.0.1')).toMatchObject({ address: '10.1.0.2', prefixlen: 32 });
    expect(ipAddrInfo(ns, 'eth0', '10.2.0.1')).toMatchObject({ label: 'eth0:lb' });
    expect(ipAddrInfo(ns, 'eth0', '169.254.1.1')).toMatchObject({ scope: 'link' });
    const byAddress = new Map((await h.addr.list({ dev: 'eth0' })).map((a) => [a.address, a]));
    expect(byAddress.get('10.1.0.1')).toMatchObject({ peer: '10.1.0.2', cidr: '10.1.0.1/32' });
    expect(byAddress.get('10.2.0.1')).toMatchObject({ label: 'eth0:lb' });
    expect(byAddress.get('169.254.1.1')).toMatchObject({ scope: RT_SCOPE_LINK });
  });

  it('replace creates when absent and is idempotent when present', async () => {
    const { ns, h } = await setup();
    await h.addr.replace('eth0', '10.3.0.1/24');
    await h.addr.replace('eth0', '10.3.0.1/24');
    await h.addr.replace('eth0', 'fd00:3::1/64', { noDad: true });
    await h.addr.replace('eth0', 'fd00:3::1/64', { noDad: true });
    const eth0 = (await h.link.get('eth0')).index;
    expect(ipAddrs(ns, { dev: 'eth0' })).toEqual([`${eth0} 10.3.0.1/24`, `${eth0} fd00:3::1/64`]);
    expect(keys(await h.addr.list({ dev: 'eth0' }))).toEqual(ipAddrs(ns, { dev: 'eth0' }));
  });

  it('replace of an address ip added keeps a single address, as `ip addr replace` does', async () => {
    const { ns, h } = await setup();
    run('ip', ['-n', ns, 'addr', 'add', '10.3.0.1/24', 'dev', 'eth0']);
    await h.addr.replace('eth0', '10.3.0.1/24');
    await h.addr.replace('eth0', '10.3.0.1/25'); // another prefix is another address
    expect(ipAddrs(ns, { dev: 'eth0' })).toHaveLength(2);
    expect(keys(await h.addr.list({ dev: 'eth0' }))).toEqual(ipAddrs(ns, { dev: 'eth0' }));
  });

  it('delete removes v4 and v6 addresses as ip sees it', async () => {
    const { ns, h } = await setup();
    await h.addr.add('eth0', '10.4.0.1/24');
    await h.addr.add('eth0', 'fd00:4::1/64', { noDad: true });
    await h.addr.delete('eth0', '10.4.0.1/24');
    expect(ipAddrInfo(ns, 'eth0', '10.4.0.1')).toBeUndefined();
    await h.addr.delete('eth0', 'fd00:4::1/64');
    expect(ipAddrs(ns, { dev: 'eth0' })).toEqual([]);
    expect(await h.addr.list({ dev: 'eth0' })).toEqual([]);
  });

  it('list filters by dev and by family, as `ip addr show dev X -4/-6`', async () => {
    const { ns, h } = await setup();
    await h.addr.add('eth0', '10.5.0.1/24');
    await h.addr.add('eth0', 'fd00:5::1/64', { noDad: true });
    await h.addr.add('eth1', '10.6.0.1/24');
    await h.addr.add('eth1', 'fd00:6::1/64', { noDad: true });
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']); // 127.0.0.1/8 and ::1/128

    expect(keys(await h.addr.list())).toEqual(ipAddrs(ns));
    expect(keys(await h.addr.list({ dev: 'eth0' }))).toEqual(ipAddrs(ns, { dev: 'eth0' }));
    expect(keys(await h.addr.list({ dev: 'eth1', family: 4 }))).toEqual(ipAddrs(ns, { dev: 'eth1', family: 4 }));
    expect(keys(await h.addr.list({ family: 6 }))).toEqual(ipAddrs(ns, { family: 6 }));
    expect(keys(await h.addr.list({ family: 4 }))).toEqual(ipAddrs(ns, { family: 4 }));
    const eth1 = await h.link.get('eth1');
    expect(keys(await h.addr.list({ dev: eth1.index, family: 6 }))).toEqual([`${eth1.index} fd00:6::1/64`]);
    expect(keys(await h.addr.list({ dev: eth1 }))).toEqual(ipAddrs(ns, { dev: 'eth1' }));
  });

  it('addresses added with ip are read by ferry', async () => {
    const { ns, h } = await setup();
    run('ip', ['-n', ns, 'addr', 'add', '192.168.7.9/20', 'dev', 'eth1', 'label', 'eth1:x']);
    run('ip', ['-n', ns, 'addr', 'add', '10.7.0.1', 'peer', '10.7.0.2/32', 'dev', 'eth1']);
    run('ip', ['-n', ns, 'addr', 'add', 'fd00:7::9/80', 'dev', 'eth1', 'nodad']);
    const eth1 = (await h.link.get('eth1')).index;
    const list = await h.addr.list({ dev: 'eth1' });
    expect(keys(list)).toEqual([`${eth1} 10.7.0.1/32`, `${eth1} 192.168.7.9/20`, `${eth1} fd00:7::9/80`]);
    const byAddress = new Map(list.map((a) => [a.address, a]));
    expect(byAddress.get('192.168.7.9')).toMatchObject({ label: 'eth1:x', family: 4 });
    expect(byAddress.get('10.7.0.1')).toMatchObject({ peer: '10.7.0.2' });
    expect(byAddress.get('fd00:7::9')!.flags & IFA_F_NODAD).toBe(IFA_F_NODAD);
  });

  it('a duplicate address is ExistsError EEXIST with the kernel\'s text', async () => {
    const { ns, h } = await setup();
    await h.addr.add('eth0', '10.8.0.1/24');
    const e = await failure(ExistsError, () => h.addr.add('eth0', '10.8.0.1/24'));
    expect(e).toMatchObject({ errno: 17, code: 'EEXIST', op: 'ip addr add' });
    expect(e.message).toContain('10.8.0.1/24');
    expect(e.message).toContain('"eth0"');
    expect(e.message).toContain(ns);
    if (e.extack !== undefined) expect(e.message).toContain(`kernel says "${e.extack}"`);
    expect(e.extack).toBeTypeOf('string'); // "ipv4: Address already assigned" since Linux 5.x
    await h.addr.add('eth0', 'fd00:8::1/64', { noDad: true });
    const e6 = await failure(ExistsError, () => h.addr.add('eth0', 'fd00:8::1/64', { noDad: true }));
    expect(e6.errno).toBe(17);
  });

  it.each(['10.0.0.1', '10.0.0.300/24', '10.0.0.1/33', 'fd00::1/129', '1.2.3/8'])(
    'an invalid CIDR %j is InvalidArgumentError naming it, and nothing is sent',
    async (cidr) => {
      const { ns, h } = await setup();
      const request = vi.spyOn(NetlinkConnection.prototype, 'request');
      cleanups.push(() => request.mockRestore());
      for (const verb of [() => h.addr.add('eth0', cidr), () => h.addr.replace('eth0', cidr), () => h.addr.delete('eth0', cidr)]) {
        const e = await failure(InvalidArgumentError, verb);
        expect(e).toMatchObject({ errno: 22, code: 'EINVAL' });
        expect(e.message).toContain(`"${cidr}"`);
      }
      expect(request).not.toHaveBeenCalled();
      expect(ipAddrs(ns, { dev: 'eth0' })).toEqual([]);
    },
  );

  it('an invalid peer is refused before anything is sent', async () => {
    const { ns, h } = await setup();
    const e = await failure(InvalidArgumentError, () => h.addr.add('eth0', '10.9.0.1/32', { peer: '10.9.0.2/32' }));
    expect(e.message).toContain('10.9.0.2/32');
    expect(ipAddrs(ns, { dev: 'eth0' })).toEqual([]);
  });

  it('deleting a missing address is NotFoundError EADDRNOTAVAIL (v4 and v6)', async () => {
    const { h } = await setup();
    await h.addr.add('eth0', '10.10.0.1/24');
    const e = await failure(NotFoundError, () => h.addr.delete('eth0', '10.10.0.2/24'));
    expect(e).toMatchObject({ errno: 99, code: 'EADDRNOTAVAIL', op: 'ip addr del' });
    expect(e.message).toContain('10.10.0.2/24');
    const e6 = await failure(NotFoundError, () => h.addr.delete('eth0', 'fd00:10::2/64'));
    expect(e6).toMatchObject({ errno: 99, code: 'EADDRNOTAVAIL' });
    // The address that exists is untouched.
    expect((await h.addr.list({ dev: 'eth0' })).map((a) => a.cidr)).toEqual(['10.10.0.1/24']);
  });

  it('an address on a missing link is LinkNotFoundError naming the address and the link', async () => {
    const { ns, h } = await setup();
    for (const [op, verb] of [
      ['ip addr add', () => h.addr.add('nope0', '10.11.0.1/24')],
      ['ip addr replace', () => h.addr.replace('nope0', '10.11.0.1/24')],
      ['ip addr del', () => h.addr.delete('nope0', '10.11.0.1/24')],
    ] as const) {
      const e = await failure(LinkNotFoundError, verb);
      expect(e).toMatchObject({ errno: 19, code: 'ENODEV', op });
      expect(e.message).toContain('10.11.0.1/24');
      expect(e.message).toContain('"nope0"');
      expect(e.message).toContain(ns);
    }
    const listed = await failure(LinkNotFoundError, () => h.addr.list({ dev: 'nope0' }));
    expect(listed.message).toContain('"nope0"');
    const e = await failure(LinkNotFoundError, () => h.addr.add(9999, '10.11.0.1/24'));
    expect(e.errno).toBe(19);
  });

  it('a kernel refusal keeps its errno (IPv6 on a link with IPv6 disabled)', async () => {
    const { ns, h } = await setup();
    await h.netns.sysctlSet('net.ipv6.conf.eth1.disable_ipv6', 1);
    const e = await failure(NetlinkError, () => h.addr.add('eth1', 'fd00:12::1/64', { noDad: true }));
    expect(e.errno).toBeGreaterThan(0);
    expect(e.message).toContain('fd00:12::1/64');
    expect(ipAddrs(ns, { dev: 'eth1' })).toEqual([]);
  });
});
