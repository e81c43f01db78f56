// Inspection of a pinned dataplane (engine/dataplane/inspect.ts): maps filled
// through the layout codecs in a per-test pin directory, opened again by
// path as the CLI does, and read back as plain data.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BpfMap } from '../../engine/bpf/index.js';
import {
  DataplaneLayoutError,
  DataplaneNotFoundError,
  flushConntrack,
  listConntrack,
  listEndpoints,
  listReverseNat,
  listServices,
  openPinnedMaps,
  readMetrics,
  type PinnedMaps,
} from '../../engine/dataplane/inspect.js';
import { CT_FLAGS, CT_STATE, ct4Key, ctEntry, LB_METRICS, lb4Key, MAPS } from '../../engine/dataplane/layout.js';
import { pinDir, defer } from '../bpf/support.js';
import { isRoot } from '../support/netns.js';
import { loadLb, NEXT } from './lb-fixture.js';
import { addIPv6Sample, loadSample, SEC } from './inspect-fixture.js';
import { etherFrame, ETH_P_ARP } from './packets.js';

function open(pinRoot: string): PinnedMaps {
  const maps = openPinnedMaps(pinRoot);
  defer(() => maps.close());
  return maps;
}

const tuple = (e: { proto: string; dir: string; saddr: string; sport: number; daddr: string; dport: number }) =>
  `${e.proto} ${e.dir} ${e.saddr}:${e.sport} > ${e.daddr}:${e.dport}`;

describe.skipIf(!isRoot)('inspecting a pinned dataplane (needs root)', () => {
  it('services: each frontend with its slots resolved, flagging a missing backend and rev-NAT entry', async () => {
    const { pinRoot } = await loadSample();
    const services = listServices(open(pinRoot));
    expect(services).toEqual([
      {
        frontend: '10.96.0.10:80/tcp',
        address: '10.96.0.10',
        port: 80,
        proto: 'tcp',
        scope: 'external',
        count: 2,
        revNatIndex: 1,
        revNat: '10.96.0.10:80',
        affinityTimeout: 0,
        slots: [
          { slot: 1, backendId: 1, backend: '10.244.0.5:8080' },
          { slot: 2, backendId: 2, backend: '10.244.0.6:8080' },
        ],
        problems: [],
      },
      expect.objectContaining({
        frontend: '10.96.0.53:53/udp',
        count: 2,
        revNatIndex: 2,
        revNat: '10.96.0.53:53',
        slots: [
          { slot: 1, backendId: 3, backend: '10.244.0.9:5353' },
          { slot: 2, backendId: 7, backend: null, problem: 'backend 7 is missing' },
        ],
        problems: [],
      }),
      expect.objectContaining({
        frontend: '10.96.0.99:80/tcp',
        count: 0,
        revNatIndex: 3,
        revNat: null,
        slots: [],
        problems: ['rev-NAT entry 3 is missing: replies are not translated'],
      }),
    ]);
  });

  it('services: a slot missing below the count, one beyond it, and a frontend without slot 0', async () => {
    const { lb, pinRoot } = await loadSample();
    const key = (address: string, slot: number) => lb4Key.encode({ address, port: 80, proto: 'tcp', slot, scope: 'external' });
    lb.services.delete(key('10.96.0.10', 1));
    lb.services.update(key('10.96.0.10', 3), lb.services.lookup(key('10.96.0.10', 2))!);
    lb.services.update(key('10.96.0.11', 1), lb.services.lookup(key('10.96.0.10', 2))!);
    const byName = Object.fromEntries(listServices(open(pinRoot)).map((s) => [s.frontend, s]));
    expect(byName['10.96.0.10:80/tcp']!.slots).toEqual([
      { slot: 1, backendId: null, backend: null, problem: 'slot missing (count is 2)' },
      { slot: 2, backendId: 2, backend: '10.244.0.6:8080' },
      { slot: 3, backendId: 2, backend: '10.244.0.6:8080', problem: 'beyond count 2: unused' },
    ]);
    expect(byName['10.96.0.11:80/tcp']).toMatchObject({
      count: null,
      problems: ['no slot 0: the datapath does not see this frontend'],
      slots: [{ slot: 1, backendId: 2, problem: 'beyond count 0: unused' }],
    });
  });

  it('endpoints: each backend with the frontends using it and the flows pinned to it', async () => {
    const { pinRoot } = await loadSample();
    expect(listEndpoints(open(pinRoot))).toEqual([
      { id: 1, address: '10.244.0.5', port: 8080, proto: 'tcp', frontends: ['10.96.0.10:80/tcp'], flows: 1 },
      { id: 2, address: '10.244.0.6', port: 8080, proto: 'tcp', frontends: ['10.96.0.10:80/tcp'], flows: 1 },
      { id: 3, address: '10.244.0.9', port: 5353, proto: 'udp', frontends: ['10.96.0.53:53/udp'], flows: 1 },
      { id: 4, address: '10.244.0.7', port: 8080, proto: 'tcp', frontends: [], flows: 0 },
    ]);
  });

  it('nat list: index → service address, with the frontends using each index', async () => {
    const { pinRoot } = await loadSample();
    expect(listReverseNat(open(pinRoot))).toEqual([
      { index: 1, address: '10.96.0.10', port: 80, frontends: ['10.96.0.10:80/tcp'] },
      { index: 2, address: '10.96.0.53', port: 53, frontends: ['10.96.0.53:53/udp'] },
      { index: 9, address: '10.96.0.77', port: 80, frontends: [] },
    ]);
  });

  it('conntrack list: both entries of each flow together, with state, ages and backend', async () => {
    const { pinRoot, writtenAt } = await loadSample();
    const now = writtenAt + 10n * SEC;
    const all = listConntrack(open(pinRoot), {}, now);
    expect(all.map(tuple)).toEqual([
      'tcp forward 10.244.0.2:40000 > 10.96.0.10:80',
      'tcp reverse 10.244.0.5:8080 > 10.244.0.2:40000',
      'tcp forward 10.244.0.3:40001 > 10.96.0.10:80',
      'tcp reverse 10.244.0.6:8080 > 10.244.0.3:40001',
      'udp forward 10.244.0.2:5353 > 10.96.0.53:53',
      'udp reverse 10.244.0.9:5353 > 10.244.0.2:5353',
      'udp forward 10.244.0.4:6000 > 10.96.0.53:53',
    ]);
    expect(all[0]).toEqual({
      proto: 'tcp',
      dir: 'forward',
      saddr: '10.244.0.2',
      sport: 40000,
      daddr: '10.96.0.10',
      dport: 80,
      client: '10.244.0.2:40000',
      service: '10.96.0.10:80',
      backendId: 1,
      backend: '10.244.0.5:8080',
      revNatIndex: 1,
      state: 'established',
      tcpFlags: 'SYN,ACK',
      flags: [],
      snat: null,
      idleMs: 13_000,
      expiresInMs: 6 * 3600_000 - 13_000,
      lifetimeMs: 6 * 3600_000,
      stale: false,
    });
    // The reverse entry knows its service from the rev-NAT table.
    expect(all[1]).toMatchObject({ client: '10.244.0.2:40000', service: '10.96.0.10:80', backend: '10.244.0.5:8080' });
    expect(all[4]).toMatchObject({ state: 'established', idleMs: 100_000, expiresInMs: -40_000, stale: true });
    expect(all[6]).toMatchObject({ backendId: 7, backend: null, state: 'new', tcpFlags: '' });
  });

  it('conntrack list filters by client, service address, protocol and backend (id or address)', async () => {
    const { pinRoot, writtenAt } = await loadSample();
    const maps = open(pinRoot);
    const list = (filter: Parameters<typeof listConntrack>[1]) => listConntrack(maps, filter, writtenAt).map(tuple);
    expect(list({ src: '10.244.0.2' })).toEqual([
      'tcp forward 10.244.0.2:40000 > 10.96.0.10:80',
      'tcp reverse 10.244.0.5:8080 > 10.244.0.2:40000',
      'udp forward 10.244.0.2:5353 > 10.96.0.53:53',
      'udp reverse 10.244.0.9:5353 > 10.244.0.2:5353',
    ]);
    expect(list({ src: '10.244.0.2', proto: 'udp' })).toHaveLength(2);
    expect(list({ dst: '10.96.0.53' })).toEqual([
      'udp forward 10.244.0.2:5353 > 10.96.0.53:53',
      'udp reverse 10.244.0.9:5353 > 10.244.0.2:5353',
      'udp forward 10.244.0.4:6000 > 10.96.0.53:53',
    ]);
    expect(list({ backend: 2 })).toEqual(['tcp forward 10.244.0.3:40001 > 10.96.0.10:80', 'tcp reverse 10.244.0.6:8080 > 10.244.0.3:40001']);
    expect(list({ backend: '10.244.0.6' })).toEqual(list({ backend: 2 }));
    expect(list({ backend: '10.244.0.6:8080' })).toEqual(list({ backend: 2 }));
    expect(list({ backend: '10.244.0.6:9999' })).toEqual([]);
    expect(list({ proto: 'tcp', dst: '10.96.0.53' })).toEqual([]);
    expect(() => list({ src: 'nope' })).toThrow('--src: not an IPv4 or IPv6 address: nope');
    expect(() => list({ backend: '10.0.0.1:x' })).toThrow(/--backend/);
  });

  it('conntrack list: a source-NATed flow from outside shows the client\'s own address and the node port it became', async () => {
    const { lb, pinRoot, writtenAt } = await loadSample();
    const client = { address: '203.0.113.5', port: 50000 };
    const snat = { address: '192.168.1.10', port: 40001 };
    const entry = (nat: { address: string; port: number }) =>
      ctEntry.encode({
        lastSeenNs: writtenAt,
        lifetimeNs: 60n * SEC,
        backendId: 1,
        revNatIndex: 1,
        tcpFlags: 0x02,
        state: CT_STATE.new,
        natAddress: nat.address,
        natPort: nat.port,
        flags: CT_FLAGS.snat | CT_FLAGS.redirect,
      });
    const forward = { saddr: client.address, sport: client.port, daddr: '192.168.1.10', dport: 30080, proto: 'tcp', dir: 'forward' } as const;
    const reverse = { saddr: '10.244.0.5', sport: 8080, daddr: snat.address, dport: snat.port, proto: 'tcp', dir: 'reverse' } as const;
    lb.conntrack.update(ct4Key.encode(forward), entry(snat));
    lb.conntrack.update(ct4Key.encode(reverse), entry(client));
    const flows = listConntrack(open(pinRoot), { src: client.address }, writtenAt);
    expect(flows.map((f) => [f.dir, f.client, f.service, f.snat, f.flags])).toEqual([
      ['forward', '203.0.113.5:50000', '192.168.1.10:30080', '192.168.1.10:40001', ['snat', 'redirect']],
      ['reverse', '203.0.113.5:50000', '10.96.0.10:80', '192.168.1.10:40001', ['snat', 'redirect']],
    ]);
    expect(listConntrack(open(pinRoot), { src: '10.244.0.3' }, writtenAt).map((f) => [f.snat, f.flags])).toEqual([
      [null, []],
      [null, []],
    ]);
  });

  it('conntrack flush deletes only the matching entries and says how many', async () => {
    const { lb, pinRoot, writtenAt } = await loadSample();
    const maps = open(pinRoot);
    expect(flushConntrack(maps, { src: '10.244.0.2', proto: 'tcp' }, writtenAt)).toBe(2);
    expect(lb.flows()).toHaveLength(5);
    expect(flushConntrack(maps, { backend: 7 }, writtenAt)).toBe(1);
    expect(flushConntrack(maps, { backend: 7 }, writtenAt)).toBe(0);
    expect(flushConntrack(maps, {}, writtenAt)).toBe(4);
    expect(lb.flows()).toEqual([]);
  });

  it('metrics: every counter summed over CPUs, and the conntrack fill', async () => {
    const { lb, pinRoot, translated } = await loadSample();
    // One real packet as well: an ARP frame passes as not IPv4.
    expect((await lb.run(etherFrame(ETH_P_ARP))).retval).toBe(NEXT);
    const view = readMetrics(open(pinRoot));
    expect(Object.keys(view.counters)).toEqual([...LB_METRICS]);
    expect(view.counters.translated).toBe(Number(translated));
    expect(view.counters.pass_not_ip).toBe(1);
    expect(view.conntrack).toEqual({ entries: 7, maxEntries: lb.conntrack.maxEntries });
  });

  it('IPv6: services, endpoints and the rev-NAT table list both families, IPv6 as [address]:port after IPv4', async () => {
    const { lb, pinRoot, writtenAt } = await loadSample();
    addIPv6Sample(lb, writtenAt);
    const maps = open(pinRoot);
    const services = listServices(maps);
    expect(services.map((s) => s.frontend)).toEqual(['10.96.0.10:80/tcp', '10.96.0.53:53/udp', '10.96.0.99:80/tcp', '[fd00:96::10]:80/tcp', '[fd00:96::53]:53/udp']);
    expect(services[3]).toEqual({
      frontend: '[fd00:96::10]:80/tcp',
      address: 'fd00:96::10',
      port: 80,
      proto: 'tcp',
      scope: 'external',
      count: 2,
      revNatIndex: 5,
      revNat: '[fd00:96::10]:80',
      affinityTimeout: 0,
      slots: [
        { slot: 1, backendId: 21, backend: '[fd00::5]:8080' },
        { slot: 2, backendId: 22, backend: '[fd00::6]:8080' },
      ],
      problems: [],
    });
    // An IPv6 frontend's slot naming an IPv4 backend: the datapath looks for it in the IPv6 map.
    expect(services[4]!.slots).toEqual([{ slot: 1, backendId: 3, backend: '10.244.0.9:5353', problem: 'backend is IPv4, the frontend IPv6' }]);
    // Without the IPv6 maps, only IPv4's.
    expect(listServices({ services: maps.services, backends: maps.backends, revNat: maps.revNat })).toHaveLength(3);

    expect(listEndpoints(maps).filter((e) => e.id > 20)).toEqual([
      { id: 21, address: 'fd00::5', port: 8080, proto: 'tcp', frontends: ['[fd00:96::10]:80/tcp'], flows: 1 },
      { id: 22, address: 'fd00::6', port: 8080, proto: 'tcp', frontends: ['[fd00:96::10]:80/tcp'], flows: 1 },
    ]);
    expect(listReverseNat(maps).filter((r) => r.index === 5 || r.index === 6)).toEqual([
      { index: 5, address: 'fd00:96::10', port: 80, frontends: ['[fd00:96::10]:80/tcp'] },
      { index: 6, address: 'fd00:96::53', port: 53, frontends: ['[fd00:96::53]:53/udp'] },
    ]);
  });

  it('IPv6: conntrack lists ferry_ct6 beside ferry_ct4, filters by IPv6 addresses (any spelling) and flushes from it', async () => {
    const { lb, pinRoot, writtenAt } = await loadSample();
    addIPv6Sample(lb, writtenAt);
    const maps = open(pinRoot);
    const tcp = listConntrack(maps, { proto: 'tcp' }, writtenAt);
    // IPv4 clients first, then IPv6 ones by address: the outside client 2001:db8:1::100 before fd00:244::2.
    expect(tcp.map(tuple)).toEqual([
      'tcp forward 10.244.0.2:40000 > 10.96.0.10:80',
      'tcp reverse 10.244.0.5:8080 > 10.244.0.2:40000',
      'tcp forward 10.244.0.3:40001 > 10.96.0.10:80',
      'tcp reverse 10.244.0.6:8080 > 10.244.0.3:40001',
      'tcp forward 2001:db8:1::100:50000 > 2001:db8::1:30080',
      'tcp reverse fd00::6:8080 > 2001:db8::1:61000',
      'tcp forward fd00:244::2:40000 > fd00:96::10:80',
      'tcp reverse fd00::5:8080 > fd00:244::2:40000',
    ]);
    expect(tcp[6]).toMatchObject({ client: '[fd00:244::2]:40000', service: '[fd00:96::10]:80', backendId: 21, backend: '[fd00::5]:8080', snat: null, state: 'established' });
    expect(tcp[7]).toMatchObject({ client: '[fd00:244::2]:40000', service: '[fd00:96::10]:80', backend: '[fd00::5]:8080' });
    // From outside through the IPv6 NodePort, SNATed to the node's IPv6 address.
    expect(tcp[4]).toMatchObject({ client: '[2001:db8:1::100]:50000', service: '[2001:db8::1]:30080', snat: '[2001:db8::1]:61000', flags: ['snat'] });
    expect(tcp[5]).toMatchObject({ client: '[2001:db8:1::100]:50000', service: '[fd00:96::10]:80', snat: '[2001:db8::1]:61000' });

    const list = (filter: Parameters<typeof listConntrack>[1]) => listConntrack(maps, filter, writtenAt).map(tuple);
    const six = ['tcp forward fd00:244::2:40000 > fd00:96::10:80', 'tcp reverse fd00::5:8080 > fd00:244::2:40000'];
    expect(list({ src: 'FD00:244:0::2' })).toEqual(six);
    expect(list({ dst: 'fd00:96::10' })).toEqual([...list({ src: '2001:db8:1::100' }).slice(1), ...six]);
    expect(list({ backend: 'fd00::5' })).toEqual(six);
    expect(list({ backend: '[fd00::5]:8080' })).toEqual(six);
    expect(list({ backend: '[fd00::5]:9999' })).toEqual([]);
    expect(list({ backend: 21 })).toEqual(six);
    expect(() => list({ backend: 'fd00::5:8080:x' })).toThrow(/--backend/);

    expect(flushConntrack(maps, { src: 'fd00:244::2' }, writtenAt)).toBe(2);
    expect([...lb.conntrack6.keys()]).toHaveLength(2);
    expect(lb.flows()).toHaveLength(7);
    expect(readMetrics(maps).conntrack6).toEqual({ entries: 2, maxEntries: lb.conntrack6.maxEntries });
  });

  it('a missing pin root or map is named; a map of another layout is refused', async () => {
    expect(() => openPinnedMaps('/sys/fs/bpf/ferry-no-such-dir')).toThrow(DataplaneNotFoundError);
    expect(() => openPinnedMaps('/sys/fs/bpf/ferry-no-such-dir')).toThrow(/^no ferry dataplane pinned at \/sys\/fs\/bpf\/ferry-no-such-dir \(/);

    const lb = await loadLb();
    const empty = pinDir();
    expect(() => openPinnedMaps(empty)).toThrow(`no ferry dataplane pinned at ${empty}: ${join(empty, MAPS.services)} is missing`);

    // Every name present, but the services pin is really the backends map.
    const wrong = pinDir();
    for (const [role, name] of Object.entries(MAPS)) {
      const map = role === 'services' ? lb.backends : (lb[role as keyof typeof MAPS] as BpfMap);
      const copy = BpfMap.openPinned(map.pinPath!);
      copy.pin(join(wrong, name));
      copy.close();
    }
    expect(() => openPinnedMaps(wrong)).toThrow(DataplaneLayoutError);
    expect(() => openPinnedMaps(wrong)).toThrow(`${join(wrong, MAPS.services)}: key 4 B, value 8 B; this ferry expects 12 B and 16 B`);
  });
});
