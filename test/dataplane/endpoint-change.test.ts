// End to end: a Service with TCP and UDP ports and three backend pods,
// programmed from manifests by the daemon's own sync (ServiceSync over the
// file source). One backend is then taken out of the EndpointSlice:
//  - new TCP connections avoid it, while connections already open to the
//    other two keep working, byte for byte;
//  - a UDP client that keeps its source port (a resolver does) and was
//    talking to the removed backend gets its next answer from a live one:
//    its conntrack entry went with the backend, so the stale-UDP-entry
//    blackhole of kube-proxy's history cannot happen.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { backendKey } from '../../engine/dataplane/desired.js';
import { ct4Key, ctEntry, lb4Key, lb4Service } from '../../engine/dataplane/layout.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import { Prober, type TcpStream } from '../../engine/probe/probe.js';
import { ServiceSync } from '../../plugin/daemon/services.js';
import { isRoot } from '../support/netns.js';
import { podNode, type Pod } from './pod-node.js';

const VIP = '10.96.0.10';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function manifests(backends: Pod[]): string {
  return `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: ${VIP}
  ports:
    - { name: http, protocol: TCP, port: 80, targetPort: http }
    - { name: dns, protocol: UDP, port: 53, targetPort: dns }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-x, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }, { name: dns, port: 5353, protocol: UDP }]
endpoints:
${backends.map((b) => `  - { addresses: [${b.ip}], conditions: { ready: true }, nodeName: node-a }`).join('\n')}
`;
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!isRoot)('a backend removed under traffic (needs root)', () => {
  it('new flows avoid it, open TCP connections to the others are untouched, a UDP client moves on', { timeout: 60_000 }, async () => {
    const { dp, add } = await podNode(cleanups, 'fec');
    const client = await add('client');
    const backends = [await add('be1'), await add('be2'), await add('be3')];
    const prober = new Prober();
    cleanups.push(() => prober.close());
    for (const b of backends) {
      await prober.serveTcp(b.netns, b.ip, 8080, { echo: true });
      await prober.serveUdp(b.netns, b.ip, 5353);
    }

    const state = mkdtempSync(join(tmpdir(), 'ferry-fec-'));
    cleanups.push(() => rmSync(state, { recursive: true, force: true }));
    const file = join(state, 'services.yaml');
    writeFileSync(file, manifests(backends));
    const reconciler = await Reconciler.adopt(dp.maps);
    const sync = new ServiceSync({ path: file, nodeName: 'node-a', reconciler, maps: dp.maps, log: pino({ level: 'silent' }), delayMs: 20 });
    cleanups.push(() => sync.close());
    sync.watch();
    expect(sync.syncNow()).toMatchObject({ services: 1, frontends: 2, backends: 6, problems: 0 });

    // Which backend a flow went to, by its conntrack entry.
    const backendOf = (proto: 'tcp' | 'udp', sport: number): Pod | undefined => {
      for (const [k, v] of dp.maps.conntrack.entries()) {
        const key = ct4Key.decode(k);
        if (key.dir !== 'forward' || key.proto !== proto || key.sport !== sport || key.daddr !== VIP) continue;
        const id = ctEntry.decode(v).backendId;
        const port = proto === 'tcp' ? 8080 : 5353;
        return backends.find((b) => reconciler.backendId(backendKey({ address: b.ip, port, proto })) === id);
      }
      return undefined;
    };
    const sportOf = (reply: string) => Number(/\(you are [\d.]+:(\d+)\)$/.exec(reply)?.[1]);

    // A UDP client with a fixed source port; the backend it reaches is the one to remove.
    const udp = await prober.openUdpSocket(client.netns, VIP, 53);
    cleanups.push(() => udp.close());
    const first = await udp.send('q1');
    const victim = backends.find((b) => first.includes(`from ${b.ip} `))!;
    expect(victim, first).toBeDefined();
    expect(backendOf('udp', sportOf(first))).toBe(victim);
    const survivors = backends.filter((b) => b !== victim);

    // Held TCP connections until each survivor carries two of them.
    const held: Array<{ stream: TcpStream; backend: Pod }> = [];
    const perSurvivor = () => Math.min(...survivors.map((s) => held.filter((h) => h.backend === s).length));
    for (let i = 0; i < 100 && perSurvivor() < 2; i++) {
      const stream = await prober.openTcpStream(client.netns, VIP, 80);
      cleanups.push(() => stream.close());
      const backend = backendOf('tcp', sportOf(await stream.send(`open ${i}`)));
      expect(backend).toBeDefined();
      if (backend !== victim) held.push({ stream, backend: backend! });
    }
    expect(perSurvivor()).toBeGreaterThanOrEqual(2);

    // The victim leaves the EndpointSlice; the watch picks the edit up.
    const frontend = lb4Key.encode({ address: VIP, port: 80, proto: 'tcp', slot: 0, scope: 'external' });
    const count = () => lb4Service.decode(dp.maps.services.lookup(frontend)!).count;
    writeFileSync(file, manifests(survivors));
    await until('the service to have two backends', () => count() === 2);
    const udpFrontend = lb4Key.encode({ address: VIP, port: 53, proto: 'udp', slot: 0, scope: 'external' });
    await until('the UDP service to have two backends', () => lb4Service.decode(dp.maps.services.lookup(udpFrontend)!).count === 2);

    // Open connections to the survivors: every one still answers, on the same connection.
    for (const [i, h] of held.entries()) expect(await h.stream.send(`still ${i}`)).toMatch(new RegExp(`^pong still ${i} \\(you are ${client.ip.replaceAll('.', '\\.')}:\\d+\\)$`));
    // New connections: none reaches the victim.
    for (let i = 0; i < 20; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `new ${i}`);
      expect(backendOf('tcp', sportOf(r.reply))).not.toBe(victim);
    }
    // The UDP client, same source port: answered by a survivor.
    const next = await udp.send('q2');
    expect(sportOf(next)).toBe(sportOf(first));
    expect(survivors.some((b) => next.includes(`from ${b.ip} `)), next).toBe(true);
  });
});
