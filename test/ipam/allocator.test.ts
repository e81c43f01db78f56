// Allocation with host-local's semantics: round robin, idempotent ADD,
// requested IPs, rollback on exhaustion, release, GC and availability.
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocate, availability, gc, release } from '../../plugin/ipam/allocator.js';
import type { IpamConfig, RangeConfig } from '../../plugin/ipam/config.js';
import { IpamConflictError, IpamExhaustedError, IpamRequestError } from '../../plugin/ipam/errors.js';
import { IpamStore } from '../../plugin/ipam/store.js';
import { tempDataDir } from './tmpdir.js';

const cfg = (...sets: RangeConfig[][]): IpamConfig => ({ type: 'ferry', ranges: sets });
const v4 = cfg([{ subnet: '10.1.0.0/29' }]); // .1 gateway, .2-.6 allocatable
const store = () => new IpamStore('net1', tempDataDir());
const ips = async (s: IpamStore, c: IpamConfig, id: string, ifname = 'eth0', requested?: string[]) =>
  (await allocate(s, c, { containerId: id, ifname, ...(requested && { requested }) })).map((a) => a.ip);
const records = (s: IpamStore) => readdirSync(s.dir).filter((n) => n !== 'lock' && !n.startsWith('last_reserved_ip.'));

describe('allocate', () => {
  it('v4: skips the gateway, returns address with prefix and gateway', async () => {
    const s = store();
    expect(await allocate(s, v4, { containerId: 'c1', ifname: 'eth0' })).toEqual([
      { rangeSetIndex: 0, family: 4, address: '10.1.0.2/29', ip: '10.1.0.2', gateway: '10.1.0.1', reused: false },
    ]);
  });

  it('round robin: goes on after the last reserved, even after a release, and wraps', async () => {
    const s = store();
    expect(await ips(s, v4, 'a')).toEqual(['10.1.0.2']);
    expect(await ips(s, v4, 'b')).toEqual(['10.1.0.3']);
    expect(await release(s, 'a', 'eth0')).toEqual(['10.1.0.2']);
    expect(await ips(s, v4, 'c')).toEqual(['10.1.0.4']); // not .2: round robin, not first free
    expect(await ips(s, v4, 'd')).toEqual(['10.1.0.5']);
    expect(await ips(s, v4, 'e')).toEqual(['10.1.0.6']);
    expect(await ips(s, v4, 'f')).toEqual(['10.1.0.2']); // wrapped, skipping gateway .1
    await expect(ips(s, v4, 'g')).rejects.toThrow(IpamExhaustedError);
  });

  it('rangeStart/rangeEnd bound the allocation; an explicit gateway inside is skipped', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.100', rangeEnd: '10.1.0.102', gateway: '10.1.0.101' }]);
    expect(await ips(s, c, 'a')).toEqual(['10.1.0.100']);
    expect(await ips(s, c, 'b')).toEqual(['10.1.0.102']);
    const e = await ips(s, c, 'c').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IpamExhaustedError);
    expect((e as Error).message).toBe('no free address in range set 0 (10.1.0.0/24 10.1.0.100-10.1.0.102)');
  });

  it('walks the ranges of a set in order and wraps from the last to the first', async () => {
    const s = store();
    const c = cfg([
      { subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.11' },
      { subnet: '10.2.0.0/24', rangeStart: '10.2.0.20', rangeEnd: '10.2.0.21' },
    ]);
    const got = [];
    for (const id of ['a', 'b', 'c', 'd']) got.push(...(await ips(s, c, id)));
    expect(got).toEqual(['10.1.0.10', '10.1.0.11', '10.2.0.20', '10.2.0.21']);
    await release(s, 'a', 'eth0');
    expect(await allocate(s, c, { containerId: 'e', ifname: 'eth0' })).toEqual([
      { rangeSetIndex: 0, family: 4, address: '10.1.0.10/24', ip: '10.1.0.10', gateway: '10.1.0.1', reused: false },
    ]);
  });

  it('v6: canonical addresses, last address of the subnet is usable', async () => {
    const s = store();
    const c = cfg([{ subnet: 'fd00:0:0:1::/126' }]); // ::1 gateway, ::2 ::3
    expect(await allocate(s, c, { containerId: 'a', ifname: 'eth0' })).toEqual([
      { rangeSetIndex: 0, family: 6, address: 'fd00:0:0:1::2/126', ip: 'fd00:0:0:1::2', gateway: 'fd00:0:0:1::1', reused: false },
    ]);
    expect(await ips(s, c, 'b')).toEqual(['fd00:0:0:1::3']);
    await expect(ips(s, c, 'c')).rejects.toThrow(IpamExhaustedError);
    expect(readFileSync(join(s.dir, 'fd00:0:0:1::3'), 'utf8')).toBe('b\r\neth0');
  });

  it('v6 /64 continues after the last reserved without walking the range', async () => {
    const s = store();
    const c = cfg([{ subnet: 'fd00::/64' }]);
    mkdirSync(s.dir, { recursive: true });
    writeFileSync(join(s.dir, 'last_reserved_ip.0'), 'fd00::ffff:ffff:ffff:fffe');
    expect(await ips(s, c, 'a')).toEqual(['fd00::ffff:ffff:ffff:ffff']);
    expect(await ips(s, c, 'b')).toEqual(['fd00::2']); // wrapped past network and gateway
  });

  it('dual stack: one IP from each range set', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/64' }]);
    expect(await allocate(s, c, { containerId: 'a', ifname: 'eth0' })).toEqual([
      { rangeSetIndex: 0, family: 4, address: '10.1.0.2/24', ip: '10.1.0.2', gateway: '10.1.0.1', reused: false },
      { rangeSetIndex: 1, family: 6, address: 'fd00::2/64', ip: 'fd00::2', gateway: 'fd00::1', reused: false },
    ]);
    expect(readFileSync(join(s.dir, 'last_reserved_ip.0'), 'utf8')).toBe('10.1.0.2');
    expect(readFileSync(join(s.dir, 'last_reserved_ip.1'), 'utf8')).toBe('fd00::2');
  });

  it('is idempotent for the same container and ifname; another ifname gets new IPs', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/64' }]);
    const first = await allocate(s, c, { containerId: 'a', ifname: 'eth0' });
    expect(first.map((a) => a.reused)).toEqual([false, false]);
    // The same addresses again, marked as held before, so a failing ADD will not release them.
    expect(await allocate(s, c, { containerId: 'a', ifname: 'eth0' })).toEqual(first.map((a) => ({ ...a, reused: true })));
    expect(await ips(s, c, 'a', 'net1')).toEqual(['10.1.0.3', 'fd00::3']);
    expect(records(s)).toHaveLength(4);
  });

  it('requested IPs (CIDR or plain) are reserved when free', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/64' }]);
    expect(await ips(s, c, 'a', 'eth0', ['10.1.0.50/24', 'fd00::0:50'])).toEqual(['10.1.0.50', 'fd00::50']);
    expect(await ips(s, c, 'a', 'eth0', ['10.1.0.50'])).toEqual(['10.1.0.50', 'fd00::50']); // repeated ADD
    expect(await ips(s, c, 'b', 'eth0', ['fd00::51'])).toEqual(['10.1.0.51', 'fd00::51']); // v4 by round robin
  });

  it('requested IPs: in use, outside every set, gateway, or two in one set are refused naming the IP', async () => {
    const s = store();
    await ips(s, v4, 'a', 'eth0', ['10.1.0.4']);
    const inUse = await ips(s, v4, 'b', 'eth0', ['10.1.0.4']).catch((x: unknown) => x);
    expect(inUse).toBeInstanceOf(IpamConflictError);
    expect((inUse as Error).message).toBe('requested IP 10.1.0.4: in use by a/eth0');
    await expect(ips(s, v4, 'b', 'eth0', ['10.9.0.4'])).rejects.toThrow(
      new IpamRequestError('requested IP 10.9.0.4: not in any range set: range set 0 (10.1.0.0/29 10.1.0.1-10.1.0.6)'),
    );
    await expect(ips(s, v4, 'b', 'eth0', ['10.1.0.1'])).rejects.toThrow('requested IP 10.1.0.1: the gateway of range set 0');
    await expect(ips(s, v4, 'b', 'eth0', ['10.1.0.2', '10.1.0.3'])).rejects.toThrow(
      'requested IPs 10.1.0.2 and 10.1.0.3: both in range set 0; one IP per range set',
    );
    await expect(ips(s, v4, 'b', 'eth0', ['10.1.0.256'])).rejects.toThrow('requested IP "10.1.0.256": not an IP address');
    await expect(ips(s, v4, 'a', 'eth0', ['10.1.0.5'])).rejects.toThrow(
      'requested IP 10.1.0.5: a/eth0 already holds 10.1.0.4 in range set 0',
    );
    expect(records(s)).toEqual(['10.1.0.4']);
  });

  it('exhaustion of a later set releases what earlier sets reserved: nothing leaked', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/126', rangeEnd: 'fd00::2' }]); // one v6 address: ::2
    expect(await ips(s, c, 'a')).toEqual(['10.1.0.2', 'fd00::2']);
    const e = await ips(s, c, 'b').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IpamExhaustedError);
    expect((e as IpamExhaustedError).rangeSetIndex).toBe(1);
    expect((e as Error).message).toBe('no free address in range set 1 (fd00::/126 fd00::1-fd00::2)');
    expect(records(s).sort()).toEqual(['10.1.0.2', 'fd00::2']);
    expect(await s.findByOwner('b', 'eth0')).toEqual([]);
  });

  it('a conflict on a requested IP in a later set also rolls back', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/64' }]);
    await ips(s, c, 'a', 'eth0', ['fd00::9']);
    await expect(ips(s, c, 'b', 'eth0', ['fd00::9'])).rejects.toThrow(IpamConflictError);
    expect(records(s).sort()).toEqual(['10.1.0.2', 'fd00::9']);
  });

  it('an unreadable record file still holds its IP', async () => {
    const s = store();
    mkdirSync(s.dir, { recursive: true });
    writeFileSync(join(s.dir, '10.1.0.2'), '');
    expect(await ips(s, v4, 'a')).toEqual(['10.1.0.3']);
    await expect(ips(s, v4, 'b', 'eth0', ['10.1.0.2'])).rejects.toThrow('requested IP 10.1.0.2: in use (unreadable record)');
  });

  it('refuses a bad container ID or ifname before touching the store', async () => {
    const s = store();
    await expect(ips(s, v4, '', 'eth0')).rejects.toThrow(IpamRequestError);
    await expect(ips(s, v4, 'a', 'eth 0')).rejects.toThrow(IpamRequestError);
    expect(() => readdirSync(s.dir)).toThrow();
  });
});

describe('release and gc', () => {
  it('release is idempotent', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/64' }]);
    await ips(s, c, 'a');
    expect((await release(s, 'a', 'eth0')).sort()).toEqual(['10.1.0.2', 'fd00::2']);
    expect(await release(s, 'a', 'eth0')).toEqual([]);
    expect(await release(s, 'never', 'eth0')).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it('gc releases every record whose owner is not valid, and returns them', async () => {
    const s = store();
    await ips(s, v4, 'a', 'eth0');
    await ips(s, v4, 'a', 'net1');
    await ips(s, v4, 'b', 'eth0');
    const released = await gc(s, [{ containerId: 'a', ifname: 'eth0' }]);
    expect(released.sort((x, y) => x.ip.localeCompare(y.ip))).toEqual([
      { ip: '10.1.0.3', containerId: 'a', ifname: 'net1' },
      { ip: '10.1.0.4', containerId: 'b', ifname: 'eth0' },
    ]);
    expect(await s.list()).toEqual([{ ip: '10.1.0.2', containerId: 'a', ifname: 'eth0' }]);
    expect(await gc(s, [{ containerId: 'a', ifname: 'eth0' }])).toEqual([]);
    expect(await gc(s, [])).toHaveLength(1);
    expect(records(s)).toEqual([]);
  });
});

describe('availability', () => {
  it('counts allocatable addresses per set, gateway excluded', async () => {
    const s = store();
    const c = cfg([{ subnet: '10.1.0.0/29' }, { subnet: '10.2.0.0/30' }], [{ subnet: 'fd00::/120', rangeStart: 'fd00::10', rangeEnd: 'fd00::1f' }]);
    expect(await availability(s, c)).toEqual([
      { rangeSetIndex: 0, family: 4, total: 5 + 1, used: 0, free: 6, capped: false },
      { rangeSetIndex: 1, family: 6, total: 16, used: 0, free: 16, capped: false }, // gateway fd00::1 outside the range
    ]);
    await ips(s, c, 'a');
    await ips(s, c, 'b');
    expect((await availability(s, c)).map((a) => [a.used, a.free])).toEqual([
      [2, 4],
      [2, 14],
    ]);
  });

  it('caps huge IPv6 ranges instead of counting them', async () => {
    const s = store();
    const [a] = await availability(s, cfg([{ subnet: 'fd00::/64' }]));
    expect(a).toEqual({ rangeSetIndex: 0, family: 6, total: Number.MAX_SAFE_INTEGER, used: 0, free: Number.MAX_SAFE_INTEGER, capped: true });
  });

  it('reports a full set as free: 0', async () => {
    const s = store();
    for (const id of ['a', 'b', 'c', 'd', 'e']) await ips(s, v4, id);
    expect(await availability(s, v4)).toEqual([{ rangeSetIndex: 0, family: 4, total: 5, used: 5, free: 0, capped: false }]);
  });
});
