// What the verb handlers share: the node's netlink handle (the namespace the
// plugin runs in — the host's under kubelet, a test's "node" namespace in
// tests), and where state lives.
import { join } from 'node:path';
import type { Handle } from '../../engine/handle.js';
import type { NetConf } from '../cni/index.js';
import { DEFAULT_DATA_DIR, IpamStore } from '../ipam/index.js';
import { DEFAULT_HOST_VETH_PREFIX, hostVethName } from '../network/names.js';

export const DEFAULT_STATE_DIR = '/var/lib/ferry';

export interface PluginContext {
  /** A handle in the node's namespace. */
  node: Handle;
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
