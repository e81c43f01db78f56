// IP allocation with host-local's semantics over an IpamStore: one IP per
// range set, round robin within a set, idempotent for the same container and
// interface, and nothing leaked when an ADD fails half-way.
import { type Family, formatAddress, parseAddress, parsePrefix } from './address.js';
import { type IpamConfig, type ResolvedRangeSet, describeRangeSet, resolveRanges } from './config.js';
import { IpamConflictError, IpamExhaustedError, IpamRequestError } from './errors.js';
import { roundRobin } from './range-iter.js';
import { checkOwner, ownedBy } from './record.js';
import type { IpamRecord, IpamStore } from './store.js';

export interface AllocateRequest {
  containerId: string;
  ifname: string;
  /** runtimeConfig `ips` (CNI capability): `10.1.0.5/24` or `10.1.0.5`, at most one per range set. */
  requested?: string[];
}

export interface Allocation {
  rangeSetIndex: number;
  family: Family;
  /** `IP/prefix` of the range's subnet, as a CNI result's ips[].address. */
  address: string;
  ip: string;
  gateway?: string;
  /** Held before this call (a repeated ADD): a failed ADD must not release it. */
  reused: boolean;
}

export interface RangeSetAvailability {
  rangeSetIndex: number;
  family: Family;
  /** Allocatable addresses (gateways excluded), at most Number.MAX_SAFE_INTEGER. */
  total: number;
  used: number;
  free: number;
  /** True when the real total is larger than `total` (a big IPv6 range). */
  capped: boolean;
}

/**
 * One IP from each range set for (containerId, ifname), under the store's
 * lock. An owner that already holds an IP in a set gets it again (a repeated
 * ADD); a requested IP must lie in a set's ranges and be free; otherwise the
 * set's next free address in round-robin order. When any set fails, the IPs
 * this call reserved are released before the error is thrown.
 */
export async function allocate(store: IpamStore, cfg: IpamConfig, req: AllocateRequest): Promise<Allocation[]> {
  const sets = resolveRanges(cfg);
  const why = checkOwner(req);
  if (why) throw new IpamRequestError(`allocate: ${why}`);
  const requested = placeRequested(sets, req.requested ?? []);

  return store.withLock(async () => {
    const { records, invalid } = await store.scan();
    const taken = new Map<string, IpamRecord | undefined>(records.map((r) => [r.ip, r]));
    for (const bad of invalid) taken.set(bad.ip, undefined); // held, by no one we can name
    const mine = records.filter((r) => ownedBy(r, req.containerId, req.ifname));

    const reserved: string[] = [];
    try {
      const result: Allocation[] = [];
      for (const set of sets) {
        const held = mine.find((r) => setHolds(set, r.ip));
        const wanted = requested.get(set.index);
        if (held) {
          if (wanted !== undefined && wanted !== held.ip) {
            throw new IpamConflictError(wanted, `${req.containerId}/${req.ifname} already holds ${held.ip} in range set ${set.index}`, held);
          }
          result.push(allocation(set, held.ip, true));
          continue;
        }
        const ip = wanted !== undefined
          ? await reserveRequested(store, set, wanted, taken, req)
          : await reserveNext(store, set, taken, req);
        reserved.push(ip);
        result.push(allocation(set, ip, false));
      }
      return result;
    } catch (e) {
      for (const ip of reserved) await store.release(ip).catch(() => undefined);
      throw e;
    }
  });
}

/** Releases every IP of (containerId, ifname) and returns them; none is not an error. */
export async function release(store: IpamStore, containerId: string, ifname: string): Promise<string[]> {
  return store.withLock(() => store.releaseByOwner(containerId, ifname));
}

/**
 * CNI GC: releases every record whose owner is not among `valid` and returns
 * them. Files that are not records are left alone (store.scan() lists them).
 */
export async function gc(store: IpamStore, valid: Array<{ containerId: string; ifname: string }>): Promise<IpamRecord[]> {
  return store.withLock(async () => {
    await store.removeStaleTemps();
    const released: IpamRecord[] = [];
    for (const r of await store.list()) {
      if (valid.some((v) => ownedBy(r, v.containerId, v.ifname))) continue;
      if (await store.release(r.ip)) released.push(r);
    }
    return released;
  });
}

/**
 * Free addresses per range set, for STATUS. Counted from range bounds and the
 * records, never by walking addresses. No lock: records appear whole, and a
 * count that is one allocation old is as good as any.
 */
export async function availability(store: IpamStore, cfg: IpamConfig): Promise<RangeSetAvailability[]> {
  const sets = resolveRanges(cfg);
  const { records, invalid } = await store.scan();
  const held = [...records.map((r) => r.ip), ...invalid.map((r) => r.ip)];
  return sets.map((set) => {
    const gateways = new Set(set.ranges.map((r) => r.gateway));
    let total = 0n;
    for (const r of set.ranges) total += r.last - r.first + 1n;
    for (const g of gateways) if (set.ranges.some((r) => g >= r.first && g <= r.last)) total -= 1n;
    const used = held.filter((ip) => {
      const a = parseAddress(ip);
      return typeof a !== 'string' && !gateways.has(a.value) && setHolds(set, ip);
    }).length;
    const capped = total > BigInt(Number.MAX_SAFE_INTEGER);
    const shown = capped ? Number.MAX_SAFE_INTEGER : Number(total);
    return { rangeSetIndex: set.index, family: set.family, total: shown, used, free: Math.max(0, shown - used), capped };
  });
}

// Which range set each requested IP belongs to; every one must fit one set,
// not a gateway, and no set may be asked for twice.
function placeRequested(sets: ResolvedRangeSet[], requested: string[]): Map<number, string> {
  const placed = new Map<number, string>();
  for (const text of requested) {
    const parsed = text.includes('/') ? parsePrefix(text) : parseAddress(text);
    if (typeof parsed === 'string') throw new IpamRequestError(`requested IP "${text}": ${parsed}`);
    const address = 'prefix' in parsed ? parsed.address : parsed;
    const ip = formatAddress(address);
    const set = sets.find((s) => setHolds(s, ip));
    if (!set) {
      const all = sets.map((s) => `range set ${s.index} (${describeRangeSet(s)})`).join('; ');
      throw new IpamRequestError(`requested IP ${ip}: not in any range set: ${all}`);
    }
    if (set.ranges.some((r) => r.gateway === address.value)) {
      throw new IpamRequestError(`requested IP ${ip}: the gateway of range set ${set.index}`);
    }
    const other = placed.get(set.index);
    if (other !== undefined) throw new IpamRequestError(`requested IPs ${other} and ${ip}: both in range set ${set.index}; one IP per range set`);
    placed.set(set.index, ip);
  }
  return placed;
}

async function reserveRequested(
  store: IpamStore,
  set: ResolvedRangeSet,
  ip: string,
  taken: Map<string, IpamRecord | undefined>,
  req: AllocateRequest,
): Promise<string> {
  if (taken.has(ip)) {
    const owner = taken.get(ip);
    throw new IpamConflictError(ip, owner ? `in use by ${owner.containerId}/${owner.ifname || '*'}` : 'in use (unreadable record)', owner);
  }
  if (!(await store.reserve(ip, req.containerId, req.ifname, set.index))) {
    throw new IpamConflictError(ip, 'in use');
  }
  return ip;
}

async function reserveNext(
  store: IpamStore,
  set: ResolvedRangeSet,
  taken: Map<string, IpamRecord | undefined>,
  req: AllocateRequest,
): Promise<string> {
  const last = await store.lastReserved(set.index);
  const lastValue = last === undefined ? undefined : parseAddress(last);
  const start = lastValue !== undefined && typeof lastValue !== 'string' && lastValue.family === set.family ? lastValue.value : undefined;
  for (const { value } of roundRobin(set, start)) {
    const ip = formatAddress({ family: set.family, value });
    if (taken.has(ip)) continue;
    // false: a writer that ignores the lock took it since the scan; go on.
    if (await store.reserve(ip, req.containerId, req.ifname, set.index)) return ip;
  }
  throw new IpamExhaustedError(set.index, describeRangeSet(set));
}

function setHolds(set: ResolvedRangeSet, ip: string): boolean {
  const a = parseAddress(ip);
  if (typeof a === 'string' || a.family !== set.family) return false;
  return set.ranges.some((r) => a.value >= r.first && a.value <= r.last);
}

function allocation(set: ResolvedRangeSet, ip: string, reused: boolean): Allocation {
  const a = parseAddress(ip);
  const value = typeof a === 'string' ? 0n : a.value;
  const range = set.ranges.find((r) => value >= r.first && value <= r.last)!;
  return {
    rangeSetIndex: set.index,
    family: set.family,
    address: `${ip}/${range.prefix}`,
    ip,
    reused,
    gateway: formatAddress({ family: set.family, value: range.gateway }),
  };
}
