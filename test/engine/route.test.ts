// Route verbs against iproute2 as the oracle, both ways: routes ferry adds,
// replaces and deletes must look right to `ip -j route show table all`, and
// routes `ip route` makes must read back right through ferry's list(). Every
// test works in namespaces it made itself, on veth pairs it made there.
import { describe, expect, it } from 'vitest';
import type { Handle } from '../../engine/handle.js';
import { errnoText, ExistsError, InvalidArgumentError, LinkNotFoundError, NetlinkError, NotFoundError } from '../../engine/netlink/errors.js';
import type { Route } from '../../engine/route.js';
import { handleIn, ip, vethUp, thrown } from '../support/handle.js';
import { ipJson, isRoot } from '../support/netns.js';

/** The parts of `ip -j route show` these tests read. ip leaves out defaults: table main, protocol boot, scope universe, metric 0. */
interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  prefsrc?: string;
  flags: string[];
  metrics?: Array<{ mtu?: number }>;
  nexthops?: Array<{ gateway?: string; dev: string; weight: number; flags: string[] }>;
}

/** Every route of both families in every table, as ip sees them. */
function ipRoutes(ns: string): IpRoute[] {
  return [...ipJson<IpRoute[]>(ns, ['-4', 'route', 'show', 'table', 'all']), ...ipJson<IpRoute[]>(ns, ['-6', 'route', 'show', 'table', 'all'])];
}

/** The one route ip reports for `dst` in `table` (ip's names: main is absent). */
function ipRoute(ns: string, dst: string, table?: string): IpRoute | undefined {
  const found = ipRoutes(ns).filter((r) => r.dst === dst && r.table === table);
  expect(found.length, `routes to ${dst} in table ${table ?? 'main'}`).toBeLessThanOrEqual(1);
  return found[0];
}

/**
 * A namespace with two veth pairs up and addressed:
 * d0 192.0.2.1/24 2001:db8:1::1/64, d1 198.51.100.1/24 2001:db8:2::1/64.
 */
async function routed(): Promise<{ ns: string; h: Handle }> {
  const { ns, h } = await handleIn('frt');
  vethUp(ns, 'd0', 'p0');
  vethUp(ns, 'd1', 'p1');
  ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'd0');
  ip(ns, 'addr', 'add', '198.51.100.1/24', 'dev', 'd1');
  ip(ns, '-6', 'addr', 'add', '2001:db8:1::1/64', 'dev', 'd0', 'nodad');
  ip(ns, '-6', 'addr', 'add', '2001:db8:2::1/64', 'dev', 'd1', 'nodad');
  return { ns, h };
}

/** Calls `f`, which must throw; returns what it threw. */
/** ferry's route to `dst` (in any table), exactly one. */
async function ferryRoute(h: Handle, dst: string, table: number | 'all' = 'all'): Promise<Route> {
  const found = await h.route.list({ table, dst });
  expect(found, `ferry's routes to ${dst}`).toHaveLength(1);
  return found[0]!;
}

describe.skipIf(!isRoot)('route verbs, checked with ip (needs root for network namespaces)', () => {
  describe('what ferry adds, ip sees', () => {
    it('an IPv4 route via a gateway', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '10.1.0.0/16', gw: '192.0.2.2' });
      const r = ipRoute(ns, '10.1.0.0/16');
      expect(r).toMatchObject({ gateway: '192.0.2.2', dev: 'd0' });
      expect(r?.protocol ?? 'boot').toBe('boot'); // ip's own default, which ferry copies
      expect(r?.scope ?? 'global').toBe('global');
    });

    it('an IPv6 route via a gateway, with a metric', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '2001:db8:100::/48', gw: '2001:db8:1::2', metric: 50 });
      expect(ipRoute(ns, '2001:db8:100::/48')).toMatchObject({ gateway: '2001:db8:1::2', dev: 'd0', metric: 50 });
    });

    it('IPv4 and IPv6 default routes', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: 'default', gw: '192.0.2.254' });
      await h.route.add({ dst: 'default', gw: '2001:db8:1::fe' });
      const defaults = ipRoutes(ns).filter((r) => r.dst === 'default');
      expect(defaults.map((r) => r.gateway).sort()).toEqual(['192.0.2.254', '2001:db8:1::fe']);
    });

    it('a device route gets scope link, as ip gives it', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '10.5.0.0/24', dev: 'd1' });
      await h.route.add({ dst: '2001:db8:5::/64', dev: 'd1' });
      expect(ipRoute(ns, '10.5.0.0/24')).toMatchObject({ dev: 'd1', scope: 'link' });
      expect(ipRoute(ns, '10.5.0.0/24')?.gateway).toBeUndefined();
      expect(ipRoute(ns, '2001:db8:5::/64')).toMatchObject({ dev: 'd1' });
    });

    it('an onlink gateway outside every connected subnet', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '10.3.0.0/16', gw: '203.0.113.1', dev: 'd0', onlink: true });
      const r = ipRoute(ns, '10.3.0.0/16');
      expect(r).toMatchObject({ gateway: '203.0.113.1', dev: 'd0' });
      expect(r?.flags).toContain('onlink');
    });

    it('routes in other tables, including ids above 255 (RTA_TABLE)', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '10.6.0.0/16', gw: '192.0.2.2', table: 100 });
      await h.route.add({ dst: '10.7.0.0/16', gw: '192.0.2.2', table: 1000, mtu: 1400 });
      await h.route.add({ dst: '2001:db8:7::/48', gw: '2001:db8:1::2', table: 70000 });
      expect(ipRoute(ns, '10.6.0.0/16', '100')).toMatchObject({ gateway: '192.0.2.2' });
      expect(ipRoute(ns, '10.7.0.0/16', '1000')).toMatchObject({ gateway: '192.0.2.2', metrics: [{ mtu: 1400 }] });
      expect(ipRoute(ns, '2001:db8:7::/48', '70000')).toMatchObject({ gateway: '2001:db8:1::2' });
      expect(ipRoute(ns, '10.6.0.0/16')).toBeUndefined(); // not in main
    });

    it('an IPv4 multipath route with weights', async () => {
      const { ns, h } = await routed();
      await h.route.add({
        dst: '10.2.0.0/16',
        multipath: [{ gw: '192.0.2.2', weight: 3 }, { gw: '198.51.100.2', dev: 'd1' }, { gw: '203.0.113.1', dev: 'd0', onlink: true }],
      });
      expect(ipRoute(ns, '10.2.0.0/16')?.nexthops).toEqual([
        expect.objectContaining({ gateway: '192.0.2.2', dev: 'd0', weight: 3 }),
        expect.objectContaining({ gateway: '198.51.100.2', dev: 'd1', weight: 1 }),
        expect.objectContaining({ gateway: '203.0.113.1', dev: 'd0', weight: 1, flags: ['onlink'] }),
      ]);
    });

    it('an IPv6 multipath route', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '2001:db8:9::/48', multipath: [{ gw: '2001:db8:1::2' }, { gw: '2001:db8:2::2', dev: 'd1' }] });
      const hops = ipRoute(ns, '2001:db8:9::/48')?.nexthops ?? [];
      expect(hops.map((n) => [n.gateway, n.dev]).sort()).toEqual([
        ['2001:db8:1::2', 'd0'],
        ['2001:db8:2::2', 'd1'],
      ]);
    });

    it('blackhole and unreachable routes', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '10.66.0.0/16', type: 'blackhole' });
      await h.route.add({ dst: '2001:db8:66::/48', type: 'unreachable' });
      expect(ipRoute(ns, '10.66.0.0/16')).toMatchObject({ type: 'blackhole' });
      expect(ipRoute(ns, '2001:db8:66::/48')).toMatchObject({ type: 'unreachable' });
    });

    it('replace changes the gateway of an existing route, and creates a missing one', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '10.1.0.0/16', gw: '192.0.2.2' });
      await h.route.replace({ dst: '10.1.0.0/16', gw: '198.51.100.2' });
      expect(ipRoute(ns, '10.1.0.0/16')).toMatchObject({ gateway: '198.51.100.2', dev: 'd1' });
      await h.route.add({ dst: '2001:db8:100::/48', gw: '2001:db8:1::2' });
      await h.route.replace({ dst: '2001:db8:100::/48', gw: '2001:db8:2::2' });
      expect(ipRoute(ns, '2001:db8:100::/48')).toMatchObject({ gateway: '2001:db8:2::2', dev: 'd1' });
      await h.route.replace({ dst: '10.8.0.0/16', gw: '192.0.2.2' });
      expect(ipRoute(ns, '10.8.0.0/16')).toMatchObject({ gateway: '192.0.2.2' });
    });

    it('delete removes exactly the route named', async () => {
      const { ns, h } = await routed();
      await h.route.add({ dst: '10.1.0.0/16', gw: '192.0.2.2' });
      await h.route.add({ dst: '10.1.0.0/24', gw: '192.0.2.2' });
      await h.route.add({ dst: '10.6.0.0/16', gw: '192.0.2.2', table: 1000 });
      await h.route.add({ dst: '2001:db8:9::/48', multipath: [{ gw: '2001:db8:1::2' }, { gw: '2001:db8:2::2' }] });
      await h.route.delete({ dst: '10.1.0.0/16' });
      await h.route.delete({ dst: '10.6.0.0/16', table: 1000 });
      await h.route.delete({ dst: '2001:db8:9::/48' });
      expect(ipRoute(ns, '10.1.0.0/16')).toBeUndefined();
      expect(ipRoute(ns, '10.6.0.0/16', '1000')).toBeUndefined();
      expect(ipRoute(ns, '2001:db8:9::/48')).toBeUndefined();
      expect(ipRoute(ns, '10.1.0.0/24')).toBeDefined();
    });

    it('a route from list() can be handed back to delete()', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.4.0.0/16', 'via', '192.0.2.2', 'metric', '7', 'table', '300');
      ip(ns, 'route', 'add', '10.2.0.0/16', 'nexthop', 'via', '192.0.2.2', 'nexthop', 'via', '198.51.100.2');
      for (const r of await h.route.list({ table: 'all', dst: '10.4.0.0/16' })) await h.route.delete(r);
      for (const r of await h.route.list({ dst: '10.2.0.0/16' })) await h.route.delete(r);
      expect(ipRoute(ns, '10.4.0.0/16', '300')).toBeUndefined();
      expect(ipRoute(ns, '10.2.0.0/16')).toBeUndefined();
    });
  });

  describe('what ip adds, ferry reads', () => {
    it('IPv4 and IPv6 gateway routes, with dev index and name, protocol and metric', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.1.0.0/16', 'via', '192.0.2.2', 'metric', '20', 'proto', 'static', 'src', '192.0.2.1');
      ip(ns, '-6', 'route', 'add', '2001:db8:100::/48', 'via', '2001:db8:2::2');
      ip(ns, 'route', 'add', 'default', 'via', '198.51.100.254');
      const d0 = ipJson<Array<{ ifindex: number }>>(ns, ['link', 'show', 'd0'])[0]!.ifindex;
      expect(await ferryRoute(h, '10.1.0.0/16')).toMatchObject({
        family: 4,
        gw: '192.0.2.2',
        dev: d0,
        devName: 'd0',
        src: '192.0.2.1',
        table: 254,
        protocol: 4, // RTPROT_STATIC
        scope: 'universe',
        type: 'unicast',
        metric: 20,
      });
      expect(await ferryRoute(h, '2001:db8:100::/48')).toMatchObject({ family: 6, gw: '2001:db8:2::2', devName: 'd1', metric: 1024, protocol: 3 });
      expect(await h.route.list({ dst: 'default', family: 4 })).toEqual([expect.objectContaining({ dst: 'default', gw: '198.51.100.254' })]);
    });

    it('device routes with scope link, onlink gateways and non-main tables', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.5.0.0/24', 'dev', 'd1');
      ip(ns, 'route', 'add', '10.3.0.0/16', 'via', '203.0.113.1', 'dev', 'd0', 'onlink', 'table', '100');
      ip(ns, '-6', 'route', 'add', '2001:db8:7::/48', 'via', '2001:db8:1::2', 'table', '70000', 'mtu', '1300');
      const dev = await ferryRoute(h, '10.5.0.0/24');
      expect(dev).toMatchObject({ devName: 'd1', scope: 'link' });
      expect(dev.gw).toBeUndefined();
      expect(await ferryRoute(h, '10.3.0.0/16')).toMatchObject({ gw: '203.0.113.1', devName: 'd0', onlink: true, table: 100 });
      expect(await ferryRoute(h, '2001:db8:7::/48')).toMatchObject({ gw: '2001:db8:1::2', table: 70000, mtu: 1300 });
    });

    it('IPv4 multipath with weights', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.2.0.0/16', 'nexthop', 'via', '192.0.2.2', 'weight', '2', 'nexthop', 'via', '198.51.100.2', 'dev', 'd1');
      const r = await ferryRoute(h, '10.2.0.0/16');
      expect(r.gw).toBeUndefined();
      expect(r.multipath).toEqual([
        expect.objectContaining({ gw: '192.0.2.2', devName: 'd0', weight: 2 }),
        expect.objectContaining({ gw: '198.51.100.2', devName: 'd1', weight: 1 }),
      ]);
    });

    it('IPv6 multipath, whether added as one route or appended path by path', async () => {
      const { ns, h } = await routed();
      ip(ns, '-6', 'route', 'add', '2001:db8:9::/48', 'nexthop', 'via', '2001:db8:1::2', 'nexthop', 'via', '2001:db8:2::2');
      ip(ns, '-6', 'route', 'add', '2001:db8:a::/48', 'via', '2001:db8:1::3');
      ip(ns, '-6', 'route', 'append', '2001:db8:a::/48', 'via', '2001:db8:2::3');
      for (const [dst, gws] of [
        ['2001:db8:9::/48', ['2001:db8:1::2', '2001:db8:2::2']],
        ['2001:db8:a::/48', ['2001:db8:1::3', '2001:db8:2::3']],
      ] as const) {
        const r = await ferryRoute(h, dst);
        expect(r.gw, dst).toBeUndefined();
        expect(r.multipath?.map((n) => n.gw).sort(), dst).toEqual(gws);
        expect(r.multipath?.map((n) => n.devName).sort(), dst).toEqual(['d0', 'd1']);
      }
    });

    it('blackhole, unreachable and local routes', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', 'blackhole', '10.66.0.0/16');
      ip(ns, '-6', 'route', 'add', 'unreachable', '2001:db8:66::/48');
      expect(await ferryRoute(h, '10.66.0.0/16')).toMatchObject({ type: 'blackhole' });
      expect(await ferryRoute(h, '2001:db8:66::/48')).toMatchObject({ type: 'unreachable' });
      expect(await ferryRoute(h, '192.0.2.1/32')).toMatchObject({ type: 'local', table: 255, scope: 'host', devName: 'd0' });
    });

    it('lists the same routes as ip, table by table', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.1.0.0/16', 'via', '192.0.2.2');
      ip(ns, 'route', 'add', '10.6.0.0/16', 'via', '192.0.2.2', 'table', '100');
      ip(ns, '-6', 'route', 'add', '2001:db8:100::/48', 'via', '2001:db8:1::2');
      const text = (r: { dst: string }) => (r.dst.includes('/') || r.dst === 'default' ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`);
      const ipAll = ipRoutes(ns).map(text).sort();
      const ferryAll = (await h.route.list({ table: 'all' })).map(text).sort();
      expect(ferryAll).toEqual(ipAll);
      const ipMain = [...ipJson<IpRoute[]>(ns, ['-4', 'route', 'show']), ...ipJson<IpRoute[]>(ns, ['-6', 'route', 'show'])].map(text).sort();
      expect((await h.route.list()).map(text).sort()).toEqual(ipMain);
    });
  });

  describe('filters', () => {
    it('by table: main by default, one table, or all', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.1.0.0/16', 'via', '192.0.2.2');
      ip(ns, 'route', 'add', '10.6.0.0/16', 'via', '192.0.2.2', 'table', '100');
      ip(ns, '-6', 'route', 'add', '2001:db8:7::/48', 'via', '2001:db8:1::2', 'table', '100');
      const main = await h.route.list();
      expect(main.every((r) => r.table === 254)).toBe(true);
      expect(main.map((r) => r.dst)).toContain('10.1.0.0/16');
      expect((await h.route.list({ table: 100 })).map((r) => r.dst).sort()).toEqual(['10.6.0.0/16', '2001:db8:7::/48']);
      const all = await h.route.list({ table: 'all' });
      expect(new Set(all.map((r) => r.table))).toEqual(new Set([254, 255, 100]));
      expect(await h.route.list({ table: 4242 })).toEqual([]); // never created: empty, not an error
    });

    it('by exact destination, not by prefix', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.1.0.0/16', 'via', '192.0.2.2');
      ip(ns, 'route', 'add', '10.1.0.0/24', 'via', '192.0.2.3');
      ip(ns, 'route', 'add', '10.1.0.0/16', 'via', '192.0.2.4', 'table', '100');
      expect(await h.route.list({ dst: '10.1.0.0/24' })).toEqual([expect.objectContaining({ dst: '10.1.0.0/24', gw: '192.0.2.3' })]);
      expect((await h.route.list({ dst: '10.1.0.0/16', table: 'all' })).map((r) => r.gw).sort()).toEqual(['192.0.2.2', '192.0.2.4']);
      expect(await h.route.list({ dst: '10.9.0.0/16' })).toEqual([]);
    });

    it('by device, including multipath routes with a path through it, and by family', async () => {
      const { ns, h } = await routed();
      ip(ns, 'route', 'add', '10.1.0.0/16', 'via', '192.0.2.2');
      ip(ns, 'route', 'add', '10.5.0.0/16', 'via', '198.51.100.2');
      ip(ns, 'route', 'add', '10.2.0.0/16', 'nexthop', 'via', '192.0.2.2', 'nexthop', 'via', '198.51.100.2');
      const d1 = await h.route.list({ dev: 'd1', family: 4 });
      expect(d1.map((r) => r.dst).sort()).toEqual(['10.2.0.0/16', '10.5.0.0/16', '198.51.100.0/24']);
      const ipD1 = ipJson<IpRoute[]>(ns, ['-4', 'route', 'show', 'dev', 'd1']).map((r) => r.dst);
      expect(ipD1).toEqual(expect.arrayContaining(['10.5.0.0/16', '198.51.100.0/24']));
      const v6 = await h.route.list({ dev: 'd0', family: 6 });
      expect(v6.length).toBeGreaterThan(0);
      expect(v6.every((r) => r.family === 6 && r.devName === 'd0')).toBe(true);
    });
  });

  it('get() finds the route the kernel would use, as ip route get', async () => {
    const { ns, h } = await routed();
    ip(ns, 'route', 'add', '10.1.0.0/16', 'via', '192.0.2.2');
    const viaIp = ipJson<Array<{ gateway?: string; dev: string; prefsrc?: string }>>(ns, ['route', 'get', '10.1.2.3'])[0]!;
    const r = await h.route.get('10.1.2.3');
    expect({ gateway: r.gw, dev: r.devName, prefsrc: r.src }).toEqual({ gateway: viaIp.gateway, dev: viaIp.dev, prefsrc: viaIp.prefsrc });
    expect((await h.route.get('2001:db8:2::7')).devName).toBe('d1');
    const e = await thrown(() => h.route.get('203.0.113.9'));
    expect(e.code).toBe('ENETUNREACH');
  });

  describe('errors', () => {
    it('invalid input is refused before anything is sent, naming the field (EINVAL)', async () => {
      const { ns, h } = await routed();
      const before = ipRoutes(ns);
      const cases: Array<[() => Promise<unknown>, string]> = [
        [() => h.route.add({ dst: '10.1.0.0/33', gw: '192.0.2.2' }), 'dst'],
        [() => h.route.add({ dst: '10.1.0.256/16', gw: '192.0.2.2' }), 'dst'],
        [() => h.route.add({ dst: '10.1.0.0', gw: '192.0.2.2' }), 'dst'],
        [() => h.route.add({ dst: '10.1.0.1/16', gw: '192.0.2.2' }), 'dst'], // host bits
        [() => h.route.add({ dst: '10.1.0.0/16', gw: '192.0.2.300' }), 'gw'],
        [() => h.route.add({ dst: '10.1.0.0/16', gw: '192.0.2.2/32' }), 'gw'],
        [() => h.route.add({ dst: '10.1.0.0/16', gw: '2001:db8:1::2' }), 'gw'], // family mismatch
        [() => h.route.add({ dst: '10.1.0.0/16', dev: 'd0', src: 'nope' }), 'src'],
        [() => h.route.add({ dst: '10.2.0.0/16', multipath: [{ gw: '192.0.2.2' }, { gw: 'x' }] }), 'multipath[1].gw'],
        [() => h.route.add({ dst: '10.2.0.0/16', multipath: [{ gw: '192.0.2.2', weight: 0 }] }), 'multipath[0].weight'],
        [() => h.route.add({ dst: '10.1.0.0/16', dev: 'd0', table: 0 }), 'table'],
        [() => h.route.list({ dst: 'bogus' }), 'dst'],
      ];
      for (const [f, field] of cases) {
        const e = await thrown(f);
        expect(e, field).toBeInstanceOf(InvalidArgumentError);
        expect(e.errno, field).toBe(22);
        expect(e.code, field).toBe('EINVAL');
        expect(e.message, field).toContain(`${field}`);
        expect(e.message, field).toMatch(/^ip route (add|show) .* in netns frt-/);
      }
      expect(ipRoutes(ns)).toEqual(before);
    });

    it('a route through a missing device: LinkNotFoundError (ENODEV) naming the route', async () => {
      const { ns, h } = await routed();
      const e = await thrown(() => h.route.add({ dst: '10.1.0.0/16', gw: '192.0.2.2', dev: 'eth9' }));
      expect(e).toBeInstanceOf(LinkNotFoundError);
      expect(e.errno).toBe(19);
      expect(e.message).toContain(`ip route add 10.1.0.0/16 via 192.0.2.2 dev eth9 in netns ${ns}`);
      const byIndex = await thrown(() => h.route.add({ dst: '10.1.0.0/16', dev: 9999 }));
      expect(byIndex).toBeInstanceOf(LinkNotFoundError); // the kernel's own ENODEV for RTA_OIF
      expect(byIndex.errno).toBe(19);
      expect(ipRoute(ns, '10.1.0.0/16')).toBeUndefined();
    });

    it('deleting a missing route: NotFoundError (ESRCH)', async () => {
      const { ns, h } = await routed();
      for (const dst of ['10.1.0.0/16', '2001:db8:100::/48']) {
        const e = await thrown(() => h.route.delete({ dst }));
        expect(e, dst).toBeInstanceOf(NotFoundError);
        expect(e.errno, dst).toBe(3);
        expect(e.code, dst).toBe('ESRCH');
        expect(e.message, dst).toContain(`ip route del ${dst} in netns ${ns}`);
      }
    });

    it('adding a route twice: ExistsError (EEXIST) with the kernel text', async () => {
      const { ns, h } = await routed();
      for (const route of [
        { dst: '10.1.0.0/16', gw: '192.0.2.2' },
        { dst: '2001:db8:100::/48', gw: '2001:db8:1::2' },
      ]) {
        await h.route.add(route);
        const e = await thrown(() => h.route.add(route));
        expect(e, route.dst).toBeInstanceOf(ExistsError);
        expect(e.errno, route.dst).toBe(17);
        expect(e.code, route.dst).toBe('EEXIST');
        expect(e.message, route.dst).toContain(`ip route add ${route.dst} via ${route.gw} in netns ${ns}: ${errnoText(17)}`);
      }
    });

    it('the kernel refusing a gateway it cannot reach keeps errno and its extended ack', async () => {
      const { h } = await routed();
      const e = await thrown(() => h.route.add({ dst: '10.1.0.0/16', gw: '203.0.113.1' }));
      expect(e).toBeInstanceOf(NetlinkError);
      expect(e.errno).toBeGreaterThan(0);
      expect(e.extack).toMatch(/gateway|nexthop/i);
      expect(e.message).toContain(`kernel says "${e.extack}"`);
    });
  });
});
