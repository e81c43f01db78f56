// Hooking a pod into ferry's eBPF dataplane: the program the daemon pinned
// (from_pod) is attached at tcx ingress of the pod's host veth — traffic
// leaving the pod — and the link is pinned so it outlives this CNI call.
// Without a loaded dataplane (no pin), pods are plain routed pods.
import { existsSync } from 'node:fs';
import { unpinPath } from '../../engine/bpf/index.js';
import { attachPinnedProgram } from '../../engine/dataplane/attach.js';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';

/** Returns false when no dataplane is loaded under `pinRoot`. */
export async function attachDataplane(node: Handle, hostVeth: Link, pinRoot: string): Promise<boolean> {
  const programPin = fromPodPin(pinRoot);
  if (!existsSync(programPin)) return false;
  await attachPinnedProgram({ netns: node.netns, ifindex: hostVeth.index, programPin, linkPin: linkPin(pinRoot, hostVeth.name) });
  return true;
}

/**
 * Removes the link's pin. The kernel detached the program already when the
 * veth went; this frees the pin itself. Missing: nothing to do.
 */
export function detachDataplane(pinRoot: string, hostVeth: string): void {
  unpinPath(linkPin(pinRoot, hostVeth));
}
