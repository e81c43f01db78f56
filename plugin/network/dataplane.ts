// Hooking a pod into ferry's eBPF dataplane: the program the daemon pinned
// (from_pod) is attached at tcx ingress of the pod's host veth — traffic
// leaving the pod — and the link is pinned so it outlives this CNI call; the
// pod's addresses are registered for host routing (MAPS.localPods for IPv4,
// MAPS.localPods6 for IPv6), so that packets to it are delivered with
// bpf_redirect_peer(). Without a
// loaded dataplane (no pin), pods are plain routed pods until the daemon
// loads one and hooks them (plugin/daemon/pod-hooks.ts).
import { existsSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { unpinPath } from '../../engine/bpf/index.js';
import { attachPinnedProgram, pinnedLinkIfindex } from '../../engine/dataplane/attach.js';
import { localPod4, localPod4Key, localPod6Key, MAPS, PROGRAMS } from '../../engine/dataplane/layout.js';
import { forgetGonePods, registerLocalPod } from '../../engine/dataplane/local-pods.js';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import { openPinnedMaps } from '../../engine/dataplane/pinned-maps.js';
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';

/** The pod as host routing needs it: its interface's MAC and its addresses. */
export interface PodInterface {
  mac: string;
  addresses: readonly string[];
}

/** Host routing's map of each family, and which addresses go there. */
const HOST_ROUTING = [
  { family: 4, role: 'localPods', key: localPod4Key, holds: isIPv4 },
  { family: 6, role: 'localPods6', key: localPod6Key, holds: isIPv6 },
] as const;

/**
 * Each family's map pinned under `pinRoot` with the pod's addresses of that
 * family: none for a family the pod has no address of, or whose map a
 * dataplane an older ferry pinned does not have (its packets go through the
 * stack, and there is nothing to do).
 */
function hostRoutingMaps(addresses: readonly string[], pinRoot: string) {
  return HOST_ROUTING.map((r) => ({ ...r, addresses: addresses.filter((a) => r.holds(a)) })).filter(
    (r) => r.addresses.length > 0 && existsSync(join(pinRoot, MAPS[r.role])),
  );
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
 * IPv4 address of the pod, and `… PINROOT/ferry_pod6 …` for each IPv6 one.
 */
export function registerPod(hostVeth: Link, pod: PodInterface, pinRoot: string): void {
  for (const r of hostRoutingMaps(pod.addresses, pinRoot)) {
    const maps = openPinnedMaps(pinRoot, [r.role]);
    try {
      for (const address of r.addresses) registerLocalPod(maps[r.role], { address, ifindex: hostVeth.index, podMac: pod.mac, hostMac: hostVeth.mac! }, r.family);
    } finally {
      maps.close();
    }
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
  /** Every address of the pod is registered for host routing on this veth, with these MACs (true when there is nothing to register). */
  registered: boolean;
}

/**
 * Looks, without changing anything: the link pinned for the veth (is it
 * attached to this ifindex?), the veth's tc filters, and the host routing
 * entries of the pod's addresses (ferry_pod4, ferry_pod6). `pod.mac` is
 * read only when one of them is to be checked.
 */
export async function dataplaneHook(node: Handle, hostVeth: Link, pod: { addresses: readonly string[]; mac: () => Promise<string> }, pinRoot: string): Promise<DataplaneHook> {
  let fromPod: DataplaneHook['fromPod'];
  const linked = pinnedLinkIfindex(linkPin(pinRoot, hostVeth.name));
  if (linked !== undefined && linked === hostVeth.index) fromPod = 'tcx';
  else if ((await node.tc.filters(hostVeth, 'ingress')).some((f) => f.bpf?.name?.startsWith(`${PROGRAMS.fromPod}:`) || f.bpf?.name === PROGRAMS.fromPod)) fromPod = 'tc';
  const families = hostRoutingMaps(pod.addresses, pinRoot);
  if (families.length === 0) return { fromPod, registered: true };
  const mac = (await pod.mac()).toLowerCase();
  for (const r of families) {
    const maps = openPinnedMaps(pinRoot, [r.role]);
    try {
      const registered = r.addresses.every((address) => {
        const value = maps[r.role].lookup(r.key.encode({ address }));
        if (value === undefined) return false;
        const entry = localPod4.decode(value);
        return entry.ifindex === hostVeth.index && entry.hostMac === hostVeth.mac?.toLowerCase() && entry.podMac === mac;
      });
      if (!registered) return { fromPod, registered: false };
    } finally {
      maps.close();
    }
  }
  return { fromPod, registered: true };
}

/**
 * After the host veth is gone: removes the link's pin (the kernel detached
 * the program with the veth; this frees the pin itself) and the host-routing
 * entries (both families') of every pod whose host veth is gone, this one's
 * among them.
 * Missing pieces: nothing to do.
 */
export async function detachDataplane(node: Handle, pinRoot: string, hostVeth: string): Promise<void> {
  unpinPath(linkPin(pinRoot, hostVeth));
  const present = HOST_ROUTING.filter((r) => existsSync(join(pinRoot, MAPS[r.role])));
  if (present.length === 0) return;
  const links = new Map((await node.link.list()).map((l) => [l.index, l.mac]));
  for (const r of present) {
    const maps = openPinnedMaps(pinRoot, [r.role]);
    try {
      forgetGonePods(maps[r.role], links, r.family);
    } finally {
      maps.close();
    }
  }
}
