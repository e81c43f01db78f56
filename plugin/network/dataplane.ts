// Hooking a pod into ferry's eBPF dataplane: the program the daemon pinned
// (from_pod) is attached at tcx ingress of the pod's host veth — traffic
// leaving the pod — and the link is pinned so it outlives this CNI call; the
// pod's IPv4 addresses are registered for host routing (MAPS.localPods), so
// that packets to it are delivered with bpf_redirect_peer(). Without a
// loaded dataplane (no pin), pods are plain routed pods until the daemon
// loads one and hooks them (plugin/daemon/pod-hooks.ts).
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { unpinPath } from '../../engine/bpf/index.js';
import { attachPinnedProgram, pinnedLinkIfindex } from '../../engine/dataplane/attach.js';
import { localPod4, localPod4Key, MAPS, PROGRAMS } from '../../engine/dataplane/layout.js';
import { forgetGonePods, registerLocalPod } from '../../engine/dataplane/local-pods.js';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import { openPinnedMaps } from '../../engine/dataplane/pinned-maps.js';
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';

/** The pod as host routing needs it: its interface's MAC and its addresses (IPv4 ones are used). */
export interface PodInterface {
  mac: string;
  addresses: readonly string[];
}

/** Returns false when no dataplane is loaded under `pinRoot`. */
export async function attachDataplane(node: Handle, hostVeth: Link, pod: PodInterface, pinRoot: string): Promise<boolean> {
  const programPin = fromPodPin(pinRoot);
  if (!existsSync(programPin)) return false;
  await attachPinnedProgram({ netns: node.netns, ifindex: hostVeth.index, programPin, linkPin: linkPin(pinRoot, hostVeth.name) });
  registerPod(hostVeth, pod, pinRoot);
  return true;
}

/**
 * Equivalent to: `bpftool map update pinned PINROOT/ferry_pod4 …` for each
 * IPv4 address of the pod. A dataplane an older ferry pinned has no host
 * routing (no such map): the stack delivers, and there is nothing to do.
 */
export function registerPod(hostVeth: Link, pod: PodInterface, pinRoot: string): void {
  const v4 = pod.addresses.filter((a) => isIPv4(a));
  if (v4.length === 0 || !existsSync(join(pinRoot, MAPS.localPods))) return;
  const maps = openPinnedMaps(pinRoot, ['localPods']);
  try {
    for (const address of v4) registerLocalPod(maps.localPods, { address, ifindex: hostVeth.index, podMac: pod.mac, hostMac: hostVeth.mac! });
  } finally {
    maps.close();
  }
}

/** What of attachDataplane() a host veth has now. */
export interface DataplaneHook {
  /**
   * How from_pod is attached at its ingress: by the tcx link pinned for this
   * veth under `pinRoot`, by a cls_bpf filter (kernels without tcx, where
   * nothing is pinned), or not at all.
   */
  fromPod: 'tcx' | 'tc' | undefined;
  /** Every IPv4 address of the pod is registered for host routing on this veth, with these MACs (true when there is nothing to register). */
  registered: boolean;
}

/**
 * Looks, without changing anything: the link pinned for the veth (is it
 * attached to this ifindex?), the veth's tc filters, and the host routing
 * entries of the pod's IPv4 addresses. `pod.mac` is read only when the pod
 * has an IPv4 address.
 */
export async function dataplaneHook(node: Handle, hostVeth: Link, pod: { addresses: readonly string[]; mac: () => Promise<string> }, pinRoot: string): Promise<DataplaneHook> {
  let fromPod: DataplaneHook['fromPod'];
  const linked = pinnedLinkIfindex(linkPin(pinRoot, hostVeth.name));
  if (linked !== undefined && linked === hostVeth.index) fromPod = 'tcx';
  else if ((await node.tc.filters(hostVeth, 'ingress')).some((f) => f.bpf?.name?.startsWith(`${PROGRAMS.fromPod}:`) || f.bpf?.name === PROGRAMS.fromPod)) fromPod = 'tc';
  const v4 = pod.addresses.filter((a) => isIPv4(a));
  if (v4.length === 0 || !existsSync(join(pinRoot, MAPS.localPods))) return { fromPod, registered: true };
  const mac = (await pod.mac()).toLowerCase();
  const maps = openPinnedMaps(pinRoot, ['localPods']);
  try {
    const registered = v4.every((address) => {
      const value = maps.localPods.lookup(localPod4Key.encode({ address }));
      if (value === undefined) return false;
      const entry = localPod4.decode(value);
      return entry.ifindex === hostVeth.index && entry.hostMac === hostVeth.mac?.toLowerCase() && entry.podMac === mac;
    });
    return { fromPod, registered };
  } finally {
    maps.close();
  }
}

/**
 * After the host veth is gone: removes the link's pin (the kernel detached
 * the program with the veth; this frees the pin itself) and the host-routing
 * entries of every pod whose host veth is gone, this one's among them.
 * Missing pieces: nothing to do.
 */
export async function detachDataplane(node: Handle, pinRoot: string, hostVeth: string): Promise<void> {
  unpinPath(linkPin(pinRoot, hostVeth));
  if (!existsSync(join(pinRoot, MAPS.localPods))) return;
  const links = new Map((await node.link.list()).map((l) => [l.index, l.mac]));
  const maps = openPinnedMaps(pinRoot, ['localPods']);
  try {
    forgetGonePods(maps.localPods, links);
  } finally {
    maps.close();
  }
}
