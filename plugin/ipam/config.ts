// The ipam section of a network config, in host-local's shape, and its
// resolution into ranges the allocator can count on. The JSON shape is
// checked elsewhere (zod); here the addresses are checked and defaults filled.
import { type Family, familyBits, formatAddress, hostMask, parseAddress, parsePrefix } from './address.js';
import { IpamConfigError } from './errors.js';

export interface RangeConfig {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface IpamConfig {
  type: string;
  /** Range sets; a container gets one IP from each set (dual stack = a v4 set and a v6 set). */
  ranges: RangeConfig[][];
  routes?: Array<{ dst: string; gw?: string }>;
  /** Default /var/lib/cni/networks, as host-local's. */
  dataDir?: string;
}

/** One range with its defaults filled in; addresses as numbers for arithmetic. */
export interface ResolvedRange {
  /** Where it came from, for messages: `ipam.ranges[0][1]`. */
  field: string;
  family: Family;
  /** Canonical `network/prefix`. */
  subnet: string;
  network: bigint;
  prefix: number;
  /** rangeStart, inclusive. */
  first: bigint;
  /** rangeEnd, inclusive. */
  last: bigint;
  /** Never allocated, even when inside [first, last]. */
  gateway: bigint;
}

export interface ResolvedRangeSet {
  index: number;
  family: Family;
  ranges: ResolvedRange[];
}

/**
 * Fills host-local's defaults and rejects what host-local rejects, and a
 * little more: rangeStart = network+1, rangeEnd = broadcast-1 (IPv4) or the
 * last address (IPv6), gateway = network+1. The network address, and the
 * IPv4 broadcast, are never handed out. Ranges may not overlap, within a set
 * or across sets, and a set is all IPv4 or all IPv6.
 */
export function resolveRanges(cfg: IpamConfig): ResolvedRangeSet[] {
  if (cfg.ranges.length === 0) throw new IpamConfigError('ipam.ranges', 'no range sets');
  const sets = cfg.ranges.map((set, i) => {
    if (set.length === 0) throw new IpamConfigError(`ipam.ranges[${i}]`, 'empty range set');
    const ranges = set.map((r, j) => resolveRange(`ipam.ranges[${i}][${j}]`, r));
    const family = ranges[0]!.family;
    const other = ranges.find((r) => r.family !== family);
    if (other) {
      throw new IpamConfigError(`${other.field}.subnet`, `IPv${other.family} in IPv${family} range set ${i}; a range set may not mix families`, other.subnet);
    }
    return { index: i, family, ranges };
  });
  checkOverlaps(sets.flatMap((s) => s.ranges));
  return sets;
}

/** `10.1.0.0/24 10.1.0.1-10.1.0.254, …` for messages. */
export function describeRangeSet(set: ResolvedRangeSet): string {
  return set.ranges.map(describeRange).join(', ');
}

export function describeRange(r: ResolvedRange): string {
  return `${r.subnet} ${fmt(r, r.first)}-${fmt(r, r.last)}`;
}

function resolveRange(field: string, r: RangeConfig): ResolvedRange {
  const parsed = parsePrefix(r.subnet);
  if (typeof parsed === 'string') throw new IpamConfigError(`${field}.subnet`, parsed, r.subnet);
  const { address, prefix } = parsed;
  const { family } = address;
  const mask = hostMask(family, prefix);
  const network = address.value & ~mask;
  const top = network | mask;
  const subnet = `${formatAddress({ family, value: network })}/${prefix}`;
  if (address.value !== network) {
    throw new IpamConfigError(`${field}.subnet`, `host bits set; the network is ${subnet}`, r.subnet);
  }
  // Network address, one usable address, (broadcast): nothing left to hand out.
  if (prefix > familyBits(family) - 2) {
    throw new IpamConfigError(`${field}.subnet`, 'too small to allocate from', r.subnet);
  }
  const usableLast = family === 4 ? top - 1n : top;

  const inSubnet = (name: 'rangeStart' | 'rangeEnd', text: string): bigint => {
    const value = addressOf(`${field}.${name}`, text, family);
    if (value < network || value > top) throw new IpamConfigError(`${field}.${name}`, `outside subnet ${subnet}`, text);
    if (value === network) throw new IpamConfigError(`${field}.${name}`, `the network address of ${subnet}`, text);
    if (value > usableLast) throw new IpamConfigError(`${field}.${name}`, `the broadcast address of ${subnet}`, text);
    return value;
  };
  const first = r.rangeStart !== undefined ? inSubnet('rangeStart', r.rangeStart) : network + 1n;
  const last = r.rangeEnd !== undefined ? inSubnet('rangeEnd', r.rangeEnd) : usableLast;
  if (first > last) {
    throw new IpamConfigError(`${field}.rangeStart`, `after rangeEnd "${fmtv(family, last)}"`, fmtv(family, first));
  }
  // A gateway outside the subnet is allowed (on-link routes); only the family must match.
  const gateway = r.gateway !== undefined ? addressOf(`${field}.gateway`, r.gateway, family) : network + 1n;
  return { field, family, subnet, network, prefix, first, last, gateway };
}

function addressOf(field: string, text: string, family: Family): bigint {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new IpamConfigError(field, a, text);
  if (a.family !== family) throw new IpamConfigError(field, `not an IPv${family} address`, text);
  return a.value;
}

// Pairwise: a config holds a handful of ranges.
function checkOverlaps(all: ResolvedRange[]): void {
  for (let i = 0; i < all.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = all[i]!;
      const b = all[j]!;
      if (a.family === b.family && a.first <= b.last && b.first <= a.last) {
        throw new IpamConfigError(a.field, `${describeRange(a)} overlaps ${b.field} (${describeRange(b)})`);
      }
    }
  }
}

function fmt(r: ResolvedRange, value: bigint): string {
  return fmtv(r.family, value);
}

function fmtv(family: Family, value: bigint): string {
  return formatAddress({ family, value });
}
