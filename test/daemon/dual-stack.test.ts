// The daemon's file source with dual-stack and IPv6-only Services: the
// Service and one EndpointSlice per family, as Kubernetes writes them, from
// a manifests file the real `ferry daemon` watches; pods with both families'
// addresses attached by ferry's CNI. Traffic over IPv6 follows an edit of
// the IPv6 slice, and the IPv4 twin is untouched by it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Prober } from '../../engine/probe/probe.js';
import { replaceFile } from '../support/files.js';
import { isRoot, run } from '../support/netns.js';
import { DaemonProcess, nodeFixture, type Pod } from './support.js';

const VIP4 = '10.96.0.10';
const VIP6 = 'fd00:96::10';
const VIP6_ONLY = 'fd00:96::20';

const cleanups: Array<() => unknown> = [];
const defer = (c: () => unknown) => void cleanups.push(c);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const services = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: ${VIP4}
  clusterIPs: [${VIP4}, "${VIP6}"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports: [{ name: http, protocol: TCP, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: six, namespace: default }
spec:
  clusterIP: "${VIP6_ONLY}"
  clusterIPs: ["${VIP6_ONLY}"]
  ipFamilies: [IPv6]
  ports: [{ name: http, protocol: TCP, port: 80, targetPort: 8080 }]
`;

function slice(service: string, family: 4 | 6, addresses: string[]): string {
  return `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${service}-ipv${family}
  namespace: default
  labels: { kubernetes.io/service-name: ${service} }
addressType: IPv${family}
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
${addresses.map((a) => `  - addresses: ["${a}"]\n    conditions: { ready: true }\n    nodeName: node-a`).join('\n')}
`;
}

/** Which pod answered: the servers name their own address. */
function answeredBy(reply: string, pods: Pod[]): Pod | undefined {
  return pods.find((p) => reply.includes(` from ${p.ip6} `) || reply.includes(` from ${p.ip} `));
}

describe.skipIf(!isRoot)('ferry daemon: dual-stack and IPv6 Services from the file source (needs root)', () => {
  it('programs both families from per-family slices; an IPv6 slice edit moves IPv6 traffic, IPv4 untouched', { timeout: 120_000 }, async () => {
    const f = nodeFixture('fds', defer, { dualStack: true });
    const file = join(f.dir, 'services.yaml');
    // The daemon first (it pins the dataplane CNI ADD hooks pods to), with no Services yet.
    writeFileSync(file, '');
    const daemon = new DaemonProcess(f.ns, ['--cni-socket', join(f.dir, 'cni.sock'), '--pin-root', f.pinRoot, '--services', file, '--node-name', 'node-a']);
    defer(() => daemon.kill());
    await daemon.waitFor((l) => typeof l.sync === 'number', 30_000);
    const client = await f.addPod('client');
    const be1 = await f.addPod('be1');
    const be2 = await f.addPod('be2');
    const backends = [be1, be2];
    for (const p of [client, ...backends]) expect(p.ip6, 'a dual-stack pod').toMatch(/^fd00:244::/);
    const prober = new Prober();
    defer(() => prober.close());
    for (const b of backends) {
      await prober.serveTcp(b.netns, b.ip, 8080, { identify: true });
      await prober.serveTcp(b.netns, b.ip6!, 8080, { identify: true });
    }

    const manifests = (v6: Pod[]) =>
      [services, slice('web', 4, backends.map((b) => b.ip)), slice('web', 6, v6.map((b) => b.ip6!)), slice('six', 6, backends.map((b) => b.ip6!))].join('---\n');
    writeFileSync(file, manifests(backends));
    const first = await daemon.waitFor((l) => typeof l.sync === 'number' && l.frontends === 3, 30_000);
    expect(first).toMatchObject({ services: 2, frontends: 3, problems: 0 });

    // Each address of the Service reaches the backends of its own family, the client's address kept.
    for (const [vip, family] of [[VIP4, 4], [VIP6, 6], [VIP6_ONLY, 6]] as const) {
      const seen = new Set<Pod>();
      for (let i = 0; i < 30; i++) {
        const r = await prober.tcpExchange(client.netns, vip, 80, `hello ${i}`);
        expect(r.reply).toContain(`(you are ${family === 4 ? client.ip : client.ip6}:`);
        const by = answeredBy(r.reply, backends);
        expect(r.reply, `answered from a ${family === 4 ? 'IPv4' : 'IPv6'} backend address`).toContain(` from ${family === 4 ? by?.ip : by?.ip6} `);
        seen.add(by!);
      }
      // 30 connections all to one of two backends: p = 2^-29.
      expect(seen.size, vip).toBe(2);
    }

    // be2 leaves the IPv6 slice of web only: once synced, its IPv6 address gets no new connection.
    // (How fast a sync follows an edit is a bench's target, not a test's: see test/multinode/membership.test.ts.)
    const synced = daemon.nextSync();
    replaceFile(file, manifests([be1]));
    expect(await synced).toMatchObject({ services: 2, frontends: 3, problems: 0 });
    for (let i = 0; i < 8; i++) expect((await prober.tcpExchange(client.netns, VIP6, 80, `after ${i}`)).reply).toContain(` from ${be1.ip6} `);
    // The IPv4 twin still spreads over both (its slice did not change).
    const seen4 = new Set<Pod | undefined>();
    for (let i = 0; i < 30; i++) seen4.add(answeredBy((await prober.tcpExchange(client.netns, VIP4, 80, `four ${i}`)).reply, backends));
    expect(seen4.size, '30 connections all to one of two backends: p = 2^-29').toBe(2);

    // The CLI reads the pinned maps: both families' frontends are listed.
    const listed = run(process.execPath, ['--import', 'tsx', 'engine/cli/ferry.ts', 'services', '--pin-root', f.pinRoot, '-o', 'json']);
    const text = JSON.stringify(JSON.parse(listed));
    for (const vip of [VIP4, VIP6, VIP6_ONLY]) expect(text).toContain(vip);
  });
});
