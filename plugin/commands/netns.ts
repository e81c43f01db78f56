// Opening the pod's namespace for a verb, with the CNI error the spec wants
// when it is not there.
import { Handle } from '../../engine/handle.js';
import { Netns, NetnsError } from '../../engine/netns/netns.js';
import { CniCode, CniError } from '../cni/index.js';

/** The pod's namespace, open; a missing one is "container unknown" (code 3). */
export function openPodNetns(path: string): Netns {
  try {
    return Netns.open(path);
  } catch (e) {
    if (e instanceof NetnsError && e.code === 'ENOENT') {
      throw new CniError(CniCode.UnknownContainer, `CNI_NETNS "${path}": no such network namespace`, undefined, { cause: e });
    }
    if (e instanceof NetnsError && e.code === 'EINVAL') {
      throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS "${path}": not a network namespace`, undefined, { cause: e });
    }
    throw e;
  }
}

/** Runs fn with a handle in the pod's namespace, closing both afterwards. */
export async function withPod<T>(path: string, fn: (pod: Handle) => Promise<T>): Promise<T> {
  const netns = openPodNetns(path);
  try {
    const pod = await Handle.open(netns);
    try {
      return await fn(pod);
    } finally {
      pod.close();
    }
  } finally {
    netns.close();
  }
}
