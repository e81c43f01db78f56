// This node's pods as host routing knows them (MAPS.localPods, lib/route4.h):
// by IPv4 address, the host veth to bpf_redirect_peer() through and the two
// MACs of the frame the node writes into the pod. CNI ADD registers a pod
// when it hooks from_pod onto its host veth; once the veth is gone (DEL, GC)
// its entries are stale and go.
import { isIPv4 } from 'node:net';
import { localPod4, localPod4Key, type LocalPod4 } from './layout.js';

/** What this needs of the map: BpfMap has it, and so does MemoryMap. */
export interface LocalPodsMap {
  update(key: Buffer, value: Buffer): void;
  delete(key: Buffer): boolean;
  entries(): Iterable<[Buffer, Buffer]>;
}

export interface LocalPod extends LocalPod4 {
  address: string;
}

/**
 * Equivalent to: `bpftool map update pinned PINROOT/ferry_pod4 key ADDRESS
 * value IFINDEX PODMAC HOSTMAC`. An entry left for the address (a pod gone
 * without DEL) is replaced.
 */
export function registerLocalPod(map: LocalPodsMap, pod: LocalPod): void {
  if (!isIPv4(pod.address)) throw new TypeError(`local pod: ${pod.address} is not an IPv4 address`);
  map.update(localPod4Key.encode({ address: pod.address }), localPod4.encode(pod));
}

/** Every registered pod. */
export function listLocalPods(map: LocalPodsMap): LocalPod[] {
  return [...map.entries()].map(([k, v]) => ({ ...localPod4Key.decode(k), ...localPod4.decode(v) }));
}

/**
 * Removes the entries whose host veth is gone: no link has their ifindex
 * among `links` (ifindex → MAC, the node's links now), or the one that has
 * it is another link (its MAC differs). Returns the addresses removed.
 */
export function forgetGonePods(map: LocalPodsMap, links: ReadonlyMap<number, string | undefined>): string[] {
  const gone = listLocalPods(map).filter((p) => links.get(p.ifindex) !== p.hostMac);
  return gone.filter((p) => map.delete(localPod4Key.encode({ address: p.address }))).map((p) => p.address);
}
