// Crafted IPv6 frames for BPF_PROG_TEST_RUN: Ethernet + IPv6 + TCP or UDP
// with a correct L4 checksum (the pseudo header of RFC 8200 8.1 covers the
// 128-bit addresses), other next headers (extension headers, ICMPv6 with
// its checksum), and parsers that read a frame back and verify its
// checksums independently of the program under test. Addresses are RFC 5952
// text, as engine/dataplane/layout.ts's codecs read them back.
import ipaddr from 'ipaddr.js';

import { ETH_HLEN, ETH_P_IPV6, IPPROTO, onesSum, TCP } from './packets.js';

export { ETH_HLEN, ETH_P_IPV6, TCP };

export const IPV6_HLEN = 40;

/** Next header values (RFC 8200, 4443). */
export const NEXTHDR = { hopByHop: 0, tcp: 6, udp: 17, routing: 43, fragment: 44, icmp: 58, none: 59, destination: 60 } as const;

/** ICMPv6 types and codes (RFC 4443, 4861). */
export const ICMP6 = { DEST_UNREACH: 1, PORT_UNREACH: 4, ECHO_REQUEST: 128, NEIGHBOR_SOLICIT: 135 } as const;

/** The minimum IPv6 MTU (RFC 8200 5): an ICMPv6 error is at most this long. */
export const IPV6_MIN_MTU = 1280;

const DST_MAC = [0x02, 0, 0, 0, 0, 0x02];
const SRC_MAC = [0x02, 0, 0, 0, 0, 0x01];

export interface Ipv6Spec {
  proto: 'tcp' | 'udp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** TCP flags; default SYN. */
  flags?: number;
  payload?: Buffer;
  hopLimit?: number;
  /** The first word's traffic class and flow label (28 bits). */
  flowInfo?: number;
  /** UDP only: checksum 0 (not allowed by IPv6, but sent by some) instead of computing it. */
  udpNoChecksum?: boolean;
}

/** 16 bytes of an IPv6 address in text. */
export function address6(text: string): Buffer {
  if (!text.includes(':') || !ipaddr.IPv6.isValid(text)) throw new TypeError(`not an IPv6 address: ${text}`);
  return Buffer.from(ipaddr.IPv6.parse(text).toByteArray());
}

/** RFC 5952 text of the 16 bytes at `offset`. */
export function formatAddress6(b: Buffer, offset: number): string {
  return ipaddr.fromByteArray([...b.subarray(offset, offset + 16)]).toString();
}

/** The pseudo header (RFC 8200 8.1): addresses, upper-layer length (32 bits), 3 zero bytes, next header. */
export function pseudoHeader6(src: Buffer, dst: Buffer, nextHeader: number, length: number): Buffer {
  const ph = Buffer.alloc(40);
  src.copy(ph, 0);
  dst.copy(ph, 16);
  ph.writeUInt32BE(length, 32);
  ph.writeUInt8(nextHeader, 39);
  return ph;
}

/** The checksum of an upper-layer message under IPv6 (its checksum field taken as it is, normally 0). */
export function checksum6(src: Buffer, dst: Buffer, nextHeader: number, message: Buffer): number {
  return ~onesSum(message, onesSum(pseudoHeader6(src, dst, nextHeader, message.length))) & 0xffff;
}

function frameWith(nextHeader: number, src: string, dst: string, body: Buffer, hopLimit = 64, flowInfo = 0): Buffer {
  const frame = Buffer.alloc(ETH_HLEN + IPV6_HLEN + body.length);
  frame.set(DST_MAC, 0);
  frame.set(SRC_MAC, 6);
  frame.writeUInt16BE(ETH_P_IPV6, 12);
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + IPV6_HLEN);
  ip.writeUInt32BE(((6 << 28) | (flowInfo & 0x0fffffff)) >>> 0, 0);
  ip.writeUInt16BE(body.length, 4);
  ip.writeUInt8(nextHeader, 6);
  ip.writeUInt8(hopLimit, 7);
  address6(src).copy(ip, 8);
  address6(dst).copy(ip, 24);
  body.copy(frame, ETH_HLEN + IPV6_HLEN);
  return frame;
}

/** An Ethernet + IPv6 + TCP/UDP frame with a valid checksum. */
export function ipv6Packet(spec: Ipv6Spec): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const proto = IPPROTO[spec.proto];
  const l4 = Buffer.alloc((spec.proto === 'tcp' ? 20 : 8) + payload.length);
  l4.writeUInt16BE(spec.sport, 0);
  l4.writeUInt16BE(spec.dport, 2);
  if (spec.proto === 'tcp') {
    l4.writeUInt32BE(1000, 4); // seq
    l4.writeUInt32BE(0, 8); // ack
    l4.writeUInt8(5 << 4, 12); // data offset
    l4.writeUInt8(spec.flags ?? TCP.SYN, 13);
    l4.writeUInt16BE(64240, 14); // window
    payload.copy(l4, 20);
    l4.writeUInt16BE(checksum6(address6(spec.src), address6(spec.dst), proto, l4), 16);
  } else {
    l4.writeUInt16BE(l4.length, 4);
    payload.copy(l4, 8);
    // A computed 0 goes out as 0xffff: 0 means "no checksum".
    if (!spec.udpNoChecksum) l4.writeUInt16BE(checksum6(address6(spec.src), address6(spec.dst), proto, l4) || 0xffff, 6);
  }
  return frameWith(proto, spec.src, spec.dst, l4, spec.hopLimit, spec.flowInfo);
}

/** An Ethernet + IPv6 frame whose next header is `nextHeader`, `body` after the fixed header as given. */
export function ipv6Other(nextHeader: number, src: string, dst: string, body: Buffer): Buffer {
  return frameWith(nextHeader, src, dst, body);
}

/**
 * A TCP/UDP packet behind one extension header of 8 bytes (`kind`: a hop-by-hop,
 * routing, destination options or fragment header), the L4 checksum valid.
 */
export function ipv6WithExtension(kind: number, spec: Ipv6Spec): Buffer {
  const plain = ipv6Packet(spec);
  const l4 = plain.subarray(ETH_HLEN + IPV6_HLEN);
  const ext = Buffer.alloc(8);
  ext.writeUInt8(IPPROTO[spec.proto], 0);
  if (kind === NEXTHDR.hopByHop || kind === NEXTHDR.destination) ext.set([1, 4, 0, 0, 0, 0], 2); // PadN
  if (kind === NEXTHDR.routing) ext.set([0, 4, 0], 1); // type 4 (SRH) left 0: a header nobody acts on
  if (kind === NEXTHDR.fragment) ext.writeUInt32BE(0x12345678, 4); // offset 0, no M flag: an atomic fragment
  return frameWith(kind, spec.src, spec.dst, Buffer.concat([ext, l4]), spec.hopLimit);
}

/** An ICMPv6 message (type, code, checksum, body) in an IPv6 frame, its checksum valid. */
export function icmp6Packet(type: number, code: number, src: string, dst: string, body: Buffer, hopLimit = 64): Buffer {
  const message = Buffer.concat([Buffer.from([type, code, 0, 0]), body]);
  message.writeUInt16BE(checksum6(address6(src), address6(dst), NEXTHDR.icmp, message), 2);
  return frameWith(NEXTHDR.icmp, src, dst, message, hopLimit);
}

export interface Icmp6ErrorSpec {
  type: number;
  code: number;
  src: string;
  dst: string;
  /** The frame the error is about (ipv6Packet()): its IPv6 packet is quoted. */
  about: Buffer;
  /** How many bytes of it to quote; default all of it (within the minimum MTU, RFC 4443 2.4 (c)). */
  quote?: number;
  /** The word after the checksum: packet too big's MTU, parameter problem's pointer; default 0. */
  word?: number;
}

/** An Ethernet + IPv6 + ICMPv6 error quoting `about`, its checksum computed afresh. */
export function icmp6Error(spec: Icmp6ErrorSpec): Buffer {
  const ip = spec.about.subarray(ETH_HLEN);
  const word = Buffer.alloc(4);
  word.writeUInt32BE(spec.word ?? 0);
  const quoted = ip.subarray(0, Math.min(spec.quote ?? ip.length, IPV6_MIN_MTU - IPV6_HLEN - 8));
  return icmp6Packet(spec.type, spec.code, spec.src, spec.dst, Buffer.concat([word, quoted]));
}

/** The quote of an error frame read back as a frame of its own, for parseIpv6Packet(). */
export function quotedFrame(error: Buffer): Buffer {
  return Buffer.concat([error.subarray(0, ETH_HLEN), parseIcmp6Error(error).quote]);
}

/** A neighbour solicitation (RFC 4861 4.3) for `target`, to its solicited-node multicast group. */
export function neighborSolicitation(src: string, target: string): Buffer {
  const t = address6(target);
  const group = `ff02::1:ff${t.subarray(13, 14).toString('hex')}:${t.subarray(14, 16).toString('hex')}`;
  // Reserved (4), target (16), source link-layer address option (8).
  const body = Buffer.concat([Buffer.alloc(4), t, Buffer.from([1, 1, ...SRC_MAC])]);
  const frame = icmp6Packet(ICMP6.NEIGHBOR_SOLICIT, 0, src, ipaddr.IPv6.parse(group).toString(), body, 255);
  frame.set([0x33, 0x33, 0xff, t[13]!, t[14]!, t[15]!], 0);
  return frame;
}

export interface ParsedIpv6 {
  proto: 'tcp' | 'udp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  hopLimit: number;
  flags: number;
  l4Checksum: number;
  /** TCP: always verified. UDP: true for checksum 0 as well. */
  l4ChecksumValid: boolean;
  /** The frame's length agrees with the payload length. */
  lengthConsistent: boolean;
  payload: Buffer;
}

/** Reads back a frame ipv6Packet() could have built and verifies its L4 checksum. */
export function parseIpv6Packet(frame: Buffer): ParsedIpv6 {
  if (frame.readUInt16BE(12) !== ETH_P_IPV6) throw new Error('not an IPv6 frame');
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + IPV6_HLEN);
  if (ip[0]! >> 4 !== 6) throw new Error(`IP version ${ip[0]! >> 4} in an IPv6 frame`);
  const payloadLength = ip.readUInt16BE(4);
  const next = ip[6]!;
  const proto = next === IPPROTO.tcp ? 'tcp' : next === IPPROTO.udp ? 'udp' : undefined;
  if (proto === undefined) throw new Error(`not TCP or UDP: next header ${next}`);
  const l4 = frame.subarray(ETH_HLEN + IPV6_HLEN, ETH_HLEN + IPV6_HLEN + payloadLength);
  const l4Checksum = l4.readUInt16BE(proto === 'tcp' ? 16 : 6);
  const pseudo = pseudoHeader6(ip.subarray(8, 24), ip.subarray(24, 40), next, l4.length);
  return {
    proto,
    src: formatAddress6(ip, 8),
    dst: formatAddress6(ip, 24),
    sport: l4.readUInt16BE(0),
    dport: l4.readUInt16BE(2),
    hopLimit: ip[7]!,
    flags: proto === 'tcp' ? l4[13]! : 0,
    l4Checksum,
    l4ChecksumValid: proto === 'udp' && l4Checksum === 0 ? true : onesSum(l4, onesSum(pseudo)) === 0xffff,
    lengthConsistent: frame.length === ETH_HLEN + IPV6_HLEN + payloadLength,
    payload: Buffer.from(l4.subarray(proto === 'tcp' ? 20 : 8)),
  };
}

export interface ParsedIcmp6Error {
  src: string;
  dst: string;
  /** The Ethernet addresses, as hex strings (aa:bb:…). */
  ethSrc: string;
  ethDst: string;
  hopLimit: number;
  /** The first word's version, traffic class and flow label. */
  firstWord: number;
  type: number;
  code: number;
  /** The 4 bytes after the checksum ("unused" for destination unreachable). */
  unused: number;
  /** Verified over the pseudo header and the whole message. */
  icmpChecksumValid: boolean;
  /** The invoking packet, from its IPv6 header on, as far as quoted. */
  quote: Buffer;
  /** The frame's length agrees with the payload length. */
  lengthConsistent: boolean;
  /** The IPv6 packet's length (header included). */
  packetLength: number;
}

function formatMac(b: Buffer, offset: number): string {
  return [...b.subarray(offset, offset + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Reads back an Ethernet + IPv6 + ICMPv6 error frame and verifies its checksum (RFC 4443 2.3). */
export function parseIcmp6Error(frame: Buffer): ParsedIcmp6Error {
  if (frame.readUInt16BE(12) !== ETH_P_IPV6) throw new Error('not an IPv6 frame');
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + IPV6_HLEN);
  if (ip[6] !== NEXTHDR.icmp) throw new Error(`not ICMPv6: next header ${ip[6]}`);
  const payloadLength = ip.readUInt16BE(4);
  const icmp = frame.subarray(ETH_HLEN + IPV6_HLEN, ETH_HLEN + IPV6_HLEN + payloadLength);
  const pseudo = pseudoHeader6(ip.subarray(8, 24), ip.subarray(24, 40), NEXTHDR.icmp, icmp.length);
  return {
    src: formatAddress6(ip, 8),
    dst: formatAddress6(ip, 24),
    ethDst: formatMac(frame, 0),
    ethSrc: formatMac(frame, 6),
    hopLimit: ip[7]!,
    firstWord: ip.readUInt32BE(0),
    type: icmp[0]!,
    code: icmp[1]!,
    unused: icmp.readUInt32BE(4),
    icmpChecksumValid: onesSum(icmp, onesSum(pseudo)) === 0xffff,
    quote: Buffer.from(icmp.subarray(8)),
    lengthConsistent: frame.length === ETH_HLEN + IPV6_HLEN + payloadLength,
    packetLength: IPV6_HLEN + payloadLength,
  };
}
