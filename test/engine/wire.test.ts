// The rtnetlink wire format and input validation, checked without a kernel:
// attributes and messages are built by hand the way linux/netlink.h lays them
// out, and ferry's encoders and decoders must agree with those bytes.
import { describe, expect, it } from 'vitest';
import { align4, Attrs, AttrWriter } from '../../engine/netlink/attributes.js';
import {
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  RTM_NEWLINK,
} from '../../engine/netlink/constants.js';
import {
  errnoCode,
  errnoText,
  ExistsError,
  InvalidArgumentError,
  LinkNotFoundError,
  NetlinkError,
  netlinkError,
  NotFoundError,
} from '../../engine/netlink/errors.js';
import { decodeAck, decodeMessages, encodeMessage, NLMSG_HDRLEN, type NetlinkMessage } from '../../engine/netlink/message.js';
import { checkLinkName, checkRange, formatIp, formatMac, parseCidr, parseIp, parseMac } from '../../engine/validate.js';

const NLA_F_NESTED = 1 << 15;

/** One struct nlattr by hand: u16 len (header + value), u16 type, value, zero padding to 4. */
function nla(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16LE(4 + value.length, 0);
  header.writeUInt16LE(type, 2);
  return Buffer.concat([header, value, Buffer.alloc(align4(value.length) - value.length)]);
}

/** One struct nlmsghdr + payload by hand, padded to 4 like NLMSG_ALIGN. */
function nlmsg(type: number, flags: number, seq: number, payload: Buffer, pid = 0): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32LE(16 + payload.length, 0);
  header.writeUInt16LE(type, 4);
  header.writeUInt16LE(flags, 6);
  header.writeUInt32LE(seq, 8);
  header.writeUInt32LE(pid, 12);
  return Buffer.concat([header, payload, Buffer.alloc(align4(payload.length) - payload.length)]);
}

function s32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

describe('AttrWriter and Attrs', () => {
  it('encodes each scalar as linux/netlink.h lays it out, padded to 4 bytes', () => {
    const w = new AttrWriter()
      .u8(1, 0xab)
      .u16(2, 0x1234)
      .be16(3, 4789)
      .u32(4, 0xdeadbeef)
      .s32(5, -2)
      .string(6, 'eth0')
      .bytes(7, Buffer.from([1, 2, 3, 4, 5]));
    const be = Buffer.alloc(2);
    be.writeUInt16BE(4789);
    const u16 = Buffer.alloc(2);
    u16.writeUInt16LE(0x1234);
    const expected = Buffer.concat([
      nla(1, Buffer.of(0xab)),
      nla(2, u16),
      nla(3, be),
      nla(4, u32(0xdeadbeef)),
      nla(5, s32(-2)),
      nla(6, Buffer.from('eth0\0')),
      nla(7, Buffer.from([1, 2, 3, 4, 5])),
    ]);
    expect(w.toBuffer()).toEqual(expected);
    expect(w.toBuffer().length % 4).toBe(0);
  });

  it('keeps the unpadded length in nla_len and pads with zeros', () => {
    const buf = new AttrWriter().bytes(9, Buffer.from([0xff, 0xff, 0xff])).u8(10, 7).toBuffer();
    expect(buf.length).toBe(8 + 8);
    expect(buf.readUInt16LE(0)).toBe(4 + 3);
    expect(buf[7]).toBe(0);
    expect(buf.readUInt16LE(8)).toBe(4 + 1);
    expect(buf.subarray(13, 16)).toEqual(Buffer.alloc(3));
  });

  it('round-trips every scalar type', () => {
    const a = Attrs.parse(
      new AttrWriter()
        .u8(1, 200)
        .u16(2, 65000)
        .be16(3, 8472)
        .u32(4, 0xffffffff)
        .s32(5, -1)
        .string(6, 'vxlan.calico')
        .bytes(7, Buffer.alloc(0))
        .toBuffer(),
    );
    expect(a.u8(1)).toBe(200);
    expect(a.u16(2)).toBe(65000);
    expect(a.be16(3)).toBe(8472);
    expect(a.u32(4)).toBe(0xffffffff);
    expect(a.s32(5)).toBe(-1);
    expect(a.string(6)).toBe('vxlan.calico');
    expect(a.get(7)).toEqual(Buffer.alloc(0));
    expect(a.has(7)).toBe(true);
    expect(a.has(8)).toBe(false);
    expect(a.u32(8)).toBeUndefined();
    expect(a.string(8)).toBeUndefined();
  });

  it('decodes strings with or without their NUL', () => {
    const a = Attrs.parse(Buffer.concat([nla(1, Buffer.from('abc\0junk')), nla(2, Buffer.from('noterm'))]));
    expect(a.string(1)).toBe('abc');
    expect(a.string(2)).toBe('noterm');
  });

  it('nests with NLA_F_NESTED set and parses nested attributes back, two levels deep', () => {
    const buf = new AttrWriter()
      .u32(1, 42)
      .nest(18, (info) => {
        info.string(1, 'vxlan');
        info.nest(2, (data) => data.u32(1, 7).u8(7, 0).be16(15, 4789));
      })
      .u32(3, 43)
      .toBuffer();
    // The outer nest's header: type 18 with the nested bit, length covering both inner attributes.
    const nestAt = 8;
    expect(buf.readUInt16LE(nestAt + 2)).toBe(18 | NLA_F_NESTED);
    const inner = new AttrWriter().string(1, 'vxlan').nest(2, (d) => d.u32(1, 7).u8(7, 0).be16(15, 4789)).toBuffer();
    expect(buf.readUInt16LE(nestAt)).toBe(4 + inner.length);

    const top = Attrs.parse(buf);
    expect(top.u32(1)).toBe(42);
    expect(top.u32(3)).toBe(43);
    // The nested flag is masked off on the way in.
    expect(top.list.map(([t]) => t)).toEqual([1, 18, 3]);
    const info = top.nested(18)!;
    expect(info.string(1)).toBe('vxlan');
    const data = info.nested(2)!;
    expect(data.u32(1)).toBe(7);
    expect(data.u8(7)).toBe(0);
    expect(data.be16(15)).toBe(4789);
    expect(top.nested(99)).toBeUndefined();
  });

  it('masks NLA_F_NET_BYTEORDER off the type', () => {
    const a = Attrs.parse(nla(5 | (1 << 14), u32(1)));
    expect(a.u32(5)).toBe(1);
  });

  it('returns the last of repeated types from get() and all of them from all()', () => {
    const a = Attrs.parse(new AttrWriter().u32(1, 1).u32(2, 9).u32(1, 2).u32(1, 3).toBuffer());
    expect(a.u32(1)).toBe(3);
    expect(a.all(1).map((b) => b.readUInt32LE(0))).toEqual([1, 2, 3]);
    expect(a.all(4)).toEqual([]);
  });

  it('parses from an offset up to an end (after a family header)', () => {
    const header = Buffer.alloc(16, 0xee);
    const attrs = new AttrWriter().u32(1, 5).toBuffer();
    const trailer = nla(2, u32(6));
    const buf = Buffer.concat([header, attrs, trailer]);
    const a = Attrs.parse(buf, 16, 16 + attrs.length);
    expect(a.u32(1)).toBe(5);
    expect(a.has(2)).toBe(false);
  });

  it('stops at a truncated or malformed attribute instead of misreading', () => {
    const good = nla(1, u32(1));
    const overlong = Buffer.alloc(8);
    overlong.writeUInt16LE(64, 0); // claims more than is there
    overlong.writeUInt16LE(2, 2);
    expect(Attrs.parse(Buffer.concat([good, overlong])).list.map(([t]) => t)).toEqual([1]);
    const tooShort = Buffer.alloc(4);
    tooShort.writeUInt16LE(2, 0); // below the 4-byte header
    expect(Attrs.parse(Buffer.concat([good, tooShort, good])).list.length).toBe(1);
    expect(Attrs.parse(Buffer.concat([good, Buffer.alloc(3)])).list.length).toBe(1);
    expect(Attrs.parse(Buffer.alloc(0)).list).toEqual([]);
  });
});

describe('encodeMessage and decodeMessages', () => {
  it('writes struct nlmsghdr with the unpadded length and pads the buffer', () => {
    const body = Buffer.from([1, 2, 3, 4, 5]);
    const msg = encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0x01020304, body);
    expect(msg).toEqual(nlmsg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0x01020304, body));
    expect(msg.readUInt32LE(0)).toBe(NLMSG_HDRLEN + 5);
    expect(msg.length).toBe(24);
    expect(msg.readUInt32LE(12)).toBe(0); // port id: the kernel's to fill
  });

  it('round-trips several messages in one datagram, padding included', () => {
    const datagram = Buffer.concat([
      encodeMessage(RTM_NEWLINK, NLM_F_MULTI, 7, Buffer.from('abc')),
      encodeMessage(RTM_NEWLINK, NLM_F_MULTI, 7, Buffer.alloc(16, 1)),
      nlmsg(NLMSG_DONE, NLM_F_MULTI, 7, s32(0), 4242),
    ]);
    const msgs = decodeMessages(datagram);
    expect(msgs.map((m) => [m.type, m.flags, m.seq])).toEqual([
      [RTM_NEWLINK, NLM_F_MULTI, 7],
      [RTM_NEWLINK, NLM_F_MULTI, 7],
      [NLMSG_DONE, NLM_F_MULTI, 7],
    ]);
    // The payload excludes the padding after an unaligned message.
    expect(msgs[0]!.payload).toEqual(Buffer.from('abc'));
    expect(msgs[1]!.payload).toEqual(Buffer.alloc(16, 1));
    expect(msgs[2]!.pid).toBe(4242);
    expect(msgs[2]!.payload.readInt32LE(0)).toBe(0);
  });

  it('drops a truncated trailing message and stops at a bogus length', () => {
    const one = encodeMessage(RTM_NEWLINK, 0, 1, Buffer.alloc(4));
    const truncated = encodeMessage(RTM_NEWLINK, 0, 2, Buffer.alloc(32)).subarray(0, 20);
    expect(decodeMessages(Buffer.concat([one, truncated])).map((m) => m.seq)).toEqual([1]);
    const bogus = Buffer.alloc(16);
    bogus.writeUInt32LE(8, 0); // shorter than a header
    expect(decodeMessages(Buffer.concat([one, bogus, one])).map((m) => m.seq)).toEqual([1]);
    expect(decodeMessages(Buffer.alloc(10))).toEqual([]);
  });
});

describe('decodeAck (struct nlmsgerr)', () => {
  // The request the kernel echoes back: an unaligned length on purpose (16 + 21 = 37).
  const request = encodeMessage(
    RTM_NEWLINK,
    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    99,
    Buffer.concat([Buffer.alloc(16), new AttrWriter().string(3, 'veth0').toBuffer().subarray(0, 5)]),
  );
  const requestLength = request.readUInt32LE(0);

  function errorMessage(flags: number, payload: Buffer): NetlinkMessage {
    const [msg] = decodeMessages(nlmsg(NLMSG_ERROR, flags, 99, payload));
    return msg!;
  }

  it('decodes a plain acknowledgement (error 0, header only)', () => {
    const ack = decodeAck(errorMessage(NLM_F_CAPPED, Buffer.concat([s32(0), request.subarray(0, 16)])));
    expect(ack).toEqual({ errno: 0 });
  });

  it('decodes an error without extended ack as a positive errno', () => {
    const ack = decodeAck(errorMessage(0, Buffer.concat([s32(-17), request])));
    expect(ack.errno).toBe(17);
    expect(ack.extack).toBeUndefined();
    expect(ack.badAttrOffset).toBeUndefined();
  });

  it('finds NLMSGERR_ATTR_MSG and _OFFS after the whole echoed request', () => {
    expect(requestLength % 4).not.toBe(0);
    const tlvs = Buffer.concat([nla(NLMSGERR_ATTR_MSG, Buffer.from('Unknown device type\0')), nla(NLMSGERR_ATTR_OFFS, u32(36))]);
    // The echoed request is NLMSG_ALIGNed before the TLVs.
    const echoed = Buffer.concat([request.subarray(0, requestLength), Buffer.alloc(align4(requestLength) - requestLength)]);
    const ack = decodeAck(errorMessage(NLM_F_ACK_TLVS, Buffer.concat([s32(-95), echoed, tlvs])));
    expect(ack).toEqual({ errno: 95, extack: 'Unknown device type', badAttrOffset: 36 });
  });

  it('with NLM_F_CAPPED finds the TLVs after the echoed header only, whatever its nlmsg_len says', () => {
    const header = request.subarray(0, 16); // nlmsg_len still reads 37
    expect(header.readUInt32LE(0)).toBe(requestLength);
    const tlvs = nla(NLMSGERR_ATTR_MSG, Buffer.from('ipv4: Address already assigned\0'));
    const ack = decodeAck(errorMessage(NLM_F_ACK_TLVS | NLM_F_CAPPED, Buffer.concat([s32(-17), header, tlvs])));
    expect(ack).toEqual({ errno: 17, extack: 'ipv4: Address already assigned' });
  });

  it('ignores TLVs when NLM_F_ACK_TLVS is not set, and an empty message', () => {
    const tlvs = nla(NLMSGERR_ATTR_MSG, Buffer.from('ignored\0'));
    expect(decodeAck(errorMessage(NLM_F_CAPPED, Buffer.concat([s32(-22), request.subarray(0, 16), tlvs])))).toEqual({ errno: 22 });
    const empty = nla(NLMSGERR_ATTR_MSG, Buffer.from('\0'));
    expect(decodeAck(errorMessage(NLM_F_ACK_TLVS | NLM_F_CAPPED, Buffer.concat([s32(-22), request.subarray(0, 16), empty])))).toEqual({
      errno: 22,
    });
  });
});

describe('errno names and texts', () => {
  it('names errnos as the kernel headers do', () => {
    expect(errnoCode(17)).toBe('EEXIST');
    expect(errnoCode(19)).toBe('ENODEV');
    expect(errnoCode(22)).toBe('EINVAL');
    expect(errnoCode(99)).toBe('EADDRNOTAVAIL');
    expect(errnoCode(3)).toBe('ESRCH');
    // Linux spells 95 EOPNOTSUPP (rtnetlink's "unknown link kind"), as strerrorname_np does.
    expect(errnoCode(95)).toBe('EOPNOTSUPP');
    expect(errnoCode(11)).toBe('EAGAIN');
    // Errnos libuv has no entry for, which netlink does return.
    expect(errnoCode(42)).toBe('ENOMSG');
    expect(errnoCode(74)).toBe('EBADMSG');
    expect(errnoCode(115)).toBe('EINPROGRESS');
    expect(errnoCode(524)).toBe('E524'); // ENOTSUPP: kernel-internal, no userspace name
  });

  it('gives a human text for each errno', () => {
    expect(errnoText(17).toLowerCase()).toContain('exists');
    expect(errnoText(19).toLowerCase()).toContain('no such device');
    expect(errnoText(95).toLowerCase()).toBe('operation not supported');
    expect(errnoText(524)).toBe('errno 524');
    expect(errnoText(42)).not.toBe('');
  });

  it('builds the most specific error class and keeps errno, code and the kernel text', () => {
    const e = netlinkError('ip link add', 'link "v0" in netns n1', 17, 'some reason');
    expect(e).toBeInstanceOf(ExistsError);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({ errno: 17, code: 'EEXIST', op: 'ip link add', object: 'link "v0" in netns n1', extack: 'some reason' });
    expect(e.message).toBe(`ip link add link "v0" in netns n1: ${errnoText(17)} (EEXIST): kernel says "some reason"`);
    expect(netlinkError('op', 'obj', 19)).toBeInstanceOf(LinkNotFoundError);
    for (const errno of [2, 3, 99]) expect(netlinkError('op', 'obj', errno)).toBeInstanceOf(NotFoundError);
    const other = netlinkError('op', 'obj', 95);
    expect(other.constructor).toBe(NetlinkError);
    expect(other.code).toBe('EOPNOTSUPP');
    expect(other.message).not.toContain('kernel says');
  });

  it('InvalidArgumentError is EINVAL and names the operation, object and reason', () => {
    const e = new InvalidArgumentError('ip link add', 'link "x"', 'bad name');
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({ errno: 22, code: 'EINVAL', name: 'InvalidArgumentError' });
    expect(e.message).toBe('ip link add link "x": bad name (EINVAL)');
  });
});

describe('validate', () => {
  const invalid = (fn: () => unknown, ...parts: string[]) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ errno: 22, code: 'EINVAL' });
    for (const p of parts) expect((error as Error).message).toContain(p);
  };

  it.each(['10.0.0.1', '10.0.0.300/24', '10.0.0.1/33', 'fd00::1/129', '1.2.3/8', '10.1/16', '010.0.0.1/8', '', '/24', 'fd00::1', 'fd00::g/64', '10.0.0.1/-1', '10.0.0.1/24/1'])(
    'parseCidr rejects %j and names it',
    (text) => invalid(() => parseCidr('ip addr add', 'address on link "x"', text), `"${text}"`, 'ip addr add', 'address on link "x"'),
  );

  it('parseCidr accepts IPv4 and IPv6 and returns canonical text and bytes', () => {
    expect(parseCidr('op', 'obj', '10.0.0.1/24')).toEqual({ family: 4, address: '10.0.0.1', prefixLen: 24, bytes: Buffer.from([10, 0, 0, 1]) });
    expect(parseCidr('op', 'obj', '0.0.0.0/0')).toMatchObject({ family: 4, prefixLen: 0 });
    expect(parseCidr('op', 'obj', '192.168.1.255/32')).toMatchObject({ family: 4, prefixLen: 32 });
    const v6 = parseCidr('op', 'obj', 'FD00:0::1/64');
    expect(v6).toMatchObject({ family: 6, address: 'fd00::1', prefixLen: 64 });
    expect(v6.bytes).toEqual(Buffer.from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    expect(parseCidr('op', 'obj', '::/0')).toMatchObject({ family: 6, address: '::', prefixLen: 0 });
    expect(parseCidr('op', 'obj', 'fd00::1/128')).toMatchObject({ prefixLen: 128 });
    expect(parseCidr('op', 'obj', '::ffff:10.0.0.1/128')).toMatchObject({ family: 6, prefixLen: 128 });
  });

  it('parseIp takes a bare address only', () => {
    expect(parseIp('op', 'obj', '10.0.0.1')).toMatchObject({ family: 4, address: '10.0.0.1', prefixLen: 32 });
    expect(parseIp('op', 'obj', 'fd00::2')).toMatchObject({ family: 6, address: 'fd00::2', prefixLen: 128 });
    invalid(() => parseIp('op', 'obj', '10.0.0.1/24'), '10.0.0.1/24');
    invalid(() => parseIp('op', 'obj', '10.0.0'), '10.0.0');
  });

  it.each(['', 'a'.repeat(16), 'a/b', 'a b', 'a\tb', '.', '..', 'a:b', 'eth%d', 'é'.repeat(8)])('checkLinkName rejects %j', (name) =>
    invalid(() => checkLinkName('ip link add', name), 'ip link add'),
  );

  it('checkLinkName accepts up to 15 bytes', () => {
    expect(() => checkLinkName('op', 'a'.repeat(15))).not.toThrow();
    expect(() => checkLinkName('op', 'vxlan.calico')).not.toThrow();
    expect(() => checkLinkName('op', 'é'.repeat(7))).not.toThrow(); // 14 bytes
    expect(() => checkLinkName('op', 'e')).not.toThrow();
  });

  it('parseMac/formatMac round-trip and reject malformed MACs', () => {
    expect(parseMac('op', 'obj', '02:00:AA:bb:0c:Ff')).toEqual(Buffer.from([2, 0, 0xaa, 0xbb, 0x0c, 0xff]));
    expect(formatMac(Buffer.from([2, 0, 0xaa, 0xbb, 0x0c, 0xff]))).toBe('02:00:aa:bb:0c:ff');
    expect(formatMac(Buffer.alloc(0))).toBeUndefined();
    expect(formatMac(undefined)).toBeUndefined();
    for (const bad of ['02:00:aa:bb:0c', '02-00-aa-bb-0c-ff', '02:00:aa:bb:0c:fg', '2:0:aa:bb:c:ff']) invalid(() => parseMac('op', 'obj', bad), bad);
  });

  it('formatIp prints 4- and 16-byte addresses and nothing else', () => {
    expect(formatIp(Buffer.from([10, 1, 2, 3]))).toBe('10.1.2.3');
    expect(formatIp(parseCidr('op', 'obj', 'fd00:1::5/64').bytes)).toBe('fd00:1::5');
    expect(formatIp(Buffer.alloc(6))).toBeUndefined();
    expect(formatIp(undefined)).toBeUndefined();
  });

  it('checkRange accepts integers in range and names the field otherwise', () => {
    expect(() => checkRange('op', 'obj', 'mtu', 1500, 68, 65535)).not.toThrow();
    invalid(() => checkRange('op', 'obj', 'mtu', 67, 68, 65535), 'mtu', '67');
    invalid(() => checkRange('op', 'obj', 'vni', 1.5, 0, 0xffffff), 'vni');
    invalid(() => checkRange('op', 'obj', 'vni', 0x1000000, 0, 0xffffff), 'vni');
  });
});
