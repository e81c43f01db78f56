// Results: the wire shape of each version, prevResults of every version,
// and chaining.
import { describe, expect, it } from 'vitest';
import { appendResult } from '../../plugin/cni/chain.js';
import type { CniError } from '../../plugin/cni/errors.js';
import { convertResult, emptyResult, parseResult, type Result } from '../../plugin/cni/result.js';
import { SUPPORTED_VERSIONS, type CniVersion } from '../../plugin/cni/versions.js';
import { podResult } from './fixtures.js';

// libcni's own test result (pkg/types/100/types_test.go), as 1.1.0 writes it.
const golden110 = {
  cniVersion: '1.1.0',
  interfaces: [{ name: 'eth0', mac: '00:11:22:33:44:55', mtu: 1500, sandbox: '/proc/3553/ns/net', socketPath: '/path/to/vhost/fd', pciID: '8086:9a01' }],
  ips: [
    { interface: 0, address: '1.2.3.30/24', gateway: '1.2.3.1' },
    { interface: 0, address: 'abcd:1234:ffff::cdde/64', gateway: 'abcd:1234:ffff::1' },
  ],
  routes: [
    { dst: '15.5.6.0/24', gw: '15.5.6.8', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
    { dst: '1111:dddd::/80', gw: '1111:dddd::aaaa' },
  ],
  dns: { nameservers: ['1.2.3.4', '1::cafe'], domain: 'acompany.com', search: ['somedomain.com', 'otherdomain.net'], options: ['foo', 'bar'] },
};

// The same result in each older version: what the spec of that version has, nothing more.
function goldenFor(v: CniVersion): Record<string, unknown> {
  if (v === '1.1.0') return golden110;
  const legacy = v.startsWith('0.');
  return {
    cniVersion: v,
    interfaces: [{ name: 'eth0', mac: '00:11:22:33:44:55', sandbox: '/proc/3553/ns/net' }],
    ips: [
      { ...(legacy ? { version: '4' } : {}), interface: 0, address: '1.2.3.30/24', gateway: '1.2.3.1' },
      { ...(legacy ? { version: '6' } : {}), interface: 0, address: 'abcd:1234:ffff::cdde/64', gateway: 'abcd:1234:ffff::1' },
    ],
    routes: [
      { dst: '15.5.6.0/24', gw: '15.5.6.8' },
      { dst: '1111:dddd::/80', gw: '1111:dddd::aaaa' },
    ],
    dns: golden110.dns,
  };
}

const parseFailure = (raw: unknown): [number, string] => {
  try {
    parseResult(raw);
  } catch (e) {
    return [(e as CniError).code, (e as CniError).msg];
  }
  throw new Error('parsed');
};

describe('convertResult', () => {
  it('writes each version exactly, key order included', () => {
    const internal = parseResult(golden110);
    for (const v of SUPPORTED_VERSIONS) {
      const wire = convertResult(internal, v);
      expect(JSON.stringify(wire)).toBe(JSON.stringify(goldenFor(v)));
    }
  });

  it('round-trips a result of every version through the internal shape', () => {
    for (const v of SUPPORTED_VERSIONS) {
      const wire = goldenFor(v);
      expect(convertResult(parseResult(wire), v)).toEqual(wire);
    }
  });

  it('converts between every pair of versions as libcni does', () => {
    for (const from of SUPPORTED_VERSIONS) {
      for (const to of SUPPORTED_VERSIONS) {
        const expected = goldenFor(to);
        // What `from` lacks (1.1.0's extra fields) cannot reappear in `to`.
        if (from !== '1.1.0' && to === '1.1.0') {
          expected.interfaces = [{ name: 'eth0', mac: '00:11:22:33:44:55', sandbox: '/proc/3553/ns/net' }];
          expected.routes = [
            { dst: '15.5.6.0/24', gw: '15.5.6.8' },
            { dst: '1111:dddd::/80', gw: '1111:dddd::aaaa' },
          ];
        }
        expect([from, to, convertResult(parseResult(goldenFor(from)), to)]).toEqual([from, to, expected]);
      }
    }
  });

  it('leaves out what is empty, as Go\'s omitempty does', () => {
    expect(convertResult(emptyResult(), '1.1.0')).toEqual({ cniVersion: '1.1.0' });
    const r: Result = { interfaces: [{ name: 'eth0', mac: '', sandbox: '' }], ips: [], routes: [], dns: { nameservers: [], domain: '' } };
    expect(convertResult(r, '0.4.0')).toEqual({ cniVersion: '0.4.0', interfaces: [{ name: 'eth0' }] });
  });

  it('counts an IPv4-mapped IPv6 address as version 4, as Go does', () => {
    const r = { ...emptyResult(), ips: [{ address: '::ffff:10.0.0.1/120' }] };
    expect(convertResult(r, '0.3.1').ips).toEqual([{ version: '4', address: '::ffff:10.0.0.1/120' }]);
  });

  it('does not alias its input', () => {
    const r = podResult();
    const wire = convertResult(r, '1.1.0');
    wire.dns!.nameservers!.push('1.1.1.1');
    wire.interfaces![0]!.name = 'changed';
    expect(r).toEqual(podResult());
  });
});

describe('parseResult', () => {
  it('reads prevResults as runtimes write them: nulls, no cniVersion, IPAM-only', () => {
    expect(parseResult({ ips: [{ address: '10.1.0.5/16', gateway: '10.1.0.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: ['10.1.0.1'] } })).toEqual({
      interfaces: [],
      ips: [{ address: '10.1.0.5/16', gateway: '10.1.0.1' }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.1.0.1'] },
    });
    expect(parseResult({ cniVersion: '0.4.0', interfaces: null, ips: [{ version: '4', address: '10.1.0.5/16', gateway: '' }], dns: {} })).toEqual({
      interfaces: [],
      ips: [{ address: '10.1.0.5/16' }],
      routes: [],
      dns: {},
    });
    expect(parseResult({})).toEqual(emptyResult());
  });

  it('says 7 with the path under prevResult', () => {
    expect(parseFailure({ ips: [{ address: '10.1.0.5' }] })).toEqual([7, 'prevResult.ips[0].address "10.1.0.5": expected an address with a /prefix, e.g. 10.1.0.0/16']);
    expect(parseFailure({ ips: [{ version: '6', address: '10.1.0.5/16' }] })).toEqual([7, 'prevResult.ips[0].version "6": does not match address "10.1.0.5/16"']);
    expect(parseFailure({ interfaces: [{ name: 'eth0' }], ips: [{ address: '10.1.0.5/16', interface: 1 }] })).toEqual([
      7,
      'prevResult.ips[0].interface 1: is not an index into interfaces (1 entry)',
    ]);
    expect(parseFailure({ routes: [{ dst: '0.0.0.0/0', scope: 300 }] })).toEqual([7, 'prevResult.routes[0].scope: must be at most 255, got 300']);
    expect(parseFailure({ interfaces: [{ mac: 'x' }] })).toEqual([7, 'prevResult.interfaces[0].name: required']);
    expect(parseFailure([])).toEqual([7, 'prevResult: expected object, got array']);
  });
});

describe('appendResult', () => {
  it('puts ferry\'s part after the previous result and re-bases its interface indices', () => {
    const prev = parseResult({
      interfaces: [{ name: 'cni0', mac: '00:11:22:33:44:55' }],
      ips: [{ address: '10.1.0.5/16', interface: 0 }],
      routes: [{ dst: '10.0.0.0/8' }],
      dns: { nameservers: ['10.1.0.1'], domain: 'prev.local' },
    });
    const mine = podResult();
    const out = appendResult(prev, mine);
    expect(out.interfaces.map((i) => i.name)).toEqual(['cni0', 'fer8f1b2c3d', 'eth0']);
    expect(out.ips).toEqual([{ address: '10.1.0.5/16', interface: 0 }, { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 }, { address: 'fd00:10:244:1::5/64', interface: 2 }]);
    expect(out.routes.map((r) => r.dst)).toEqual(['10.0.0.0/8', '0.0.0.0/0', '::/0']);
    expect(out.dns).toEqual({ nameservers: ['10.96.0.10'], domain: 'prev.local', search: ['default.svc.cluster.local'] });
    expect(() => parseResult(convertResult(out, '1.1.0'))).not.toThrow();
    expect(appendResult(undefined, mine)).toEqual(mine);
  });
});
