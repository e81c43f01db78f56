// Hooking a pod into ferry's eBPF dataplane: the program the daemon pinned
// (from_pod) is attached at tcx ingress of the pod's host veth — traffic
// leaving the pod — and the link is pinned so it outlives this CNI call; the
// pod's IPv4 addresses are registered for host routing (MAPS.localPods), so
// that packets to it are delivered with bpf_redirect_peer(). Without a
// loaded dataplane (no pin), pods are plain routed pods.
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { unpinPath } from '../../engine/bpf/index.js';
import { attachPinnedProgram } from '../../engine/dataplane/attach.js';
import { MAPS } from '../../engine/dataplane/layout.js';
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
  // A dataplane an older ferry pinned has no host routing: the stack delivers.
  if (!existsSync(join(pinRoot, MAPS.localPods))) return true;
  const maps = openPinnedMaps(pinRoot, ['localPods']);
  try {
    for (const address of pod.addresses.filter((a) => isIPv4(a))) {
      registerLocalPod(maps.localPods, { address, ifindex: hostVeth.index, podMac: pod.mac, hostMac: hostVeth.mac! });
    }
  } finally {
    maps.close();
  }
  return true;
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
