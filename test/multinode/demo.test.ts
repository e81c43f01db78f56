// `ferry demo --nodes 2`: two nodes on an underlay bridge, pods across them
// by direct routes and then by the VXLAN overlay, a node leaving; it ends
// with `demo OK` and leaves no namespace behind.
import { describe, expect, it } from 'vitest';
import { runMultiNodeDemo } from '../../engine/demo/multinode.js';
import { isRoot, run } from '../support/netns.js';

describe.skipIf(!isRoot)('ferry demo --nodes 2 (needs root)', () => {
  it('connects pods across two nodes in both modes, shows the kernel state and cleans up', { timeout: 60_000 }, async () => {
    const lines: string[] = [];
    const ok = await runMultiNodeDemo(2, (l) => lines.push(l));
    const out = lines.join('\n');
    expect(out).toMatch(/route 10\.244\.2\.0\/24 via 192\.168\.100\.12 dev eth0 proto 102/);
    expect(out).toMatch(/pod-1-direct \(node-1\) → pod-2-direct 10\.244\.2\.\d+ \(node-2\): ICMP 3\/3 .*TCP connected/);
    expect(out).toMatch(/node-1: ferry\.vxlan created \(mtu 1450\)/);
    expect(out).toMatch(/route 10\.244\.2\.0\/24 via 10\.244\.2\.0 dev ferry\.vxlan onlink proto 102/);
    expect(out).toMatch(/neigh 10\.244\.2\.0 lladdr 66:79:c0:a8:64:0c dev ferry\.vxlan PERMANENT/);
    expect(out).toMatch(/fdb 66:79:c0:a8:64:0c dev ferry\.vxlan dst 192\.168\.100\.12 self permanent/);
    expect(out).toMatch(/pod-1-vxlan 10\.244\.1\.\d+ on node-1 \(eth0 mtu 1450\)/);
    expect(out).toMatch(/pod-2-vxlan \(node-2\) → pod-1-vxlan 10\.244\.1\.\d+ \(node-1\): ICMP 3\/3 .*TCP connected/);
    expect(out).toMatch(/node-1: ferry\.vxlan adopted \(mtu 1450\), routes \+0 ~0 -1, neighbours \+0 ~0 -1, fdb \+0 ~0 -1/);
    expect(out).toMatch(/pod-1-vxlan → pod-2-vxlan 10\.244\.2\.\d+: no route any more, as expected/);
    expect(out, out).toMatch(/demo OK$/);
    expect(ok).toBe(true);
    const runId = /run ([0-9a-f]{4})/.exec(out)![1]!;
    expect(run('ip', ['netns', 'list'])).not.toContain(`ferry-mn-${runId}`);
  });

  it('refuses a node count it cannot show', async () => {
    const lines: string[] = [];
    expect(await runMultiNodeDemo(1, (l) => lines.push(l))).toBe(false);
    expect(lines).toEqual(['ferry demo --nodes: 2 to 8 nodes, not 1']);
  });
});
