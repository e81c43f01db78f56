// Range resolution: host-local's defaults, and every rejection naming its field.
import { describe, expect, it } from 'vitest';
import { formatAddress } from '../../plugin/ipam/address.js';
import { type IpamConfig, type RangeConfig, describeRangeSet, resolveRanges } from '../../plugin/ipam/config.js';
import { IpamConfigError } from '../../plugin/ipam/errors.js';

const cfg = (...sets: RangeConfig[][]): IpamConfig => ({ type: 'ferry', ranges: sets });

function rejection(c: IpamConfig): IpamConfigError {
  try {
    resolveRanges(c);
  } catch (e) {
    expect(e).toBeInstanceOf(IpamConfigError);
    return e as IpamConfigError;
  }
  throw new Error('expected IpamConfigError');
}

describe('resolveRanges defaults', () => {
  it('IPv4: start = network+1, end = broadcast-1, gateway = network+1', () => {
    const [set] = resolveRanges(cfg([{ subnet: '10.1.0.0/24' }]));
    const r = set!.ranges[0]!;
    expect(set!.family).toBe(4);
    expect(r.subnet).toBe('10.1.0.0/24');
    expect(r.prefix).toBe(24);
    expect(formatAddress({ family: 4, value: r.network })).toBe('10.1.0.0');
    expect(formatAddress({ family: 4, value: r.first })).toBe('10.1.0.1');
    expect(formatAddress({ family: 4, value: r.last })).toBe('10.1.0.254');
    expect(formatAddress({ family: 4, value: r.gateway })).toBe('10.1.0.1');
    expect(describeRangeSet(set!)).toBe('10.1.0.0/24 10.1.0.1-10.1.0.254');
  });

  it('IPv6: end is the last address (no broadcast)', () => {
    const [set] = resolveRanges(cfg([{ subnet: 'fd00:1::/120' }]));
    expect(set!.family).toBe(6);
    expect(describeRangeSet(set!)).toBe('fd00:1::/120 fd00:1::1-fd00:1::ff');
    expect(formatAddress({ family: 6, value: set!.ranges[0]!.gateway })).toBe('fd00:1::1');
  });

  it('keeps explicit bounds and gateway, canonicalised', () => {
    const [set] = resolveRanges(
      cfg([{ subnet: 'fd00:0:0:0::/64', rangeStart: 'fd00::0:10', rangeEnd: 'fd00::20', gateway: 'fd00::fe' }]),
    );
    const r = set!.ranges[0]!;
    expect(r.subnet).toBe('fd00::/64');
    expect(describeRangeSet(set!)).toBe('fd00::/64 fd00::10-fd00::20');
    expect(formatAddress({ family: 6, value: r.gateway })).toBe('fd00::fe');
  });

  it('dual stack: two sets, in order', () => {
    const sets = resolveRanges(cfg([{ subnet: '10.1.0.0/24' }], [{ subnet: 'fd00::/64' }]));
    expect(sets.map((s) => [s.index, s.family])).toEqual([
      [0, 4],
      [1, 6],
    ]);
  });

  it('several ranges in one set, same family', () => {
    const [set] = resolveRanges(cfg([{ subnet: '10.1.0.0/24' }, { subnet: '10.2.0.0/24', rangeStart: '10.2.0.100' }]));
    expect(describeRangeSet(set!)).toBe('10.1.0.0/24 10.1.0.1-10.1.0.254, 10.2.0.0/24 10.2.0.100-10.2.0.254');
  });

  it('two ranges sharing a subnet with disjoint bounds do not overlap', () => {
    expect(() =>
      resolveRanges(
        cfg([
          { subnet: '10.1.0.0/24', rangeEnd: '10.1.0.100' },
          { subnet: '10.1.0.0/24', rangeStart: '10.1.0.101' },
        ]),
      ),
    ).not.toThrow();
  });
});

describe('resolveRanges rejections name the field', () => {
  const cases: Array<[string, IpamConfig, string]> = [
    ['no sets', cfg(), 'ipam.ranges: no range sets'],
    ['empty set', cfg([]), 'ipam.ranges[0]: empty range set'],
    ['bad subnet', cfg([{ subnet: '10.1.0.0' }]), 'ipam.ranges[0][0].subnet "10.1.0.0": missing /prefix'],
    ['garbage subnet', cfg([{ subnet: 'ten/8' }]), 'ipam.ranges[0][0].subnet "ten/8": not an IP address'],
    ['bad prefix', cfg([{ subnet: '10.1.0.0/33' }]), 'ipam.ranges[0][0].subnet "10.1.0.0/33": bad prefix length "/33"'],
    ['host bits', cfg([{ subnet: '10.1.0.5/24' }]), 'ipam.ranges[0][0].subnet "10.1.0.5/24": host bits set; the network is 10.1.0.0/24'],
    ['too small', cfg([{ subnet: '10.1.0.0/31' }]), 'ipam.ranges[0][0].subnet "10.1.0.0/31": too small to allocate from'],
    [
      'bad rangeStart',
      cfg([{ subnet: '10.0.0.0/24' }, { subnet: '10.1.0.0/24', rangeStart: '10.1.0.300' }]),
      'ipam.ranges[0][1].rangeStart "10.1.0.300": not an IP address',
    ],
    ['start outside', cfg([{ subnet: '10.1.0.0/24', rangeStart: '10.2.0.1' }]), 'ipam.ranges[0][0].rangeStart "10.2.0.1": outside subnet 10.1.0.0/24'],
    ['end outside', cfg([{ subnet: '10.1.0.0/24', rangeEnd: '10.1.1.0' }]), 'ipam.ranges[0][0].rangeEnd "10.1.1.0": outside subnet 10.1.0.0/24'],
    ['start = network', cfg([{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.0' }]), 'ipam.ranges[0][0].rangeStart "10.1.0.0": the network address of 10.1.0.0/24'],
    ['end = broadcast', cfg([{ subnet: '10.1.0.0/24', rangeEnd: '10.1.0.255' }]), 'ipam.ranges[0][0].rangeEnd "10.1.0.255": the broadcast address of 10.1.0.0/24'],
    [
      'start > end',
      cfg([{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.50', rangeEnd: '10.1.0.10' }]),
      'ipam.ranges[0][0].rangeStart "10.1.0.50": after rangeEnd "10.1.0.10"',
    ],
    ['wrong family start', cfg([{ subnet: '10.1.0.0/24', rangeStart: 'fd00::1' }]), 'ipam.ranges[0][0].rangeStart "fd00::1": not an IPv4 address'],
    ['wrong family gateway', cfg([{ subnet: 'fd00::/64', gateway: '10.0.0.1' }]), 'ipam.ranges[0][0].gateway "10.0.0.1": not an IPv6 address'],
    ['v4-mapped', cfg([{ subnet: '::ffff:10.1.0.0/120' }]), 'ipam.ranges[0][0].subnet "::ffff:10.1.0.0/120": IPv4-mapped IPv6 address; write the IPv4 form'],
    [
      'mixed set',
      cfg([{ subnet: '10.1.0.0/24' }, { subnet: 'fd00::/64' }]),
      'ipam.ranges[0][1].subnet "fd00::/64": IPv6 in IPv4 range set 0; a range set may not mix families',
    ],
    [
      'overlap within a set',
      cfg([{ subnet: '10.1.0.0/24' }, { subnet: '10.1.0.0/16' }]),
      'ipam.ranges[0][1]: 10.1.0.0/16 10.1.0.1-10.1.255.254 overlaps ipam.ranges[0][0] (10.1.0.0/24 10.1.0.1-10.1.0.254)',
    ],
    [
      'overlap across sets',
      cfg([{ subnet: 'fd00::/64' }], [{ subnet: 'fd00::/120', rangeStart: 'fd00::80' }]),
      'ipam.ranges[1][0]: fd00::/120 fd00::80-fd00::ff overlaps ipam.ranges[0][0] (fd00::/64 fd00::1-fd00::ffff:ffff:ffff:ffff)',
    ],
  ];
  it.each(cases)('%s', (_name, c, message) => {
    const e = rejection(c);
    expect(e.message).toBe(message);
    expect(message.startsWith(e.field)).toBe(true);
  });
});
