// ICMP echo request/reply packets for IPv4 (RFC 792) and ICMPv6 (RFC 4443).
// The kernel fills in the ICMPv6 checksum on raw sockets; ICMPv4's is ours.

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP6_ECHO_REQUEST = 128;
export const ICMP6_ECHO_REPLY = 129;

/** RFC 1071 internet checksum. */
export function internetChecksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2 === 1) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function encodeEchoRequest(family: 4 | 6, id: number, seq: number, payload: Buffer): Buffer {
  const msg = Buffer.alloc(8 + payload.length);
  msg.writeUInt8(family === 4 ? ICMP_ECHO_REQUEST : ICMP6_ECHO_REQUEST, 0);
  msg.writeUInt16BE(id, 4);
  msg.writeUInt16BE(seq, 6);
  payload.copy(msg, 8);
  if (family === 4) msg.writeUInt16BE(internetChecksum(msg), 2);
  return msg;
}

export interface EchoReply {
  id: number;
  seq: number;
  ttl?: number;
}

/**
 * Parses what a raw ICMP socket received: IPv4 sockets see the IP header
 * first (its TTL is the hop limit the reply arrived with); IPv6 ones do not.
 */
export function parseEchoReply(family: 4 | 6, packet: Buffer): EchoReply | undefined {
  let icmp = packet;
  let ttl: number | undefined;
  if (family === 4) {
    if (packet.length < 20) return undefined;
    const ihl = (packet[0]! & 0x0f) * 4;
    ttl = packet[8];
    icmp = packet.subarray(ihl);
  }
  if (icmp.length < 8 || icmp[0] !== (family === 4 ? ICMP_ECHO_REPLY : ICMP6_ECHO_REPLY)) return undefined;
  const reply: EchoReply = { id: icmp.readUInt16BE(4), seq: icmp.readUInt16BE(6) };
  if (ttl !== undefined) reply.ttl = ttl;
  return reply;
}
