// This node's pods as host routing knows them (MAPS.localPods by IPv4
// address, lib/route4.h; MAPS.localPods6 by IPv6 address, lib/route6.h):
// the host veth to bpf_redirect_peer() through and the two MACs of the frame
// the node writes into the pod. CNI ADD registers a pod when it hooks
// from_pod onto its host veth; once the veth is gone (DEL, GC) its entries
// are stale and go.
import { isIPv4, isIPv6 } from 'node:net';
import { type Family, localPod4, localPod4Key, localPod6Key, type LocalPod4 } from './layout.js';

/** What this needs of the map: BpfMap has it, and so does MemoryMap. */
export interface LocalPodsMap {
  update(key: Buffer, value: Buffer): void;
  delete(key: Buffer): boolean;
  entries(): Iterable<[Buffer, Buffer]>;
}

export interface LocalPod extends LocalPod4 {
  address: string;
}

/** The key codec of the family's map: localPods (4) or localPods6 (6). */
function keyOf(family: Family) {
  return family === 4 ? localPod4Key : localPod6Key;
}

/**
 * Equivalent to: `bpftool map update pinned PINROOT/ferry_pod4 key ADDRESS
 * value IFINDEX PODMAC HOSTMAC` (ferry_pod6 for `family` 6, whose map `map`
 * must be). An entry left for the address (a pod gone without DEL) is
 * replaced.
 */
export function registerLocalPod(map: LocalPodsMap, pod: LocalPod, family: Family = 4): void {
  if (!(family === 4 ? isIPv4 : isIPv6)(pod.address)) throw new TypeError(`local pod: ${pod.address} is not an IPv${family} address`);
  map.update(keyOf(family).encode({ address: pod.address }), localPod4.encode(pod));
}

/** Every registered pod of the family's map. */
export function listLocalPods(map: LocalPodsMap, family: Family = 4): LocalPod[] {
  const key = keyOf(family);
  return [...map.entries()].map(([k, v]) => ({ ...key.decode(k), ...localPod4.decode(v) }));
}

/**
 * Removes the entries whose host veth is gone: no link has their ifindex
 * among `links` (ifindex → MAC, the node's links now), or the one that has
 * it is another link (its MAC differs). Returns the addresses removed.
 */
export function forgetGonePods(map: LocalPodsMap, links: ReadonlyMap<number, string | undefined>, family: Family = 4): string[] {
  const gone = listLocalPods(map, family).filter((p) => links.get(p.ifindex) !== p.hostMac);
  return gone.filter((p) => map.delete(keyOf(family).encode({ address: p.address }))).map((p) => p.address);
}
