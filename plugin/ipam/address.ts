// IP addresses as (family, bigint) pairs: range arithmetic without 2^128
// loops, and one canonical text form (dotted quad; RFC 5952 for IPv6, as Go's
// net.IP.String writes it) so the store's file names match host-local's.
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface Address {
  family: Family;
  value: bigint;
}

export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/**
 * Parses one address strictly: dotted-quad IPv4 (ipaddr.js alone would accept
 * "10.1" or hex parts) or IPv6 without a zone. IPv4-mapped IPv6 is refused:
 * Go reads it as IPv4, ipaddr.js as IPv6, and the two would name the store's
 * file differently. Returns the reason on failure.
 */
export function parseAddress(text: string): Address | string {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { family: 4, value: fromBytes(ipaddr.IPv4.parse(text).toByteArray()) };
  }
  if (text.includes('%') || !ipaddr.IPv6.isValid(text)) return 'not an IP address';
  const v6 = ipaddr.IPv6.parse(text);
  if (v6.isIPv4MappedAddress()) return 'IPv4-mapped IPv6 address; write the IPv4 form';
  return { family: 6, value: fromBytes(v6.toByteArray()) };
}

/** `10.1.0.0/24` → network address and prefix; the reason on failure. */
export function parsePrefix(text: string): { address: Address; prefix: number } | string {
  const slash = text.indexOf('/');
  if (slash < 0) return 'missing /prefix';
  const address = parseAddress(text.slice(0, slash));
  if (typeof address === 'string') return address;
  const bits = text.slice(slash + 1);
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > familyBits(address.family)) return `bad prefix length "/${bits}"`;
  return { address, prefix };
}

export function formatAddress(a: Address): string {
  const bytes: number[] = [];
  let v = a.value;
  for (let i = 0; i < familyBits(a.family) / 8; i++) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** The canonical text of an address given as text, or undefined when it is not one. */
export function canonicalAddress(text: string): string | undefined {
  const a = parseAddress(text);
  return typeof a === 'string' ? undefined : formatAddress(a);
}

/** Mask of the host part of a prefix. */
export function hostMask(family: Family, prefix: number): bigint {
  return (1n << BigInt(familyBits(family) - prefix)) - 1n;
}

function fromBytes(bytes: number[]): bigint {
  return bytes.reduce((v, b) => (v << 8n) | BigInt(b), 0n);
}
