// End to end: pods added by CNI ADD to a node whose daemon has not started
// yet (no dataplane pinned: they are plainly routed), then `ferry daemon
// --services FILE` starts in the node namespace. It hooks both pods to the
// dataplane it loads, and a ClusterIP it serves reaches the backend pod from
// the client pod, both added before it; a restarted daemon finds them hooked
// and changes nothing (the same tcx links), and the ClusterIP still works.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import { Prober } from '../../engine/probe/probe.js';
import { isRoot, run } from '../support/netns.js';
import { DaemonProcess, isSync, nodeFixture, type LogLine, type NodeFixture } from './support.js';

const VIP = '10.96.0.10';

const cleanups: Array<() => unknown> = [];
const defer = (c: () => unknown) => void cleanups.push(c);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const manifests = (backend: string) => `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: ClusterIP
  clusterIP: ${VIP}
  ports:
    - { name: http, protocol: TCP, port: 80, targetPort: 8080 }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: default
  labels: { kubernetes.io/service-name: web }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - addresses: [${backend}]
    conditions: { ready: true }
    nodeName: node-a
`;

/** BPF_LINK_TYPE_TCX (Debian's bpftool 7.1 prints link types it does not know by number). */
const LINK_TYPE_TCX = 11;

/** The tcx link pinned for `veth` (bpftool): its id and program. */
function pinnedLink(f: NodeFixture, veth: string): { id: number; prog_id: number } {
  const link = JSON.parse(run('bpftool', ['-j', 'link', 'show', 'pinned', linkPin(f.pinRoot, veth)])) as { id: number; type: number | string; prog_id: number };
  expect([LINK_TYPE_TCX, 'tcx']).toContain(link.type);
  return { id: link.id, prog_id: link.prog_id };
}

/** The id of the from_pod the daemon pinned (bpftool). */
const fromPodId = (f: NodeFixture): number => (JSON.parse(run('bpftool', ['-j', 'prog', 'show', 'pinned', fromPodPin(f.pinRoot)])) as { id: number }).id;

const isSummary = (l: LogLine) => l.msg.startsWith('recorded pods:');

describe.skipIf(!isRoot)('ferry daemon hooks the pods added before it started (needs root)', () => {
  it('hooks them at start, serves a ClusterIP between them, and a restart changes nothing', { timeout: 120_000 }, async () => {
    const f = nodeFixture('pd', defer);
    const client = await f.addPod('client', { namespace: 'default', name: 'client' });
    const backend = await f.addPod('web', { namespace: 'default', name: 'web-0' });
    const prober = new Prober();
    defer(() => prober.close());
    await prober.serveTcp(backend.netns, backend.ip, 8080);

    const file = join(f.dir, 'services.yaml');
    writeFileSync(file, manifests(backend.ip));
    const args = ['--cni-socket', join(f.dir, 'cni.sock'), '--pin-root', f.pinRoot, '--services', file, '--node-name', 'node-a', '--cni-data-dir', join(f.dir, 'state')];
    const daemon = new DaemonProcess(f.ns, args);
    defer(() => daemon.kill());

    const summary = await daemon.waitFor(isSummary, 30_000);
    expect(summary).toMatchObject({ level: 30, hooked: 2, alreadyHooked: 0, vethGone: 0, failed: 0 });
    for (const [pod, name] of [[client, 'default/client'], [backend, 'default/web-0']] as const) {
      const line = daemon.lines.find((l) => l.level === 30 && l.hostVeth === pod.hostVeth);
      expect(line).toMatchObject({ pod: name });
      expect(line!.msg).toContain(`hooked pod ${name}`);
    }
    // Hooked before the daemon serves CNI calls, which it logs last.
    const serving = await daemon.waitFor((l) => l.msg === 'serving CNI calls');
    expect(daemon.lines.indexOf(serving)).toBeGreaterThan(daemon.lines.indexOf(summary));
    const links = [client, backend].map((p) => pinnedLink(f, p.hostVeth));
    for (const l of links) expect(l.prog_id).toBe(fromPodId(f));

    expect(await daemon.waitFor(isSync)).toMatchObject({ frontends: 1, backends: 1 });
    for (let i = 0; i < 5; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `hello ${i}`);
      // The backend saw the client's own address: DNAT on the client's veth, reverse NAT on the backend's.
      expect(r.reply).toMatch(new RegExp(`^pong hello ${i} \\(you are ${client.ip.replaceAll('.', '\\.')}:\\d+\\)$`));
    }

    // A restart: both found hooked, the same links in place (running the program they had: the
    // new daemon pinned a new from_pod, for pods added from now on), the ClusterIP still served.
    await daemon.kill('SIGTERM');
    const again = new DaemonProcess(f.ns, args);
    defer(() => again.kill());
    expect(await again.waitFor(isSummary, 30_000)).toMatchObject({ hooked: 0, alreadyHooked: 2, vethGone: 0, failed: 0 });
    expect([client, backend].map((p) => pinnedLink(f, p.hostVeth))).toEqual(links);
    await again.waitFor(isSync);
    const r = await prober.tcpExchange(client.netns, VIP, 80, 'after restart');
    expect(r.reply).toContain('pong after restart');
  });
});
