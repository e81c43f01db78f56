// Neighbour verbs (ARP and NDP) against iproute2 as the oracle, both ways:
// entries ferry adds, replaces and deletes must show in `ip -j neigh show`,
// and entries `ip neigh` makes must read back through ferry's list(). Every
// test works in a namespace it made itself, on veth pairs it made there.
import { describe, expect, it } from 'vitest';
import type { Handle } from '../../engine/handle.js';
import { ExistsError, InvalidArgumentError, LinkNotFoundError, NetlinkError, NotFoundError } from '../../engine/netlink/errors.js';
import { handleIn, ip, vethUp, thrown } from '../support/handle.js';
import { ipJson, isRoot } from '../support/netns.js';

/** The parts of `ip -j neigh show` these tests read; `router` is present (null) when set. */
interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  router?: null;
  state: string[];
}

/** Every entry ip knows on `dev`, whatever its state. */
function ipNeighs(ns: string, dev: string): Array<IpNeigh & { dev: string }> {
  return ipJson<IpNeigh[]>(ns, ['neigh', 'show', 'nud', 'all']).filter((n) => n.dev === dev);
}

function ipNeigh(ns: string, dev: string, dst: string): IpNeigh | undefined {
  return ipNeighs(ns, dev).find((n) => n.dst === dst);
}

/** A namespace with veth pairs d0/p0 and d1/p1, up. */
async function linked(): Promise<{ ns: string; h: Handle }> {
  const { ns, h } = await handleIn('fng');
  vethUp(ns, 'd0', 'p0');
  vethUp(ns, 'd1', 'p1');
  return { ns, h };
}

describe.skipIf(!isRoot)('neighbour verbs, checked with ip (needs root for network namespaces)', () => {
  describe('what ferry adds, ip sees', () => {
    it('permanent IPv4 (ARP) and IPv6 (NDP) entries, permanent by default', async () => {
      const { ns, h } = await linked();
      await h.neigh.add({ dev: 'd0', ip: '192.0.2.9', mac: '02:00:00:00:00:09' });
      await h.neigh.add({ dev: 'd0', ip: '2001:db8:1::9', mac: '02:00:00:00:00:19' });
      expect(ipNeigh(ns, 'd0', '192.0.2.9')).toMatchObject({ lladdr: '02:00:00:00:00:09', state: ['PERMANENT'] });
      expect(ipNeigh(ns, 'd0', '2001:db8:1::9')).toMatchObject({ lladdr: '02:00:00:00:00:19', state: ['PERMANENT'] });
    });

    it('other states, and the IPv6 router flag', async () => {
      const { ns, h } = await linked();
      await h.neigh.add({ dev: 'd1', ip: '198.51.100.7', mac: '02:00:00:00:00:07', state: 'stale' });
      await h.neigh.add({ dev: 'd1', ip: '198.51.100.8', mac: '02:00:00:00:00:08', state: 'noarp' });
      await h.neigh.add({ dev: 'd1', ip: 'fe80::1', mac: '02:00:00:00:00:01', router: true });
      expect(ipNeigh(ns, 'd1', '198.51.100.7')?.state).toEqual(['STALE']);
      expect(ipNeigh(ns, 'd1', '198.51.100.8')?.state).toEqual(['NOARP']);
      const router = ipNeigh(ns, 'd1', 'fe80::1');
      expect(router).toMatchObject({ lladdr: '02:00:00:00:00:01', state: ['PERMANENT'] });
      expect(router).toHaveProperty('router');
    });

    it('replace changes the MAC of an entry, and creates a missing one', async () => {
      const { ns, h } = await linked();
      await h.neigh.add({ dev: 'd0', ip: '192.0.2.9', mac: '02:00:00:00:00:09' });
      await h.neigh.replace({ dev: 'd0', ip: '192.0.2.9', mac: '02:00:00:00:00:99' });
      await h.neigh.add({ dev: 'd0', ip: '2001:db8:1::9', mac: '02:00:00:00:00:19' });
      await h.neigh.replace({ dev: 'd0', ip: '2001:db8:1::9', mac: '02:00:00:00:01:99' });
      await h.neigh.replace({ dev: 'd0', ip: '192.0.2.10', mac: '02:00:00:00:00:10' });
      expect(ipNeigh(ns, 'd0', '192.0.2.9')?.lladdr).toBe('02:00:00:00:00:99');
      expect(ipNeigh(ns, 'd0', '2001:db8:1::9')?.lladdr).toBe('02:00:00:00:01:99');
      expect(ipNeigh(ns, 'd0', '192.0.2.10')).toMatchObject({ lladdr: '02:00:00:00:00:10', state: ['PERMANENT'] });
    });

    it('delete removes the entry, v4 and v6', async () => {
      const { ns, h } = await linked();
      await h.neigh.add({ dev: 'd0', ip: '192.0.2.9', mac: '02:00:00:00:00:09' });
      await h.neigh.add({ dev: 'd0', ip: '2001:db8:1::9', mac: '02:00:00:00:00:19' });
      await h.neigh.add({ dev: 'd1', ip: '192.0.2.9', mac: '02:00:00:00:00:09' });
      await h.neigh.delete({ dev: 'd0', ip: '192.0.2.9' });
      await h.neigh.delete({ dev: 'd0', ip: '2001:db8:1::9' });
      expect(ipNeigh(ns, 'd0', '192.0.2.9')).toBeUndefined();
      expect(ipNeigh(ns, 'd0', '2001:db8:1::9')).toBeUndefined();
      expect(ipNeigh(ns, 'd1', '192.0.2.9')).toBeDefined(); // same address, other device: untouched
    });
  });

  describe('what ip adds, ferry reads', () => {
    it('v4 and v6 entries with their device index and name, state and flags', async () => {
      const { ns, h } = await linked();
      ip(ns, 'neigh', 'add', '192.0.2.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'd0', 'nud', 'permanent');
      ip(ns, 'neigh', 'add', '2001:db8:1::9', 'lladdr', '02:00:00:00:00:19', 'dev', 'd0', 'router', 'nud', 'stale');
      ip(ns, 'neigh', 'add', '198.51.100.8', 'lladdr', '02:00:00:00:00:08', 'dev', 'd1', 'nud', 'reachable');
      const d0 = ipJson<Array<{ ifindex: number }>>(ns, ['link', 'show', 'd0'])[0]!.ifindex;
      const all = await h.neigh.list();
      expect(all.find((n) => n.ip === '192.0.2.9')).toMatchObject({
        family: 4,
        dev: d0,
        devName: 'd0',
        mac: '02:00:00:00:00:09',
        state: 'permanent',
        router: false,
      });
      expect(all.find((n) => n.ip === '2001:db8:1::9')).toMatchObject({ family: 6, devName: 'd0', state: 'stale', router: true });
      // reachable ages to stale on its own; either is what ip set
      expect(['reachable', 'stale', 'delay']).toContain(all.find((n) => n.ip === '198.51.100.8')?.state);
    });

    it('lists what ip lists, by device and by family', async () => {
      const { ns, h } = await linked();
      ip(ns, 'neigh', 'add', '192.0.2.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'd0');
      ip(ns, 'neigh', 'add', '192.0.2.10', 'lladdr', '02:00:00:00:00:10', 'dev', 'd1');
      ip(ns, 'neigh', 'add', '2001:db8:1::9', 'lladdr', '02:00:00:00:00:19', 'dev', 'd0');
      // The kernel adds multicast entries of its own (MLD reports, router
      // solicitations to ff02::/16) whenever it likes, so they may appear
      // between the two reads; only unicast entries are compared.
      const unicast = (ip: string): boolean => !ip.startsWith('ff') && !/^2(2[4-9]|3\d)\./.test(ip);
      for (const dev of ['d0', 'd1']) {
        const ours = (await h.neigh.list({ dev })).filter((n) => unicast(n.ip)).map((n) => `${n.ip} ${n.mac}`).sort();
        const theirs = ipNeighs(ns, dev).filter((n) => unicast(n.dst)).map((n) => `${n.dst} ${n.lladdr}`).sort();
        expect(ours, dev).toEqual(theirs);
      }
      const v4 = await h.neigh.list({ dev: 'd0', family: 4 });
      expect(v4.map((n) => n.ip)).toEqual(['192.0.2.9']);
      const v6 = await h.neigh.list({ family: 6 });
      expect(v6.every((n) => n.family === 6)).toBe(true);
      expect(v6.map((n) => n.ip)).toContain('2001:db8:1::9');
    });

    it('an entry from list() can be handed back to delete()', async () => {
      const { ns, h } = await linked();
      ip(ns, 'neigh', 'add', '192.0.2.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'd0');
      ip(ns, 'neigh', 'add', '2001:db8:1::9', 'lladdr', '02:00:00:00:00:19', 'dev', 'd0');
      for (const n of await h.neigh.list({ dev: 'd0' })) if (n.state === 'permanent') await h.neigh.delete(n);
      expect(ipNeighs(ns, 'd0').filter((n) => n.state.includes('PERMANENT'))).toEqual([]);
    });
  });

  describe('errors', () => {
    it('invalid input is refused before anything is sent, naming the field (EINVAL)', async () => {
      const { ns, h } = await linked();
      const cases: Array<[() => Promise<unknown>, string]> = [
        [() => h.neigh.add({ dev: 'd0', ip: '192.0.2.300', mac: '02:00:00:00:00:09' }), 'ip'],
        [() => h.neigh.add({ dev: 'd0', ip: '192.0.2.9/32', mac: '02:00:00:00:00:09' }), 'ip'],
        [() => h.neigh.add({ dev: 'd0', ip: '192.0.2.9', mac: '02:00:00:00:09' }), 'mac'],
        [() => h.neigh.replace({ dev: 'd0', ip: '2001:db8::9', mac: 'zz:00:00:00:00:09' }), 'mac'],
        [() => h.neigh.add({ dev: 'd0', ip: '192.0.2.9', mac: '02:00:00:00:00:09', state: 'bogus' as 'stale' }), 'state'],
        [() => h.neigh.delete({ dev: 'd0', ip: 'nope' }), 'ip'],
      ];
      for (const [f, field] of cases) {
        const e = await thrown(f);
        expect(e, field).toBeInstanceOf(InvalidArgumentError);
        expect(e.errno, field).toBe(22);
        expect(e.message, field).toContain(field);
        expect(e.message, field).toMatch(new RegExp(`^ip neigh (add|replace|del) .* in netns ${ns}`));
      }
      expect(ipNeighs(ns, 'd0').filter((n) => !n.state.includes('NOARP'))).toEqual([]);
    });

    it('a missing device: LinkNotFoundError (ENODEV) naming the entry', async () => {
      const { ns, h } = await linked();
      const e = await thrown(() => h.neigh.add({ dev: 'eth9', ip: '192.0.2.9', mac: '02:00:00:00:00:09' }));
      expect(e).toBeInstanceOf(LinkNotFoundError);
      expect(e.errno).toBe(19);
      expect(e.message).toContain(`ip neigh add 192.0.2.9 lladdr 02:00:00:00:00:09 dev eth9 in netns ${ns}`);
    });

    it('adding twice: ExistsError (EEXIST); deleting a missing entry: NotFoundError keeping errno', async () => {
      const { h } = await linked();
      for (const addr of ['192.0.2.9', '2001:db8:1::9']) {
        await h.neigh.add({ dev: 'd0', ip: addr, mac: '02:00:00:00:00:09' });
        const dup = await thrown(() => h.neigh.add({ dev: 'd0', ip: addr, mac: '02:00:00:00:00:09' }));
        expect(dup, addr).toBeInstanceOf(ExistsError);
        expect(dup.errno, addr).toBe(17);
        const missing = await thrown(() => h.neigh.delete({ dev: 'd1', ip: addr }));
        expect(missing, addr).toBeInstanceOf(NotFoundError);
        expect(missing.code, addr).toBe('ENOENT');
        expect(missing.errno, addr).toBe(2);
      }
    });
  });
});
