// Crafted frames for BPF_PROG_TEST_RUN: Ethernet + IPv4 (with options, as a
// fragment, or cut short) + TCP or UDP, with correct IP and L4 checksums;
// and the other way round, a parser that reads a frame back and verifies
// both checksums independently of the program under test (RFC 791, 793, 768).
import { isIPv4 } from 'node:net';

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;

export const IPPROTO = { icmp: 1, tcp: 6, udp: 17 } as const;

/** TCP flag bits, as in byte 13 of the header. */
export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

const DST_MAC = [0x02, 0, 0, 0, 0, 0x02];
const SRC_MAC = [0x02, 0, 0, 0, 0, 0x01];

export interface Ipv4Spec {
  proto: 'tcp' | 'udp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** TCP flags; default SYN. */
  flags?: number;
  payload?: Buffer;
  /** IP options, padded by the caller to a multiple of 4 bytes (≤ 40). */
  options?: Buffer;
  ttl?: number;
  id?: number;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  moreFragments?: boolean;
  /** UDP only: send checksum 0 ("none", RFC 768) instead of computing it. */
  udpNoChecksum?: boolean;
}

/** The ones' complement sum of `data` folded to 16 bits (not inverted). */
export function onesSum(data: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The Internet checksum of `data` (RFC 1071). */
export function internetChecksum(data: Buffer, initial = 0): number {
  return ~onesSum(data, initial) & 0xffff;
}

function addressBytes(address: string): Buffer {
  if (!isIPv4(address)) throw new TypeError(`not an IPv4 address: ${address}`);
  return Buffer.from(address.split('.').map(Number));
}

function pseudoHeader(src: Buffer, dst: Buffer, proto: number, length: number): Buffer {
  const ph = Buffer.alloc(12);
  src.copy(ph, 0);
  dst.copy(ph, 4);
  ph.writeUInt8(proto, 9);
  ph.writeUInt16BE(length, 10);
  return ph;
}

/** An Ethernet + IPv4 + TCP/UDP frame with valid checksums. */
export function ipv4Packet(spec: Ipv4Spec): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const options = spec.options ?? Buffer.alloc(0);
  if (options.length % 4 !== 0 || options.length > 40) throw new RangeError('IP options must be a multiple of 4 bytes, at most 40');
  const proto = IPPROTO[spec.proto];
  const ipLen = 20 + options.length;
  const l4Len = (spec.proto === 'tcp' ? 20 : 8) + payload.length;
  const frame = Buffer.alloc(ETH_HLEN + ipLen + l4Len);

  frame.set(DST_MAC, 0);
  frame.set(SRC_MAC, 6);
  frame.writeUInt16BE(ETH_P_IP, 12);

  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + ipLen);
  ip.writeUInt8(0x40 | (ipLen / 4), 0);
  ip.writeUInt16BE(ipLen + l4Len, 2);
  ip.writeUInt16BE(spec.id ?? 0x1234, 4);
  ip.writeUInt16BE(((spec.moreFragments ? 1 : 0) << 13) | (spec.fragOffset ?? 0), 6);
  ip.writeUInt8(spec.ttl ?? 64, 8);
  ip.writeUInt8(proto, 9);
  const src = addressBytes(spec.src);
  const dst = addressBytes(spec.dst);
  src.copy(ip, 12);
  dst.copy(ip, 16);
  options.copy(ip, 20);
  ip.writeUInt16BE(internetChecksum(ip), 10);

  const l4 = frame.subarray(ETH_HLEN + ipLen);
  l4.writeUInt16BE(spec.sport, 0);
  l4.writeUInt16BE(spec.dport, 2);
  if (spec.proto === 'tcp') {
    l4.writeUInt32BE(1000, 4); // seq
    l4.writeUInt32BE(0, 8); // ack
    l4.writeUInt8(5 << 4, 12); // data offset
    l4.writeUInt8(spec.flags ?? TCP.SYN, 13);
    l4.writeUInt16BE(64240, 14); // window
    payload.copy(l4, 20);
    l4.writeUInt16BE(internetChecksum(l4, onesSum(pseudoHeader(src, dst, proto, l4Len))), 16);
  } else {
    l4.writeUInt16BE(l4Len, 4);
    payload.copy(l4, 8);
    if (!spec.udpNoChecksum) {
      // A computed 0 goes out as 0xffff: 0 means "no checksum".
      l4.writeUInt16BE(internetChecksum(l4, onesSum(pseudoHeader(src, dst, proto, l4Len))) || 0xffff, 6);
    }
  }
  return frame;
}

/** An Ethernet frame carrying something other than IPv4 (a zeroed body). */
export function etherFrame(ethertype: number, bodyLength = 46): Buffer {
  const frame = Buffer.alloc(ETH_HLEN + bodyLength);
  frame.set(DST_MAC, 0);
  frame.set(SRC_MAC, 6);
  frame.writeUInt16BE(ethertype, 12);
  return frame;
}

/** An IPv4 frame with another protocol (e.g. ICMP echo) and a correct IP checksum. */
export function ipv4Other(proto: number, src: string, dst: string, body: Buffer): Buffer {
  const frame = Buffer.alloc(ETH_HLEN + 20 + body.length);
  frame.set(DST_MAC, 0);
  frame.set(SRC_MAC, 6);
  frame.writeUInt16BE(ETH_P_IP, 12);
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + 20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + body.length, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(proto, 9);
  addressBytes(src).copy(ip, 12);
  addressBytes(dst).copy(ip, 16);
  ip.writeUInt16BE(internetChecksum(ip), 10);
  body.copy(frame, ETH_HLEN + 20);
  return frame;
}

export interface ParsedIpv4 {
  proto: 'tcp' | 'udp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  ttl: number;
  /** IP header length in bytes (options included). */
  ipHeaderLength: number;
  flags: number;
  /** The L4 checksum field as sent. */
  l4Checksum: number;
  ipChecksumValid: boolean;
  /** TCP: always verified. UDP: true for checksum 0 ("none") as well. */
  l4ChecksumValid: boolean;
  payload: Buffer;
}

function formatAddress(b: Buffer, offset: number): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/** Reads back a frame ipv4Packet() could have built and verifies its checksums. */
export function parseIpv4Packet(frame: Buffer): ParsedIpv4 {
  if (frame.readUInt16BE(12) !== ETH_P_IP) throw new Error('not an IPv4 frame');
  const ipLen = (frame[ETH_HLEN]! & 0x0f) * 4;
  const totalLength = frame.readUInt16BE(ETH_HLEN + 2);
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + ipLen);
  const protoNumber = ip[9]!;
  const proto = protoNumber === IPPROTO.tcp ? 'tcp' : protoNumber === IPPROTO.udp ? 'udp' : undefined;
  if (proto === undefined) throw new Error(`not TCP or UDP: protocol ${protoNumber}`);
  const l4 = frame.subarray(ETH_HLEN + ipLen, ETH_HLEN + totalLength);
  const pseudo = pseudoHeader(ip.subarray(12, 16), ip.subarray(16, 20), protoNumber, l4.length);
  const l4Checksum = l4.readUInt16BE(proto === 'tcp' ? 16 : 6);
  const l4Valid = proto === 'udp' && l4Checksum === 0 ? true : onesSum(l4, onesSum(pseudo)) === 0xffff;
  return {
    proto,
    src: formatAddress(ip, 12),
    dst: formatAddress(ip, 16),
    sport: l4.readUInt16BE(0),
    dport: l4.readUInt16BE(2),
    ttl: ip[8]!,
    ipHeaderLength: ipLen,
    flags: proto === 'tcp' ? l4[13]! : 0,
    l4Checksum,
    ipChecksumValid: onesSum(ip) === 0xffff,
    l4ChecksumValid: l4Valid,
    payload: Buffer.from(l4.subarray(proto === 'tcp' ? 20 : 8)),
  };
}

export interface ParsedIcmpError {
  src: string;
  dst: string;
  /** The Ethernet addresses, as hex strings (aa:bb:…). */
  ethSrc: string;
  ethDst: string;
  type: number;
  code: number;
  ipChecksumValid: boolean;
  /** Verified over the whole ICMP message (header and quote). */
  icmpChecksumValid: boolean;
  /** What the error quotes: the original IP header and the start of its payload. */
  quote: Buffer;
  /** The frame's length agrees with the IP total length. */
  lengthConsistent: boolean;
}

function formatMac(b: Buffer, offset: number): string {
  return [...b.subarray(offset, offset + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Reads back an Ethernet + IPv4 + ICMP error frame and verifies both checksums (RFC 792). */
export function parseIcmpError(frame: Buffer): ParsedIcmpError {
  if (frame.readUInt16BE(12) !== ETH_P_IP) throw new Error('not an IPv4 frame');
  const ipLen = (frame[ETH_HLEN]! & 0x0f) * 4;
  const totalLength = frame.readUInt16BE(ETH_HLEN + 2);
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + ipLen);
  if (ip[9] !== IPPROTO.icmp) throw new Error(`not ICMP: protocol ${ip[9]}`);
  const icmp = frame.subarray(ETH_HLEN + ipLen, ETH_HLEN + totalLength);
  return {
    src: formatAddress(ip, 12),
    dst: formatAddress(ip, 16),
    ethDst: formatMac(frame, 0),
    ethSrc: formatMac(frame, 6),
    type: icmp[0]!,
    code: icmp[1]!,
    ipChecksumValid: onesSum(ip) === 0xffff,
    icmpChecksumValid: onesSum(icmp) === 0xffff,
    quote: Buffer.from(icmp.subarray(8)),
    lengthConsistent: frame.length === ETH_HLEN + totalLength,
  };
}
