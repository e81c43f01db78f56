// The route wire format without a kernel: struct rtmsg and RTA_MULTIPATH's
// rtnexthop records laid out by hand as linux/rtnetlink.h defines them, and the
// folding of IPv6 siblings that older kernels list as separate routes.
import { describe, expect, it } from 'vitest';
import { align4 } from '../../engine/netlink/attributes.js';
import { decodeRoute, encodeMultipath, encodeRtMsg, mergeIpv6Siblings, type Route } from '../../engine/netlink/codec/route.js';
import * as C from '../../engine/netlink/constants.js';

function nla(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16LE(4 + value.length, 0);
  header.writeUInt16LE(type, 2);
  return Buffer.concat([header, value, Buffer.alloc(align4(value.length) - value.length)]);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** struct rtnexthop { u16 len; u8 flags; u8 hops; s32 ifindex; } + attributes. */
function rtnh(ifindex: number, weight: number, flags: number, gw?: number[]): Buffer {
  const attrs = gw === undefined ? Buffer.alloc(0) : nla(C.RTA_GATEWAY, Buffer.from(gw));
  const head = Buffer.alloc(8);
  head.writeUInt16LE(8 + attrs.length, 0);
  head.writeUInt8(flags, 2);
  head.writeUInt8(weight - 1, 3);
  head.writeInt32LE(ifindex, 4);
  return Buffer.concat([head, attrs]);
}

describe('route codec', () => {
  it('lays out struct rtmsg in 12 bytes', () => {
    const b = encodeRtMsg({ family: C.AF_INET6, dstLen: 48, table: 100, protocol: 3, scope: 253, type: 1, flags: C.RTNH_F_ONLINK });
    expect([...b]).toEqual([10, 48, 0, 0, 100, 3, 253, 1, 4, 0, 0, 0]);
  });

  it('encodes RTA_MULTIPATH as back-to-back rtnexthop records', () => {
    const hops = encodeMultipath([
      { ifindex: 3, gw: Buffer.from([192, 0, 2, 2]), weight: 3, flags: 0 },
      { ifindex: 4, weight: 1, flags: C.RTNH_F_ONLINK },
    ]);
    expect(hops).toEqual(Buffer.concat([rtnh(3, 3, 0, [192, 0, 2, 2]), rtnh(4, 1, C.RTNH_F_ONLINK)]));
  });

  it('decodes a multipath route with RTA_TABLE, RTA_PRIORITY and RTA_METRICS', () => {
    const payload = Buffer.concat([
      encodeRtMsg({ family: C.AF_INET, dstLen: 16, table: C.RT_TABLE_UNSPEC, protocol: 4, scope: 0, type: C.RTN_UNICAST }),
      nla(C.RTA_TABLE, u32(1000)),
      nla(C.RTA_DST, Buffer.from([10, 2, 0, 0])),
      nla(C.RTA_PRIORITY, u32(20)),
      nla(C.RTA_METRICS, nla(C.RTAX_MTU, u32(1400))),
      nla(C.RTA_MULTIPATH, Buffer.concat([rtnh(3, 2, 0, [192, 0, 2, 2]), rtnh(4, 1, C.RTNH_F_ONLINK, [203, 0, 113, 1])])),
    ]);
    expect(decodeRoute(payload)).toEqual({
      family: 4,
      dst: '10.2.0.0/16',
      table: 1000,
      protocol: 4,
      scope: 'universe',
      type: 'unicast',
      metric: 20,
      mtu: 1400,
      flags: 0,
      multipath: [
        { dev: 3, gw: '192.0.2.2', weight: 2, flags: 0 },
        { dev: 4, gw: '203.0.113.1', weight: 1, flags: C.RTNH_F_ONLINK, onlink: true },
      ],
    });
  });

  it('names 0/0 and ::/0 "default", and unknown scopes and types by number', () => {
    const v6 = decodeRoute(Buffer.concat([encodeRtMsg({ family: C.AF_INET6, table: 254, scope: 42, type: 99 }), nla(C.RTA_OIF, u32(2))]));
    expect(v6).toMatchObject({ family: 6, dst: 'default', table: 254, scope: 42, type: 99, dev: 2, metric: 0 });
  });

  it('folds IPv6 siblings listed one route per path into one multipath route', () => {
    const base = { family: 6, table: 254, protocol: 3, scope: 'universe', type: 'unicast', metric: 1024, flags: 0 } as const;
    const routes: Route[] = [
      { ...base, dst: '2001:db8:9::/48', gw: '2001:db8:1::2', dev: 3, devName: 'd0' },
      { ...base, dst: '2001:db8:9::/48', gw: '2001:db8:2::2', dev: 4, devName: 'd1', onlink: true, flags: C.RTNH_F_ONLINK },
      { ...base, dst: '2001:db8:9::/48', gw: '2001:db8:1::9', dev: 3, metric: 10 }, // another metric: its own route
      { ...base, dst: 'fe80::/64', dev: 3 }, // no gateway: never a sibling
      { ...base, dst: 'fe80::/64', dev: 4 },
      { ...base, dst: 'default', gw: 'fe80::1', dev: 3, protocol: C.RTPROT_RA }, // RA routes are never siblings
      { ...base, dst: 'default', gw: 'fe80::2', dev: 3, protocol: C.RTPROT_RA },
    ];
    const merged = mergeIpv6Siblings(routes);
    expect(merged).toHaveLength(6);
    expect(merged[0]).toEqual({
      ...base,
      dst: '2001:db8:9::/48',
      multipath: [
        { gw: '2001:db8:1::2', dev: 3, devName: 'd0', weight: 1, flags: 0 },
        { gw: '2001:db8:2::2', dev: 4, devName: 'd1', weight: 1, flags: C.RTNH_F_ONLINK, onlink: true },
      ],
    });
    expect(merged.slice(1).map((r) => r.multipath)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('leaves routes the kernel already grouped (RTA_MULTIPATH) alone', () => {
    const r: Route = {
      family: 6,
      dst: '2001:db8:9::/48',
      table: 254,
      protocol: 3,
      scope: 'universe',
      type: 'unicast',
      metric: 1024,
      flags: 0,
      multipath: [{ gw: '2001:db8:1::2', dev: 3, weight: 1, flags: 0 }],
    };
    expect(mergeIpv6Siblings([r, { ...r, multipath: undefined, gw: '2001:db8:1::7', dev: 3 }])).toHaveLength(2);
  });
});
