// What the verb handlers share: the node's namespace (the one the plugin
// runs in — the host's under kubelet, a test's "node" namespace in tests),
// and where state lives.
import { join } from 'node:path';
import { Handle } from '../../engine/handle.js';
import type { Netns } from '../../engine/netns/netns.js';
import type { NetConf } from '../cni/index.js';
import { DEFAULT_DATA_DIR, IpamStore } from '../ipam/index.js';
import { DEFAULT_PIN_ROOT } from '../../engine/dataplane/paths.js';
import { DEFAULT_HOST_VETH_PREFIX, hostVethName } from '../network/names.js';

export const DEFAULT_STATE_DIR = '/var/lib/ferry';

export interface PluginContext {
  /** The node's namespace; stays open for the context's life. */
  nodeNetns: Netns;
  /** Families whose forwarding this process has already switched on. */
  forwarding?: Set<4 | 6>;
}

/**
 * Runs fn with a netlink handle of its own in the node namespace. One socket
 * per request, not one shared: the kernel serves sockets in parallel, and a
 * veth deletion waits ~20 ms for RCU, which would otherwise hold up every
 * concurrent request queued behind it.
 */
export async function withNode<T>(ctx: PluginContext, fn: (node: Handle) => Promise<T>): Promise<T> {
  const node = await Handle.open(ctx.nodeNetns);
  try {
    return await fn(node);
  } finally {
    node.close();
  }
}

export function ipamStore(conf: NetConf): IpamStore {
  return new IpamStore(conf.name, conf.ipam.dataDir ?? DEFAULT_DATA_DIR);
}

/** Endpoint records (who a pod is, what it got) live beside, not inside, the IPAM store. */
export function endpointDir(conf: NetConf): string {
  return join(conf.dataDir ?? DEFAULT_STATE_DIR, 'endpoints', conf.name);
}

export function hostVethFor(conf: NetConf, containerId: string, ifname: string): string {
  return hostVethName(containerId, ifname, conf.hostVethPrefix ?? DEFAULT_HOST_VETH_PREFIX);
}

export function pinRootOf(conf: NetConf): string {
  return conf.ebpf?.pinRoot ?? DEFAULT_PIN_ROOT;
}
