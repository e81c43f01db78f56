// Checks done in TypeScript before anything reaches the kernel, so bad input
// fails with a message that names the field and nothing is half-created.
import ipaddr from 'ipaddr.js';
import { InvalidArgumentError } from './netlink/errors.js';

/** IFNAMSIZ is 16 including the NUL. */
export const IFNAMSIZ = 16;

/**
 * Rejects names the kernel would refuse (dev_valid_name): empty, >15 bytes,
 * '/', ':', whitespace, '.', '..'; and '%', which the kernel takes as a
 * template (`eth%d` becomes eth0), so the link would not have the name asked for.
 */
export function checkLinkName(op: string, name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes >= IFNAMSIZ) {
    throw new InvalidArgumentError(op, `link "${name}"`, `interface name must be 1-${IFNAMSIZ - 1} bytes, got ${bytes}`);
  }
  if (name === '.' || name === '..' || /[/:%\s]/.test(name)) {
    throw new InvalidArgumentError(op, `link "${name}"`, `interface name may not be "." or ".." or contain '/', ':', '%' or whitespace`);
  }
}

export interface Cidr {
  family: 4 | 6;
  address: string;
  prefixLen: number;
  bytes: Buffer;
}

/** Parses `10.0.0.1/24` or `fd00::1/64` (prefix required unless `defaultPrefix` is given). */
export function parseCidr(op: string, object: string, text: string, defaultPrefix?: 'host'): Cidr {
  try {
    let addr: ipaddr.IPv4 | ipaddr.IPv6;
    let prefixLen: number;
    if (text.includes('/')) {
      [addr, prefixLen] = ipaddr.parseCIDR(text);
    } else if (defaultPrefix === 'host') {
      addr = ipaddr.parse(text);
      prefixLen = addr.kind() === 'ipv4' ? 32 : 128;
    } else {
      throw new Error('missing /prefix');
    }
    // ipaddr.js accepts forms like "10.1" and octal/hex parts; insist on canonical dotted quads.
    if (addr.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(text.split('/')[0]!)) {
      throw new Error('not a dotted-quad IPv4 address');
    }
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && !text.includes(':')) {
      throw new Error('unexpected form');
    }
    return {
      family: addr.kind() === 'ipv4' ? 4 : 6,
      address: addr.toString(),
      prefixLen,
      bytes: Buffer.from(addr.toByteArray()),
    };
  } catch (e) {
    throw new InvalidArgumentError(op, object, `invalid CIDR "${text}": ${(e as Error).message}`);
  }
}

/** Parses a single IP address (no prefix). */
export function parseIp(op: string, object: string, text: string): Cidr {
  if (text.includes('/')) throw new InvalidArgumentError(op, object, `expected an IP address without prefix, got "${text}"`);
  return parseCidr(op, object, text, 'host');
}

/** `aa:bb:cc:dd:ee:ff` → 6 bytes. */
export function parseMac(op: string, object: string, text: string): Buffer {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(text)) {
    throw new InvalidArgumentError(op, object, `invalid MAC address "${text}"`);
  }
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

export function formatMac(bytes: Buffer | undefined): string | undefined {
  if (bytes === undefined || bytes.length === 0) return undefined;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Raw address bytes (4 or 16) → text, as `ip` prints it. */
export function formatIp(bytes: Buffer | undefined): string | undefined {
  if (bytes === undefined || (bytes.length !== 4 && bytes.length !== 16)) return undefined;
  return ipaddr.fromByteArray([...bytes]).toString();
}

export function checkRange(op: string, object: string, field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(op, object, `${field} must be an integer in ${min}..${max}, got ${value}`);
  }
}

// The same parsers for one field of a larger object (a route's gateway, an
// FDB entry's remote): the failure says which field was wrong.

/** parseCidr for field `field`: `dst: invalid CIDR "10.0.0.0/33": …`. */
export function parseCidrField(op: string, object: string, field: string, text: string): Cidr {
  return named(op, object, field, () => parseCidr(op, object, text));
}

/** parseIp for field `field`: `gw: invalid IP address "10.0.0.300"`. */
export function parseIpField(op: string, object: string, field: string, text: string): Cidr {
  if (typeof text !== 'string' || text.includes('/')) {
    throw new InvalidArgumentError(op, object, `${field}: expected an IP address without prefix, got "${text}"`);
  }
  try {
    return parseCidr(op, object, text, 'host');
  } catch {
    throw new InvalidArgumentError(op, object, `${field}: invalid IP address "${text}"`);
  }
}

/** parseMac for field `field`: `mac: invalid MAC address "zz:…"`. */
export function parseMacField(op: string, object: string, field: string, text: string): Buffer {
  return named(op, object, field, () => parseMac(op, object, text));
}

function named<T>(op: string, object: string, field: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    throw new InvalidArgumentError(op, object, `${field}: ${e.extack ?? e.message}`);
  }
}
