// A node for end-to-end dataplane tests: test/daemon/support.ts's node
// fixture (a node namespace, pods attached by ferry's CNI ADD in routed
// mode) with the dataplane loaded and pinned in this process, as the daemon
// does it. Everything made is undone by the caller's cleanups, last first.
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import type { Netns } from '../../engine/netns/netns.js';
import { nodeFixture, type Pod } from '../daemon/support.js';

export type { Pod };

export interface PodNode {
  dp: Dataplane;
  node: Netns;
  add(label: string): Promise<Pod>;
  del(label: string, pod: Pod): Promise<void>;
}

/**
 * `prefix` names the namespaces (keep it short: names are ≤ 15 characters
 * with a random part). With `ebpf: false` the dataplane is loaded but CNI ADD
 * does not attach it: pods routed by the stack alone.
 */
export async function podNode(cleanups: Array<() => unknown>, prefix: string, options: { ebpf?: boolean } = {}): Promise<PodNode> {
  const f = nodeFixture(prefix, (c) => cleanups.push(c), options);
  const dp = await loadDataplane(f.pinRoot);
  cleanups.push(() => dp.close());
  return { dp, node: f.netns, add: f.addPod, del: f.delPod };
}
