// engine/dataplane/layout.ts against bpf/include/ferry_lb.h as compiled into
// build/bpf/lb.o: the object's BTF (bpftool as the oracle) must agree with
// every codec's C type, size, member offsets and sizes, with every enum
// table, and with which key and value each map declares; libbpf's view of
// the object must agree with the map and program names.
import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';

import { BpfObject } from '../../engine/bpf/index.js';
import {
  backendId,
  type CCodec,
  C_ENUMS,
  CT_FLAGS,
  ct4Key,
  ct6Key,
  lb6AffinityKey,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  ctEntry,
  ctStale,
  affinityExpired,
  BACKENDS_MAX,
  cidr4,
  cidr6,
  clusterCidrsByFamily,
  CT_PROTO,
  HAIRPIN_ADDRESS,
  HOSTPORT_BACKEND_IDS,
  HOSTPORT_REV_NAT,
  NODE_CLUSTER_CIDRS_MAX,
  lb4Affinity,
  lb4AffinityKey,
  lb4Maglev,
  lb4MaglevKey,
  MAGLEV_MAX,
  LB_METRICS,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  localPod4,
  localPod4Key,
  localPod6Key,
  MAP_CODECS,
  MAPS,
  metricIndex,
  nodeConfig,
  OBJECT_FILE,
  PROGRAMS,
  revNatIndex,
  SERVICE_BACKEND_IDS_MIN,
} from '../../engine/dataplane/layout.js';
import { ROUTED_GATEWAY_V4 } from '../../plugin/network/routed.js';
import { bpfObject } from '../bpf/support.js';
import { run } from '../support/netns.js';

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: Array<{ name: string; type_id: number; bits_offset: number; bitfield_size?: number }>;
  values?: Array<{ name: string; val: number }>;
  vars?: Array<{ type_id: number }>;
  linkage?: string;
}

const OBJECT = bpfObject(OBJECT_FILE.replace(/\.o$/, ''));

/** The object's BTF as bpftool dumps it (raw format, JSON). */
function loadBtf(): Map<number, BtfType> {
  const { types } = JSON.parse(run('bpftool', ['-j', 'btf', 'dump', 'file', OBJECT, 'format', 'raw'])) as { types: BtfType[] };
  return new Map(types.map((t) => [t.id, t]));
}

const btf = loadBtf();

function byId(id: number): BtfType {
  const t = btf.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  return t;
}

function named(kind: string, name: string): BtfType {
  const found = [...btf.values()].filter((t) => t.kind === kind && t.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} '${name}' in ${OBJECT}'s BTF, found ${found.length}`);
  return found[0]!;
}

/** Skips typedefs and qualifiers. */
function resolve(t: BtfType): BtfType {
  return ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind) ? resolve(byId(t.type_id!)) : t;
}

function sizeOf(t: BtfType): number {
  const r = resolve(t);
  switch (r.kind) {
    case 'INT':
    case 'ENUM':
    case 'ENUM64':
    case 'STRUCT':
    case 'UNION':
      return r.size!;
    case 'ARRAY':
      return r.nr_elems! * sizeOf(byId(r.type_id!));
    case 'PTR':
      return 8;
    default:
      throw new Error(`no size for BTF ${r.kind} ${r.name}`);
  }
}

/** What a codec's cType names: a struct tag, or a typedef such as __u32. */
function cTypeName(t: BtfType): string {
  return t.kind === 'STRUCT' ? t.name : t.kind === 'TYPEDEF' ? t.name : `${t.kind} ${t.name}`;
}

/** The map definition's `key`/`value`/`type` member: what the __type()/__uint() pointer points to. */
function mapMember(mapName: string, member: 'key' | 'value' | 'type'): BtfType {
  const variable = named('VAR', mapName);
  const def = byId(variable.type_id!);
  const m = def.members?.find((x) => x.name === member);
  if (!m) throw new Error(`map ${mapName} has no ${member}`);
  return byId(byId(m.type_id).type_id!);
}

// cidr4 and cidr6 sit inside node_cfg (its cluster_cidrs and cluster_cidrs6), so no map names them.
const STRUCT_CODECS = [
  ...Object.values(MAP_CODECS).flatMap(({ key, value }) => [key, value] as CCodec<unknown>[]),
  cidr4 as CCodec<unknown>,
  cidr6 as CCodec<unknown>,
].filter((c) => c.fields.length > 0);

describe(`layout.ts against ${OBJECT_FILE}'s BTF (bpftool)`, () => {
  it.each(STRUCT_CODECS.map((c) => [c.cType, c] as const))('struct %s: size, and every member at the same offset with the same size', (_name, codec) => {
    const struct = named('STRUCT', codec.cType);
    expect(struct.size).toBe(codec.size);
    const members = struct.members!.map((m) => {
      expect(m.bitfield_size ?? 0, `${codec.cType}.${m.name} is a bitfield`).toBe(0);
      expect(m.bits_offset % 8).toBe(0);
      return { name: m.name, offset: m.bits_offset / 8, size: sizeOf(byId(m.type_id)) };
    });
    expect(codec.fields).toEqual(members);
  });

  it('every enum-typed struct member has a TypeScript table', () => {
    const tables = new Set(C_ENUMS.map((e) => e.cType));
    for (const codec of STRUCT_CODECS) {
      for (const m of named('STRUCT', codec.cType).members!) {
        const type = resolve(byId(m.type_id));
        if (type.kind === 'ENUM') expect(tables.has(type.name), `${codec.cType}.${m.name}: enum ${type.name}`).toBe(true);
      }
    }
  });

  it.each(C_ENUMS.map((e) => [e.cType, e] as const))('enum %s: the same enumerators with the same values', (_name, e) => {
    const values = Object.fromEntries(named('ENUM', e.cType).values!.map((v) => [v.name, v.val]));
    const expected: Record<string, number> = Object.fromEntries(
      Object.entries(e.values).map(([name, value]) => [`${e.prefix}${name.toUpperCase()}`, value]),
    );
    if (e.sentinel !== undefined) expected[e.sentinel] = Object.keys(e.values).length;
    expect(values).toEqual(expected);
  });

  it('LB_METRICS lists the metrics by index, and the metrics map has one slot each', () => {
    expect(Object.keys(C_ENUMS.find((e) => e.cType === 'lb_metric')!.values)).toEqual([...LB_METRICS]);
    expect(resolve(mapMember(MAPS.metrics, 'type')).kind).toBe('ARRAY');
    const def = byId(named('VAR', MAPS.metrics).type_id!);
    const maxEntries = byId(byId(def.members!.find((m) => m.name === 'max_entries')!.type_id).type_id!);
    expect(maxEntries.nr_elems).toBe(LB_METRICS.length);
  });

  it.each([MAPS.backends, MAPS.backends6])('map %s: an array (BPF_MAP_TYPE_ARRAY) of BACKENDS_MAX slots, room for hostPorts’ ids and Services’ above them', (mapName) => {
    // __uint(type, N) and __uint(max_entries, N) are pointers to arrays of N elements.
    const uint = (member: string) => {
      const def = byId(named('VAR', mapName).type_id!);
      return byId(byId(def.members!.find((m) => m.name === member)!.type_id).type_id!).nr_elems;
    };
    const BPF_MAP_TYPE_ARRAY = 2;
    expect(uint('type')).toBe(BPF_MAP_TYPE_ARRAY);
    expect(uint('max_entries')).toBe(BACKENDS_MAX);
    expect(HOSTPORT_BACKEND_IDS.max - HOSTPORT_BACKEND_IDS.min + 1).toBe(HOSTPORT_REV_NAT.max - HOSTPORT_REV_NAT.min + 1);
    expect(SERVICE_BACKEND_IDS_MIN).toBe(HOSTPORT_BACKEND_IDS.max + 1);
    expect(SERVICE_BACKEND_IDS_MIN).toBeLessThan(BACKENDS_MAX);
  });

  it.each(Object.entries(MAPS))('map %s (%s): key and value are the codecs’ C types', (role, mapName) => {
    const { key, value } = MAP_CODECS[role as keyof typeof MAPS];
    for (const [which, codec] of [['key', key], ['value', value]] as const) {
      const type = mapMember(mapName, which);
      expect(cTypeName(type), `${mapName} ${which}`).toBe(codec.cType);
      expect(sizeOf(type), `${mapName} ${which}`).toBe(codec.size);
    }
  });

  it('PROGRAMS name global functions', () => {
    for (const name of Object.values(PROGRAMS)) expect(named('FUNC', name).linkage).toBe('global');
  });

  it.each([
    ['cluster_cidrs', cidr4],
    ['cluster_cidrs6', cidr6],
  ] as const)('node_cfg.%s holds NODE_CLUSTER_CIDRS_MAX entries of the codec’s type', (name, codec) => {
    const member = named('STRUCT', 'node_cfg').members!.find((m) => m.name === name)!;
    const array = resolve(byId(member.type_id));
    expect(array.kind).toBe('ARRAY');
    expect(array.nr_elems).toBe(NODE_CLUSTER_CIDRS_MAX);
    expect(resolve(byId(array.type_id!)).name).toBe(codec.cType);
  });
});

describe(`layout.ts against libbpf's view of ${OBJECT_FILE}`, () => {
  it('has exactly the maps and programs layout.ts names, with the codecs’ sizes', () => {
    const spec = BpfObject.open(OBJECT);
    try {
      const expectedTypes: Record<keyof typeof MAPS, string> = {
        services: 'hash',
        backends: 'array',
        revNat: 'hash',
        conntrack: 'lru_hash',
        metrics: 'percpu_array',
        nodeConfig: 'array',
        affinity: 'lru_hash',
        maglev: 'hash',
        localPods: 'hash',
        clusterNodes: 'hash',
        fragments: 'lru_hash',
        services6: 'hash',
        backends6: 'array',
        revNat6: 'hash',
        conntrack6: 'lru_hash',
        affinity6: 'lru_hash',
        localPods6: 'hash',
      };
      // libbpf's own map besides: CONFIG_HZ for lb_now() (lib/common.h), never pinned.
      expect(spec.maps.filter((m) => m.name.includes('.')).map((m) => ({ name: m.name, pinned: m.pinPath !== undefined }))).toEqual([{ name: 'lb.kconfig', pinned: false }]);
      const maps = spec.maps
        .filter((m) => !m.name.includes('.'))
        .map((m) => ({ name: m.name, type: m.type, keySize: m.keySize, valueSize: m.valueSize, pinned: m.pinPath !== undefined }));
      expect(maps).toEqual(
        (Object.keys(MAPS) as Array<keyof typeof MAPS>).map((role) => ({
          name: MAPS[role],
          type: expectedTypes[role],
          keySize: MAP_CODECS[role].key.size,
          valueSize: MAP_CODECS[role].value.size,
          pinned: true,
        })),
      );
      expect(spec.programs.map((p) => ({ name: p.name, section: p.section, type: p.type }))).toEqual([
        { name: PROGRAMS.fromPod, section: 'tc', type: 'sched_cls' },
        { name: PROGRAMS.fromUplink, section: 'tc', type: 'sched_cls' },
        { name: PROGRAMS.toUplink, section: 'tc', type: 'sched_cls' },
      ]);
      for (const name of Object.values(MAPS)) expect(name.length).toBeLessThanOrEqual(15);
    } finally {
      spec.close();
    }
  });
});

describe('layout.ts codecs', () => {
  const hostU16 = (n: number) => {
    const b = Buffer.alloc(2);
    if (endianness() === 'LE') b.writeUInt16LE(n);
    else b.writeUInt16BE(n);
    return b;
  };

  it('writes addresses and ports in network order, the rest in host order, padding as zeros', () => {
    const key = lb4Key.encode({ address: '10.96.0.10', port: 80, proto: 'udp', slot: 2, scope: 'internal' });
    expect(key).toEqual(Buffer.concat([Buffer.from([10, 96, 0, 10, 0, 80]), hostU16(2), Buffer.from([17, 1, 0, 0])]));
    expect(revNatIndex.encode(0x0102)).toEqual(hostU16(0x0102));
  });

  it('round-trips every key and value', () => {
    const cases: Array<[CCodec<unknown>, unknown]> = [
      [lb4Key, { address: '10.96.0.10', port: 443, proto: 'tcp', slot: 0, scope: 'external' }],
      [lb4Service, { backendId: 0xfffffffe, count: 3, revNatIndex: 65535, flags: 0, affinityTimeout: 10800 }],
      [backendId, 0xffffffff],
      [lb4Backend, { address: '10.244.1.7', port: 8443, proto: 'udp', flags: 0 }],
      [revNatIndex, 42],
      [lb4ReverseNat, { address: '255.255.255.255', port: 65535 }],
      [ct4Key, { saddr: '10.244.0.9', daddr: '10.96.0.10', sport: 40000, dport: 80, proto: 'tcp', dir: 'reverse' }],
      [ct4Key, { saddr: '10.244.0.9', daddr: '192.0.2.100', sport: 4321, dport: 0, proto: 'icmp', dir: 'forward' }],
      [
        ctEntry,
        {
          lastSeenNs: 123456789012345n,
          lifetimeNs: 21600n * 10n ** 9n,
          backendId: 9,
          revNatIndex: 7,
          tcpFlags: 0x12,
          state: 1,
          natAddress: '192.0.2.1',
          natPort: 61234,
          flags: CT_FLAGS.snat | CT_FLAGS.redirect,
        },
      ],
      [nodeConfig, { snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535, clusterCidrs: [], snatAddress6: '::' }],
      [nodeConfig, { snatAddress: '192.0.2.1', snatPortMin: 1, snatPortMax: 2, clusterCidrs: ['10.244.0.0/16', '100.64.0.0/10', '0.0.0.0/1', '10.0.0.7/32'], snatAddress6: '2001:db8::1' }],
      [
        nodeConfig,
        {
          snatAddress: '192.0.2.1',
          snatPortMin: 61000,
          snatPortMax: 65535,
          clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56', '2001:db8::/32', '8000::/1', 'fd00::7/128'],
          snatAddress6: '2001:db8::1',
        },
      ],
      [lb6Key, { address: 'fd00:96::a', port: 443, proto: 'tcp', slot: 2, scope: 'internal' }],
      [lb6Backend, { address: 'fd00:244::5', port: 8080, proto: 'udp', flags: 0 }],
      [lb6ReverseNat, { address: '2001:db8::10', port: 53 }],
      [ct6Key, { saddr: 'fd00:244::9', daddr: 'fd00:96::a', sport: 40000, dport: 80, proto: 'tcp', dir: 'reverse' }],
      [lb6AffinityKey, { clientAddress: 'fd00:244::9', revNatIndex: 7, scope: 'external' }],
      [lb4AffinityKey, { clientAddress: '10.244.0.9', revNatIndex: 7, scope: 'internal' }],
      [localPod4Key, { address: '10.244.0.9' }],
      [localPod6Key, { address: 'fd00:10:244::9' }],
      [localPod4, { ifindex: 0x7fff_fff1, podMac: '02:aa:bb:cc:dd:ee', hostMac: 'fe:00:00:00:00:01' }],
      [lb4Affinity, { lastUsedNs: 123456789012345n, backendId: 9, slot: 3 }],
      [lb4MaglevKey, { revNatIndex: 65535, scope: 'external' }],
      [lb4Maglev, { seed: 0xdeadbeef, backendIds: Uint32Array.from([3, 1, 2, 0xffffffff, 1]) }],
    ];
    for (const [codec, value] of cases) {
      const bytes = codec.encode(value);
      expect(bytes.length).toBe(codec.size);
      expect(codec.decode(bytes)).toEqual(value);
    }
  });

  it('rejects bad values naming the field, and buffers of the wrong size', () => {
    const key = { address: '10.96.0.10', port: 80, proto: 'tcp', slot: 0, scope: 'external' } as const;
    expect(() => lb4Key.encode({ ...key, address: '10.96.0' })).toThrow(/lb4_key\.address/);
    expect(() => lb4Key.encode({ ...key, port: 65536 })).toThrow(/lb4_key\.dport/);
    expect(() => lb4Key.encode({ ...key, slot: -1 })).toThrow(/lb4_key\.slot/);
    expect(() => lb4Key.encode({ ...key, proto: 'sctp' as 'tcp' })).toThrow(/lb4_key\.proto/);
    expect(() => backendId.encode(2 ** 32)).toThrow(RangeError);
    expect(() => ctEntry.decode(Buffer.alloc(31))).toThrow(/32 bytes/);
    // ICMP is a conntrack protocol, no service's.
    const badProto = lb4Backend.encode({ address: '10.0.0.1', port: 1, proto: 'tcp', flags: 0 });
    badProto[6] = CT_PROTO.icmp;
    expect(() => lb4Backend.decode(badProto)).toThrow(/lb4_backend\.proto: unknown value 1/);
  });

  it('writes cluster CIDRs as address and mask, each family to its own array, and refuses host bits, non-CIDRs, and more than NODE_CLUSTER_CIDRS_MAX of a family', () => {
    const config = { snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535 };
    const bytes = nodeConfig.encode({ ...config, clusterCidrs: ['fd00:10:244::/56', '10.244.0.0/16'] });
    expect(bytes.length).toBe(8 + 8 * NODE_CLUSTER_CIDRS_MAX + 16 + 32 * NODE_CLUSTER_CIDRS_MAX);
    expect(bytes.subarray(8, 24)).toEqual(Buffer.from([10, 244, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    // cluster_cidrs6[0] after snat_addr6 (offset 40): address, then a /56 mask; [1] unused.
    const six = bytes.subarray(56, 56 + 64);
    expect(six.subarray(0, 16)).toEqual(Buffer.from([0xfd, 0, 0, 0x10, 0x02, 0x44, ...new Array<number>(10).fill(0)]));
    expect(six.subarray(16, 32)).toEqual(Buffer.from([...new Array<number>(7).fill(0xff), ...new Array<number>(9).fill(0)]));
    expect(six.subarray(32)).toEqual(Buffer.alloc(32));
    expect(nodeConfig.decode(bytes).clusterCidrs).toEqual(['10.244.0.0/16', 'fd00:10:244::/56']);
    expect(nodeConfig.decode(nodeConfig.encode(config)).clusterCidrs).toEqual([]);

    expect(() => nodeConfig.encode({ ...config, clusterCidrs: ['10.244.0.1/16'] })).toThrow(/cluster_cidrs\[0\]: 10\.244\.0\.1\/16 has host bits set/);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: ['10.244.0.0/16', 'fd00::1/64'] })).toThrow(/cluster_cidrs6\[0\]: fd00::1\/64 has host bits set \(the network is fd00::\/64\)/);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: ['10.244.0.0'] })).toThrow(/must be an IPv4 or IPv6 CIDR such as .*, got 10\.244\.0\.0$/);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: ['10.1/16'] })).toThrow(/must be an IPv4 or IPv6 CIDR/);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: ['fe80::%eth0/64'] })).toThrow(/must be an IPv4 or IPv6 CIDR/);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: ['0.0.0.0/0'] })).toThrow(/cluster_cidrs\[0\]: 0\.0\.0\.0\/0 takes in every address/);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: ['::/0'] })).toThrow(/cluster_cidrs6\[0\]: ::\/0 takes in every address/);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: new Array<string>(NODE_CLUSTER_CIDRS_MAX + 1).fill('10.0.0.0/8') })).toThrow(
      /^node_cfg\.cluster_cidrs: 10\.0\.0\.0\/8 is one IPv4 cluster CIDR too many: at most 4 of each family$/,
    );
    // Four of each family fit; a fifth IPv6 one is named, however the families mix.
    const four6 = ['fd00:1::/64', 'fd00:2::/64', 'fd00:3::/64', 'fd00:4::/64'];
    const four4 = ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16', '10.4.0.0/16'];
    const mixed = four6.flatMap((c, i) => [c, four4[i]!]);
    expect(nodeConfig.decode(nodeConfig.encode({ ...config, clusterCidrs: mixed })).clusterCidrs).toEqual([...four4, ...four6]);
    expect(clusterCidrsByFamily(mixed)[6].map((c) => c.address)).toEqual(['fd00:1::', 'fd00:2::', 'fd00:3::', 'fd00:4::']);
    expect(() => nodeConfig.encode({ ...config, clusterCidrs: [...mixed.slice(0, 3), 'fd00:5::/64', ...mixed.slice(3)] })).toThrow(
      /^node_cfg\.cluster_cidrs6: fd00:4::\/64 is one IPv6 cluster CIDR too many: at most 4 of each family$/,
    );
  });

  it('HAIRPIN_ADDRESS is routed mode’s gateway, the address pods know the node by', () => {
    expect(HAIRPIN_ADDRESS).toBe(ROUTED_GATEWAY_V4);
  });

  it('names metrics by index, and judges staleness by last_seen + lifetime', () => {
    expect(metricIndex('translated')).toBe(0);
    expect(LB_METRICS[metricIndex('drop_no_backend')]).toBe('drop_no_backend');
    const entry = { lastSeenNs: 1000n, lifetimeNs: 50n, backendId: 1, revNatIndex: 1, tcpFlags: 0, state: 0 };
    expect(ctStale(entry, 1050n)).toBe(false);
    expect(ctStale(entry, 1051n)).toBe(true);
    expect(affinityExpired({ lastUsedNs: 1n }, 2, 2_000_000_001n)).toBe(false);
    expect(affinityExpired({ lastUsedNs: 1n }, 2, 2_000_000_002n)).toBe(true);
  });

  it('lays a Maglev table out as size, seed, then MAGLEV_MAX ids, and refuses a larger one', () => {
    const bytes = lb4Maglev.encode({ seed: 5, backendIds: [7, 8] });
    expect(bytes.length).toBe(8 + 4 * MAGLEV_MAX);
    expect([0, 4, 8, 12, 16].map((o) => (endianness() === 'LE' ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o)))).toEqual([2, 5, 7, 8, 0]);
    expect(() => lb4Maglev.encode({ seed: 0, backendIds: new Array<number>(MAGLEV_MAX + 1).fill(1) })).toThrow(/lb4_maglev\.size/);
  });
});
