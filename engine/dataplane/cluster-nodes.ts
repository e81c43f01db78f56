// The other nodes' addresses in MAPS.clusterNodes, which to_uplink does not
// masquerade pods' packets to (bpf/lib/masq4.h says why). The node network
// keeps it equal to what the Node objects say, writing only the difference.
import { clusterNode4, clusterNode4Key } from './layout.js';
import type { MapLike } from './reconcile.js';

/** Makes the map hold exactly `addresses` (IPv4; others are ignored). Returns what changed. */
export function syncClusterNodes(map: MapLike, addresses: Iterable<string>): { added: number; removed: number } {
  const wanted = new Set([...addresses].filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a)));
  let removed = 0;
  for (const [key] of map.entries()) {
    const { address } = clusterNode4Key.decode(key);
    if (wanted.delete(address)) continue;
    if (map.delete(key)) removed++;
  }
  for (const address of wanted) map.update(clusterNode4Key.encode({ address }), clusterNode4.encode({}), 'any');
  return { added: wanted.size, removed };
}
