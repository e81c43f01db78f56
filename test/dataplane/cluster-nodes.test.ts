// syncClusterNodes(): the other nodes' addresses in MAPS.clusterNodes,
// written as a difference (in memory; the datapath's use of the map is in
// masquerade.test.ts).
import { describe, expect, it } from 'vitest';
import { syncClusterNodes } from '../../engine/dataplane/cluster-nodes.js';
import { clusterNode4Key } from '../../engine/dataplane/layout.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';

const addresses = (map: MemoryMap) => [...map.keys()].map((k) => clusterNode4Key.decode(k).address).sort();

describe('syncClusterNodes', () => {
  it('adds and removes only what changed, and ignores IPv6 addresses', () => {
    const map = new MemoryMap('nodes', 4, 4);
    expect(syncClusterNodes(map, ['192.168.100.12', '192.168.100.13', 'fd00::12'])).toEqual({ added: 2, removed: 0 });
    expect(addresses(map)).toEqual(['192.168.100.12', '192.168.100.13']);
    expect(syncClusterNodes(map, ['192.168.100.13', '192.168.100.14'])).toEqual({ added: 1, removed: 1 });
    expect(addresses(map)).toEqual(['192.168.100.13', '192.168.100.14']);
    expect(syncClusterNodes(map, ['192.168.100.13', '192.168.100.14'])).toEqual({ added: 0, removed: 0 });
    expect(syncClusterNodes(map, [])).toEqual({ added: 0, removed: 2 });
    expect(map.size).toBe(0);
  });
});
