// hostPorts (the CNI portMappings capability) in the load balancer's own
// maps: each is a frontend (a node address or hostIP, hostPort, protocol)
// with one backend (the pod's address and containerPort), written as the
// Reconciler writes a Service's: slot 0 and slot 1 in MAPS.services, the
// backend and the reverse NAT. The programs then DNAT them like any external
// frontend with externalTrafficPolicy Local (SVC_FLAGS.local: the client's
// address kept, as the portmap plugin keeps it), track and reverse them,
// translate their ICMP errors, and the conntrack GC collects their flows.
//
// Whose entries are whose: a hostPort frontend's rev-NAT index r is in
// HOSTPORT_REV_NAT and its backend id is hostPortBackendId(r), ranges the
// daemon's Reconciler neither hands out nor reads (so never removes). The
// backends map is an array (backend-slots.ts): a hostPort's backend is
// removed by writing its slot all zero, and an empty slot is none. CNI
// calls run in many processes at once and share no memory, so the maps
// themselves arbitrate, with BPF_NOEXIST: an index is claimed by creating
// its reverse-NAT entry, a frontend by creating its slot 0. Two pods asking
// for one frontend: the second finds slot 0 there and learns who holds it.
//
// IPv4 only: hostPorts live in the IPv4 maps (the IPv6 ones are the
// daemon's Services'), and an IPv6 address is refused before anything is
// written (the CNI plugin refuses IPv6 hostIPs first, naming the pod).
import { isIPv4 } from 'node:net';
import { KeyExistsError } from '../bpf/index.js';
import { clearBackend, isEmptyBackend } from './backend-slots.js';
import {
  backendId as backendIdCodec,
  HOSTPORT_REV_NAT,
  hostPortBackendId,
  isHostPortRevNat,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  revNatIndex as revNatIndexCodec,
  SVC_FLAGS,
  type Proto,
} from './layout.js';
import type { MapLike } from './reconcile.js';

/** A hostPort frontend and the pod behind it. */
export interface HostPort {
  /** The node address (or hostIP) clients reach. */
  address: string;
  port: number;
  proto: Proto;
  podAddress: string;
  podPort: number;
}

/** A hostPort as written: with the rev-NAT index it claimed (DEL and CHECK need it). */
export interface HostPortEntry extends HostPort {
  revNatIndex: number;
}

/** The IPv4 maps hostPorts are written to; the backends map, an array, is never deleted from. */
export type HostPortMaps = Record<'services' | 'revNat', Pick<MapLike, 'lookup' | 'update' | 'delete'>> & { backends: Pick<MapLike, 'lookup' | 'update'> };

/** Who holds a frontend already: another hostPort (its pod) or a Service. */
export type FrontendHolder = { kind: 'hostPort'; podAddress: string; podPort: number } | { kind: 'service'; revNatIndex: number };

/** The frontend is taken. */
export class HostPortConflictError extends Error {
  constructor(
    readonly hostPort: HostPort,
    readonly holder: FrontendHolder,
  ) {
    super(`hostPort ${frontendName(hostPort)}: already ${describeHolder(holder)}`);
    this.name = 'HostPortConflictError';
  }
}

/** `192.0.2.1:8080/tcp` */
export function frontendName(hp: Pick<HostPort, 'address' | 'port' | 'proto'>): string {
  return `${hp.address}:${hp.port}/${hp.proto}`;
}

function describeHolder(holder: FrontendHolder): string {
  return holder.kind === 'hostPort' ? `the hostPort of ${holder.podAddress}:${holder.podPort}` : `a Service frontend (rev-NAT index ${holder.revNatIndex})`;
}

/** Slots 0 and 1 serve; more would be a Service's. */
const slotKey = (hp: Pick<HostPort, 'address' | 'port' | 'proto'>, slot: 0 | 1) =>
  lb4Key.encode({ address: hp.address, port: hp.port, proto: hp.proto, slot, scope: 'external' });

const HEAD_FLAGS = SVC_FLAGS.external | SVC_FLAGS.local;

/**
 * Writes one hostPort, claiming a rev-NAT index and its frontend; returns
 * the entry. Throws HostPortConflictError, having taken nothing, when the
 * frontend is another's. Order: the index, the backend, slot 0 without
 * backends (the claim), slot 1, then slot 0 counting it: the datapath never
 * sees a slot 0 whose slot is missing.
 */
export function addHostPort(maps: HostPortMaps, hp: HostPort): HostPortEntry {
  for (const address of [hp.address, hp.podAddress]) {
    if (!isIPv4(address)) throw new TypeError(`hostPort ${frontendName(hp)} → ${hp.podAddress}:${hp.podPort}: ${address} is not IPv4; ferry's dataplane serves IPv4 hostPorts only`);
  }
  const revNatIndex = claimRevNat(maps, hp);
  const backend = backendIdCodec.encode(hostPortBackendId(revNatIndex));
  maps.backends.update(backend, lb4Backend.encode({ address: hp.podAddress, port: hp.podPort, proto: hp.proto, flags: 0 }), 'any');
  const head = (count: number) => lb4Service.encode({ backendId: 0, count, revNatIndex, flags: HEAD_FLAGS, affinityTimeout: 0 });
  try {
    maps.services.update(slotKey(hp, 0), head(0), 'noexist');
  } catch (e) {
    clearBackend(maps.backends, 4, hostPortBackendId(revNatIndex));
    maps.revNat.delete(revNatIndexCodec.encode(revNatIndex));
    if (e instanceof KeyExistsError) throw new HostPortConflictError(hp, holderOf(maps, hp));
    throw e;
  }
  const entry = { ...hp, revNatIndex };
  try {
    const slot = lb4Service.encode({ backendId: hostPortBackendId(revNatIndex), count: 0, revNatIndex, flags: 0, affinityTimeout: 0 });
    maps.services.update(slotKey(hp, 1), slot, 'any');
    maps.services.update(slotKey(hp, 0), head(1), 'exist');
  } catch (e) {
    removeHostPort(maps, entry);
    throw e;
  }
  return entry;
}

/**
 * Removes what addHostPort() wrote for `hp`: its slots while slot 0 is still
 * its own (a Service frontend written over it stays), then its backend and
 * rev-NAT index while they still name hp (a repeated DEL must not take
 * what another ADD has claimed since). Without its revNatIndex (recorded
 * before the maps were written, and cut short), slot 0's is taken when its
 * backend is hp's pod. Whatever is already gone is fine.
 */
export function removeHostPort(maps: HostPortMaps, hp: HostPort | HostPortEntry): void {
  const head = maps.services.lookup(slotKey(hp, 0));
  const headIndex = head === undefined ? undefined : lb4Service.decode(head).revNatIndex;
  const revNatIndex = 'revNatIndex' in hp ? hp.revNatIndex : headIndex;
  if (revNatIndex === undefined || !servesPod(maps, revNatIndex, hp)) return;
  if (headIndex === revNatIndex) {
    maps.services.delete(slotKey(hp, 0));
    maps.services.delete(slotKey(hp, 1));
  }
  clearBackend(maps.backends, 4, hostPortBackendId(revNatIndex));
  const rev = maps.revNat.lookup(revNatIndexCodec.encode(revNatIndex));
  if (rev !== undefined && namesFrontend(rev, hp)) maps.revNat.delete(revNatIndexCodec.encode(revNatIndex));
}

/** What differs between the maps and `entry` (CHECK), each named; [] when it is served as written. */
export function checkHostPort(maps: HostPortMaps, entry: HostPortEntry): string[] {
  const name = `hostPort ${frontendName(entry)} → ${entry.podAddress}:${entry.podPort}`;
  const head = maps.services.lookup(slotKey(entry, 0));
  if (head === undefined) return [`${name} is not in the services map`];
  const { revNatIndex, count } = lb4Service.decode(head);
  if (revNatIndex !== entry.revNatIndex) return [`${name} was taken over by ${describeHolder(holderFrom(maps, revNatIndex))}`];
  const problems: string[] = [];
  const slot = maps.services.lookup(slotKey(entry, 1));
  if (count !== 1 || slot === undefined || lb4Service.decode(slot).backendId !== hostPortBackendId(revNatIndex)) {
    problems.push(`${name}: its backend slot is missing or not its own`);
  }
  if (!servesPod(maps, revNatIndex, entry)) problems.push(`${name}: backend ${hostPortBackendId(revNatIndex)} is missing or names another pod`);
  const rev = maps.revNat.lookup(revNatIndexCodec.encode(revNatIndex));
  if (rev === undefined || !namesFrontend(rev, entry)) problems.push(`${name}: reverse NAT ${revNatIndex} is missing or names another frontend`);
  return problems;
}

/**
 * Claims a free rev-NAT index of HOSTPORT_REV_NAT by creating its entry,
 * starting at a random one: an index just given back is reused late, when
 * the conntrack entries that name it have likely gone.
 */
function claimRevNat(maps: HostPortMaps, hp: HostPort): number {
  const span = HOSTPORT_REV_NAT.max - HOSTPORT_REV_NAT.min + 1;
  const start = Math.floor(Math.random() * span);
  const value = lb4ReverseNat.encode({ address: hp.address, port: hp.port });
  for (let i = 0; i < span; i++) {
    const index = HOSTPORT_REV_NAT.min + ((start + i) % span);
    try {
      maps.revNat.update(revNatIndexCodec.encode(index), value, 'noexist');
      return index;
    } catch (e) {
      if (!(e instanceof KeyExistsError)) throw e;
    }
  }
  throw new Error(`hostPort ${frontendName(hp)}: all ${span} hostPort rev-NAT indices (${HOSTPORT_REV_NAT.min}–${HOSTPORT_REV_NAT.max}) are in use`);
}

function holderOf(maps: HostPortMaps, hp: HostPort): FrontendHolder {
  const head = maps.services.lookup(slotKey(hp, 0));
  return holderFrom(maps, head === undefined ? 0 : lb4Service.decode(head).revNatIndex);
}

function holderFrom(maps: HostPortMaps, revNatIndex: number): FrontendHolder {
  if (!isHostPortRevNat(revNatIndex)) return { kind: 'service', revNatIndex };
  const value = maps.backends.lookup(backendIdCodec.encode(hostPortBackendId(revNatIndex)));
  const backend = value === undefined || isEmptyBackend(value) ? { address: '?', port: 0 } : lb4Backend.decode(value);
  return { kind: 'hostPort', podAddress: backend.address, podPort: backend.port };
}

/** Whether the hostPort backend of rev-NAT index `revNatIndex` is hp's pod. */
function servesPod(maps: HostPortMaps, revNatIndex: number, hp: HostPort): boolean {
  if (!isHostPortRevNat(revNatIndex)) return false;
  const value = maps.backends.lookup(backendIdCodec.encode(hostPortBackendId(revNatIndex)));
  const b = value === undefined || isEmptyBackend(value) ? undefined : lb4Backend.decode(value);
  return b?.address === hp.podAddress && b.port === hp.podPort && b.proto === hp.proto;
}

/** Whether a reverse-NAT value is hp's frontend. */
function namesFrontend(value: Buffer, hp: HostPort): boolean {
  const r = lb4ReverseNat.decode(value);
  return r.address === hp.address && r.port === hp.port;
}
