// Namespaces a test opens through ferry's Netns and the Prober it probes
// them with, closed after each test (the prober first: its workers live in
// those namespaces), even when the test fails.
import { afterEach } from 'vitest';
import { Netns } from '../../engine/netns/netns.js';
import { Prober } from '../../engine/probe/probe.js';

const opened: Netns[] = [];
const probers: Prober[] = [];

afterEach(async () => {
  for (const p of probers.splice(0)) await p.close();
  for (const ns of opened.splice(0)) ns.close();
});

/** Netns.open(name), closed after the current test. */
export function openNetns(name: string): Netns {
  const ns = Netns.open(name);
  opened.push(ns);
  return ns;
}

/** A Prober closed after the current test. */
export function newProber(): Prober {
  const p = new Prober();
  probers.push(p);
  return p;
}
