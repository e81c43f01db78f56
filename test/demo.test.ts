// The README's main job: the demo attaches two pods through ferry's CNI
// verbs, probes them, detaches them and removes everything it made.
import { describe, expect, it } from 'vitest';
import { runDemo } from '../engine/demo/demo.js';
import { isRoot, run } from './support/netns.js';

describe.skipIf(!isRoot)('ferry demo (needs root)', () => {
  it('attaches pods with CNI ADD, connects them over ICMP and TCP (v4, v6) and through an eBPF dual-stack ClusterIP programmed from a watched manifest file, and cleans up', async () => {
    const lines: string[] = [];
    const ok = await runDemo((l) => lines.push(l));
    const out = lines.join('\n');
    expect(out).toMatch(/CNI ADD pod-a: 10\.244\.0\.\d+\/32, fd00:10:244::[0-9a-f]+\/128/);
    expect(out).toMatch(/ICMP {2}pod-a → pod-b 10\.244\.0\.\d+: 3\/3 echo replies/);
    expect(out).toMatch(/ICMP {2}pod-a → pod-b fd00:10:244::[0-9a-f]+: 3\/3 echo replies/);
    expect(out).toMatch(/TCP {3}pod-a → pod-b 10\.244\.0\.\d+:8080: connected .* answer "pong hello from pod-a \(you are 10\.244\.0\.\d+:\d+\)"/);
    expect(out).toMatch(/TCP {3}pod-a → pod-b \[fd00:10:244::[0-9a-f]+\]:8080: connected/);
    expect(out).toMatch(/Service demo\/web from \S+services\.yaml \(the daemon's file source, watched\)/);
    expect(out).toMatch(/ClusterIP 10\.96\.0\.10:80 → pod-b 10\.244\.0\.\d+:8080, pod-c 10\.244\.0\.\d+:8080/);
    expect(out).toMatch(/ClusterIP \[fd00:10:96::10\]:80 → pod-b \[fd00:10:244::[0-9a-f]+\]:8080, pod-c \[fd00:10:244::[0-9a-f]+\]:8080/);
    for (const vip of ['10\\.96\\.0\\.10:80', '\\[fd00:10:96::10\\]:80']) {
      expect(out).toMatch(new RegExp(`TCP {3}pod-a → ${vip} ×20: 20 answered, by conntrack pod-b [1-9]\\d*, pod-c [1-9]\\d*$`, 'm'));
      // The file edited: pod-c leaves, and new connections all reach pod-b, over either family.
      expect(out).toMatch(new RegExp(`TCP {3}pod-a → ${vip} ×10: 10 answered, by conntrack pod-b 10, pod-c 0$`, 'm'));
    }
    expect(out).toMatch(/pod-c left both EndpointSlices; the watch brought it to the maps in \d+ ms/);
    expect(out).toMatch(/CNI DEL pod-b: host veth fy[0-9a-f]{13} and addresses .* released/);
    expect(ok).toBe(true);
    const runId = /run ([0-9a-f]{4})/.exec(out)![1]!;
    // None of the demo's namespaces (ferry-demo-node-RUN, ferry-demo-LABEL-RUN) is left. Only those
    // names count: another test's namespace may hold -RUN by chance in its random suffix.
    expect(run('ip', ['netns', 'list'])).not.toMatch(new RegExp(`^ferry-demo-\\S+-${runId}(\\s|$)`, 'm'));
  });
});
