// Crafted ICMP frames for BPF_PROG_TEST_RUN: echo requests and replies, and
// errors quoting a packet (RFC 792), with correct IP and ICMP checksums, so
// that a translated frame can be compared byte for byte with the one its
// sender would have got without NAT. Builds on packets.ts.
import { ETH_HLEN, internetChecksum, IPPROTO, ipv4Other } from './packets.js';

export const ICMP = { ECHO_REPLY: 0, DEST_UNREACH: 3, ECHO: 8, TIME_EXCEEDED: 11 } as const;
/** Destination unreachable codes. */
export const UNREACH = { PORT: 3, FRAG_NEEDED: 4 } as const;

/** An ICMP message: type, code, checksum, the 4 bytes after it, and the body. */
export function icmpMessage(type: number, code: number, rest: Buffer, body: Buffer): Buffer {
  const message = Buffer.concat([Buffer.from([type, code, 0, 0]), rest, body]);
  message.writeUInt16BE(internetChecksum(message), 2);
  return message;
}

export interface EchoSpec {
  src: string;
  dst: string;
  type: 'request' | 'reply';
  id: number;
  seq?: number;
  payload?: Buffer;
}

/** An Ethernet + IPv4 + ICMP echo request or reply. */
export function echoPacket(spec: EchoSpec): Buffer {
  const rest = Buffer.alloc(4);
  rest.writeUInt16BE(spec.id, 0);
  rest.writeUInt16BE(spec.seq ?? 1, 2);
  const type = spec.type === 'request' ? ICMP.ECHO : ICMP.ECHO_REPLY;
  return ipv4Other(IPPROTO.icmp, spec.src, spec.dst, icmpMessage(type, 0, rest, spec.payload ?? Buffer.from('ferry ping')));
}

/** What an echo frame says, read back; the ICMP checksum verified. */
export function parseEcho(frame: Buffer): { src: string; dst: string; type: number; id: number; seq: number; icmpChecksumValid: boolean } {
  const ipLen = (frame[ETH_HLEN]! & 0x0f) * 4;
  const icmp = frame.subarray(ETH_HLEN + ipLen, ETH_HLEN + frame.readUInt16BE(ETH_HLEN + 2));
  const address = (offset: number) => [...frame.subarray(ETH_HLEN + offset, ETH_HLEN + offset + 4)].join('.');
  return {
    src: address(12),
    dst: address(16),
    type: icmp[0]!,
    id: icmp.readUInt16BE(4),
    seq: icmp.readUInt16BE(6),
    icmpChecksumValid: internetChecksum(icmp) === 0,
  };
}

export interface IcmpErrorSpec {
  type: number;
  code: number;
  src: string;
  dst: string;
  /** The frame the error is about (ipv4Packet(), echoPacket()): its IP packet is quoted. */
  about: Buffer;
  /** How many bytes of its IP packet to quote; default all of it (RFC 1812 routers quote as much as fits in 576). */
  quote?: number;
  /** Fragmentation needed: the next hop's MTU. */
  mtu?: number;
}

/** An Ethernet + IPv4 + ICMP error quoting `about`. */
export function icmpError(spec: IcmpErrorSpec): Buffer {
  const ip = spec.about.subarray(ETH_HLEN);
  const rest = Buffer.alloc(4);
  if (spec.mtu !== undefined) rest.writeUInt16BE(spec.mtu, 2);
  const quoted = ip.subarray(0, spec.quote ?? ip.length);
  return ipv4Other(IPPROTO.icmp, spec.src, spec.dst, icmpMessage(spec.type, spec.code, rest, quoted));
}

/** `frame` with its Ethernet addresses swapped: what a program that bounces it back sends. */
export function macsSwapped(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  frame.copy(out, 0, 6, 12);
  frame.copy(out, 6, 0, 6);
  return out;
}
