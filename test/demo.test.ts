// The README's main job: the demo wires a node and two pods, probes them and
// removes everything it made.
import { describe, expect, it } from 'vitest';
import { runDemo } from '../engine/demo/demo.js';
import { isRoot, run } from './support/netns.js';

describe.skipIf(!isRoot)('ferry demo (needs root)', () => {
  it('connects two pods over ICMP and TCP, v4 and v6, and cleans up', async () => {
    const lines: string[] = [];
    const ok = await runDemo((l) => lines.push(l));
    const out = lines.join('\n');
    expect(out).toMatch(/ICMP {2}pod-a → pod-b 10\.244\.0\.11: 3\/3 echo replies/);
    expect(out).toMatch(/ICMP {2}pod-a → pod-b fd00:10:244::b: 3\/3 echo replies/);
    expect(out).toMatch(/TCP {3}pod-a → pod-b 10\.244\.0\.11:8080: connected .* answer "pong hello from pod-a \(you are 10\.244\.0\.10:\d+\)"/);
    expect(out).toMatch(/TCP {3}pod-a → pod-b \[fd00:10:244::b\]:8080: connected/);
    expect(ok).toBe(true);
    const run_ = /run ([0-9a-f]{4})/.exec(out)![1]!;
    expect(run('ip', ['netns', 'list'])).not.toContain(`-${run_}`);
  });
});
