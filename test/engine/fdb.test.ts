// Bridge FDB verbs against iproute2's bridge(8) as the oracle, both ways, on
// a bridge port and on a vxlan device (flannel's and VXLAN head-end
// replication's use). Every test works in a namespace it made itself.
import { describe, expect, it } from 'vitest';
import type { Handle } from '../../engine/handle.js';
import { ExistsError, InvalidArgumentError, LinkNotFoundError, NetlinkError, NotFoundError } from '../../engine/netlink/errors.js';
import { handleIn, ip, vethUp, thrown } from '../support/handle.js';
import { isRoot, run } from '../support/netns.js';

/** The parts of `bridge -j fdb show` these tests read. */
interface BridgeFdb {
  mac: string;
  ifname: string;
  master?: string;
  dst?: string;
  vni?: number;
  port?: number;
  vlan?: number;
  flags: string[];
  state: string;
}

function bridgeFdb(ns: string, dev: string): BridgeFdb[] {
  const out = run('bridge', ['-n', ns, '-j', 'fdb', 'show']).trim();
  return (out === '' ? [] : (JSON.parse(out) as BridgeFdb[])).filter((e) => e.ifname === dev);
}

function bridge(ns: string, ...args: string[]): string {
  return run('bridge', ['-n', ns, ...args]);
}

const ZERO = '00:00:00:00:00:00';

/**
 * A namespace with bridge br0 (veth port p0, its peer d0 outside the bridge)
 * and vxlan device vx0 (VNI 1, port 4789, local 192.0.2.1, no learning),
 * made by ferry as the brief's VXLAN setup does.
 */
async function fabric(): Promise<{ ns: string; h: Handle }> {
  const { ns, h } = await handleIn('ffd');
  vethUp(ns, 'd0', 'p0');
  ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
  ip(ns, 'link', 'set', 'br0', 'up');
  ip(ns, 'link', 'set', 'p0', 'master', 'br0');
  // No learning: d0's own frames (IPv6 DAD, router solicitations) would add
  // an entry for its MAC at any moment, between two listings compared.
  ip(ns, 'link', 'set', 'p0', 'type', 'bridge_slave', 'learning', 'off');
  await h.link.add({ kind: 'vxlan', name: 'vx0', vni: 1, port: 4789, local: '192.0.2.1', learning: false });
  return { ns, h };
}

describe.skipIf(!isRoot)('bridge fdb verbs, checked with bridge(8) (needs root for network namespaces)', () => {
  describe('what ferry adds, bridge sees', () => {
    it('static and permanent entries in a bridge, on a port (master)', async () => {
      const { ns, h } = await fabric();
      await h.fdb.add({ dev: 'p0', mac: '02:00:00:00:00:aa', master: true, permanent: false });
      await h.fdb.add({ dev: 'p0', mac: '02:00:00:00:00:bb', master: true });
      const entries = bridgeFdb(ns, 'p0');
      expect(entries.find((e) => e.mac === '02:00:00:00:00:aa')).toMatchObject({ master: 'br0', state: 'static' });
      expect(entries.find((e) => e.mac === '02:00:00:00:00:bb')).toMatchObject({ master: 'br0', state: 'permanent' });
    });

    it('VXLAN head-end replication: append all-zero entries, one per remote VTEP', async () => {
      const { ns, h } = await fabric();
      await h.fdb.append({ dev: 'vx0', mac: ZERO, dst: '192.0.2.2', self: true });
      await h.fdb.append({ dev: 'vx0', mac: ZERO, dst: '192.0.2.3', self: true, vni: 7, port: 4790 });
      const entries = bridgeFdb(ns, 'vx0').filter((e) => e.mac === ZERO);
      expect(entries.map((e) => e.dst).sort()).toEqual(['192.0.2.2', '192.0.2.3']);
      expect(entries.every((e) => e.flags.includes('self') && e.state === 'permanent')).toBe(true);
      expect(entries.find((e) => e.dst === '192.0.2.3')).toMatchObject({ vni: 7, port: 4790 });
    });

    it("flannel's VTEP entry (add … self permanent), an IPv6 remote, replace and delete", async () => {
      const { ns, h } = await fabric();
      const vtep = '02:42:c0:00:02:02';
      await h.fdb.add({ dev: 'vx0', mac: vtep, dst: '192.0.2.2', self: true, permanent: true });
      expect(bridgeFdb(ns, 'vx0').find((e) => e.mac === vtep)).toMatchObject({ dst: '192.0.2.2', flags: ['self'], state: 'permanent' });
      await h.fdb.replace({ dev: 'vx0', mac: vtep, dst: '192.0.2.5' });
      expect(bridgeFdb(ns, 'vx0').filter((e) => e.mac === vtep).map((e) => e.dst)).toEqual(['192.0.2.5']);
      // An IPv6 underlay needs a vxlan device with an IPv6 local address (else EAFNOSUPPORT).
      ip(ns, 'link', 'add', 'vx6', 'type', 'vxlan', 'id', '2', 'dstport', '4789', 'local', '2001:db8::1', 'nolearning');
      await h.fdb.add({ dev: 'vx6', mac: '02:42:c0:00:02:06', dst: '2001:db8::6' });
      expect(bridgeFdb(ns, 'vx6').find((e) => e.mac === '02:42:c0:00:02:06')?.dst).toBe('2001:db8::6');
      expect((await h.fdb.list({ dev: 'vx6' })).find((e) => e.mac === '02:42:c0:00:02:06')?.dst).toBe('2001:db8::6');
      await h.fdb.delete({ dev: 'vx0', mac: vtep });
      expect(bridgeFdb(ns, 'vx0').find((e) => e.mac === vtep)).toBeUndefined();
    });

    it('delete with dst removes one remote of a vxlan entry; a bridge entry by master', async () => {
      const { ns, h } = await fabric();
      await h.fdb.append({ dev: 'vx0', mac: ZERO, dst: '192.0.2.2' });
      await h.fdb.append({ dev: 'vx0', mac: ZERO, dst: '192.0.2.3' });
      await h.fdb.delete({ dev: 'vx0', mac: ZERO, dst: '192.0.2.2' });
      expect(bridgeFdb(ns, 'vx0').filter((e) => e.mac === ZERO).map((e) => e.dst)).toEqual(['192.0.2.3']);
      await h.fdb.add({ dev: 'p0', mac: '02:00:00:00:00:aa', master: true, permanent: false });
      await h.fdb.delete({ dev: 'p0', mac: '02:00:00:00:00:aa', master: true });
      expect(bridgeFdb(ns, 'p0').find((e) => e.mac === '02:00:00:00:00:aa')).toBeUndefined();
    });
  });

  describe('what bridge adds, ferry reads', () => {
    it('bridge entries with port and bridge names, vxlan remotes with vni and port', async () => {
      const { ns, h } = await fabric();
      bridge(ns, 'fdb', 'add', '02:00:00:00:00:aa', 'dev', 'p0', 'master', 'static');
      bridge(ns, 'fdb', 'append', ZERO, 'dev', 'vx0', 'dst', '192.0.2.2', 'self', 'permanent');
      bridge(ns, 'fdb', 'append', ZERO, 'dev', 'vx0', 'dst', '192.0.2.3', 'vni', '7', 'port', '4790', 'self', 'permanent');
      const all = await h.fdb.list();
      expect(all.find((e) => e.mac === '02:00:00:00:00:aa')).toMatchObject({
        devName: 'p0',
        bridgeName: 'br0',
        master: true,
        self: false,
        permanent: false,
        state: 'static',
      });
      const remotes = all.filter((e) => e.devName === 'vx0' && e.mac === ZERO);
      expect(remotes).toHaveLength(2);
      expect(remotes.find((e) => e.dst === '192.0.2.2')).toMatchObject({ self: true, permanent: true, state: 'permanent' });
      expect(remotes.find((e) => e.dst === '192.0.2.3')).toMatchObject({ vni: 7, port: 4790 });
    });

    it('lists what bridge lists, by port and by bridge', async () => {
      const { ns, h } = await fabric();
      bridge(ns, 'fdb', 'add', '02:00:00:00:00:aa', 'dev', 'p0', 'master', 'static');
      bridge(ns, 'fdb', 'add', '02:42:c0:00:02:02', 'dev', 'vx0', 'dst', '192.0.2.2', 'self', 'permanent');
      const key = (e: { mac: string; dst?: string }) => `${e.mac} ${e.dst ?? '-'}`;
      for (const dev of ['p0', 'vx0', 'd0']) {
        const ours = (await h.fdb.list({ dev })).map(key).sort();
        expect(ours, dev).toEqual(bridgeFdb(ns, dev).map(key).sort());
      }
      const inBridge = await h.fdb.list({ master: 'br0' });
      expect(inBridge.map((e) => e.mac)).toContain('02:00:00:00:00:aa');
      const theirs = JSON.parse(bridge(ns, '-j', 'fdb', 'show', 'br', 'br0')) as BridgeFdb[];
      const tagged = (e: { mac: string; dst?: string }, dev: string | undefined) => `${dev} ${key(e)}`;
      expect(inBridge.map((e) => tagged(e, e.devName)).sort()).toEqual(theirs.map((e) => tagged(e, e.ifname)).sort());
      expect(inBridge.some((e) => e.devName === 'vx0' || e.devName === 'd0')).toBe(false);
    });

    it('an entry from list() can be handed back to delete()', async () => {
      const { ns, h } = await fabric();
      bridge(ns, 'fdb', 'add', '02:00:00:00:00:aa', 'dev', 'p0', 'master', 'static');
      bridge(ns, 'fdb', 'append', ZERO, 'dev', 'vx0', 'dst', '192.0.2.2', 'self', 'permanent');
      for (const e of await h.fdb.list()) if (e.mac === '02:00:00:00:00:aa' || e.mac === ZERO) await h.fdb.delete(e);
      expect(bridgeFdb(ns, 'p0').find((e) => e.mac === '02:00:00:00:00:aa')).toBeUndefined();
      expect(bridgeFdb(ns, 'vx0').find((e) => e.mac === ZERO)).toBeUndefined();
    });
  });

  describe('errors', () => {
    it('invalid input is refused before anything is sent, naming the field (EINVAL)', async () => {
      const { ns, h } = await fabric();
      const before = bridgeFdb(ns, 'vx0');
      const cases: Array<[() => Promise<unknown>, string]> = [
        [() => h.fdb.add({ dev: 'vx0', mac: '02:00:00:00:00', dst: '192.0.2.2' }), 'mac'],
        [() => h.fdb.append({ dev: 'vx0', mac: ZERO, dst: '192.0.2' }), 'dst'],
        [() => h.fdb.append({ dev: 'vx0', mac: ZERO, dst: '192.0.2.2', vni: 1 << 24 }), 'vni'],
        [() => h.fdb.append({ dev: 'vx0', mac: ZERO, dst: '192.0.2.2', port: 0 }), 'port'],
        [() => h.fdb.add({ dev: 'p0', mac: '02:00:00:00:00:aa', master: true, vlan: 4095 }), 'vlan'],
        [() => h.fdb.delete({ dev: 'vx0', mac: 'nope' }), 'mac'],
      ];
      for (const [f, field] of cases) {
        const e = await thrown(f);
        expect(e, field).toBeInstanceOf(InvalidArgumentError);
        expect(e.errno, field).toBe(22);
        expect(e.message, field).toContain(field);
        expect(e.message, field).toMatch(new RegExp(`^bridge fdb (add|append|del) .* in netns ${ns}`));
      }
      expect(bridgeFdb(ns, 'vx0')).toEqual(before);
    });

    it('a missing device: LinkNotFoundError (ENODEV) naming the entry', async () => {
      const { ns, h } = await fabric();
      const e = await thrown(() => h.fdb.append({ dev: 'vx9', mac: ZERO, dst: '192.0.2.2' }));
      expect(e).toBeInstanceOf(LinkNotFoundError);
      expect(e.errno).toBe(19);
      expect(e.message).toContain(`bridge fdb append ${ZERO} dev vx9 dst 192.0.2.2 in netns ${ns}`);
    });

    it('adding twice: ExistsError (EEXIST); deleting a missing entry: NotFoundError keeping errno', async () => {
      const { h } = await fabric();
      await h.fdb.add({ dev: 'vx0', mac: '02:42:c0:00:02:02', dst: '192.0.2.2' });
      const dup = await thrown(() => h.fdb.add({ dev: 'vx0', mac: '02:42:c0:00:02:02', dst: '192.0.2.2' }));
      expect(dup).toBeInstanceOf(ExistsError);
      expect(dup.errno).toBe(17);
      const missing = await thrown(() => h.fdb.delete({ dev: 'vx0', mac: '02:42:c0:00:02:09' }));
      expect(missing).toBeInstanceOf(NotFoundError);
      expect(missing.errno).toBe(2);
      const missingInBridge = await thrown(() => h.fdb.delete({ dev: 'p0', mac: '02:00:00:00:00:cc', master: true }));
      expect(missingInBridge).toBeInstanceOf(NotFoundError);
      expect(missingInBridge.errno).toBe(2);
    });
  });
});
