// Hooking a pod into ferry's eBPF dataplane: the program the daemon pinned
// (from_pod) is attached at tcx ingress of the pod's host veth — traffic
// leaving the pod — and the link is pinned so it outlives this CNI call.
// Without a loaded dataplane (no pin), pods are plain routed pods.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { attachTc, BpfProgram, unpinPath } from '../../engine/bpf/index.js';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import type { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';

/** Returns false when no dataplane is loaded under `pinRoot`. */
export async function attachDataplane(node: Handle, hostVeth: Link, pinRoot: string): Promise<boolean> {
  const programPin = fromPodPin(pinRoot);
  if (!existsSync(programPin)) return false;
  const program = BpfProgram.openPinned(programPin);
  try {
    const attachment = await attachTc({ netns: node.netns, ifindex: hostVeth.index, direction: 'ingress', program });
    if (attachment.mode === 'tcx') {
      const pin = linkPin(pinRoot, hostVeth.name);
      unpinPath(pin); // a link left by an earlier pod with this veth name
      mkdirSync(dirname(pin), { recursive: true });
      try {
        attachment.pin(pin);
      } catch (e) {
        await attachment.detach();
        throw e;
      }
      attachment.release();
    }
    // A cls_bpf filter (kernels without tcx) stays on the interface by itself.
    return true;
  } finally {
    program.close();
  }
}

/**
 * Removes the link's pin. The kernel detached the program already when the
 * veth went; this frees the pin itself. Missing: nothing to do.
 */
export function detachDataplane(pinRoot: string, hostVeth: string): void {
  unpinPath(linkPin(pinRoot, hostVeth));
}
