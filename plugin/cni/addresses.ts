// Syntax of the addresses that appear in configs and results: each check
// returns why the text is wrong, or undefined. Only the form is checked here;
// whether a gateway lies in its subnet is the IPAM's business.
import ipaddr from 'ipaddr.js';

/** 4 or 6 for an IP address in canonical text form; undefined otherwise. */
export function ipFamily(text: string): 4 | 6 | undefined {
  // ipaddr.js's IPv4 parser also takes "10.1", octal and hex parts; only dotted quads are IP text in CNI.
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return 4;
  if (ipaddr.IPv6.isValid(text) && !text.includes('%')) return 6;
  return undefined;
}

/**
 * The family an IP config reports in the 0.x `version` field: IPv4-mapped
 * IPv6 addresses count as 4, as Go's net.IP.To4 has it in libcni.
 */
export function resultFamily(address: string): '4' | '6' {
  const ip = address.split('/')[0]!;
  if (ipFamily(ip) === 4) return '4';
  try {
    return (ipaddr.parse(ip) as ipaddr.IPv6).isIPv4MappedAddress() ? '4' : '6';
  } catch {
    return '6';
  }
}

export function ipProblem(text: string): string | undefined {
  return ipFamily(text) ? undefined : 'expected an IPv4 or IPv6 address';
}

/** `10.1.0.5/16`, `fd00::/64`: an address, '/', and a prefix length the family allows. */
export function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return 'expected an address with a /prefix, e.g. 10.1.0.0/16';
  const family = ipFamily(text.slice(0, slash));
  if (!family) return 'expected an IPv4 or IPv6 address before the /prefix';
  const prefix = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^(0|[1-9]\d{0,2})$/.test(prefix) || Number(prefix) > max) return `prefix length must be 0-${max}`;
  return undefined;
}

/** An IP with or without a prefix (the `ips` capability and args convention). */
export function ipOrCidrProblem(text: string): string | undefined {
  return text.includes('/') ? cidrProblem(text) : ipProblem(text);
}

/**
 * `aa:bb:cc:dd:ee:ff`, and one the kernel will set on a link: not multicast
 * (low bit of the first octet) and not all zeros (is_valid_ether_addr).
 */
export function macProblem(text: string): string | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) return 'expected a MAC address like 0a:58:0a:f4:00:05';
  const octets = text.split(':').map((h) => parseInt(h, 16));
  if (octets[0]! & 1) return 'must be a unicast address (the first octet is odd)';
  if (octets.every((o) => o === 0)) return 'must not be all zeros';
  return undefined;
}
