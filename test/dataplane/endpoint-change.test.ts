// End to end: a Service with TCP and UDP ports and three backend pods,
// programmed from manifests by the daemon's own sync (ServiceSync over the
// file source). One backend is then taken out of the EndpointSlice:
//  - new TCP connections avoid it, while connections already open to the
//    other two keep working, byte for byte;
//  - a UDP client that keeps its source port (a resolver does) and was
//    talking to the removed backend gets its next answer from a live one:
//    its conntrack entry went with the backend, so the stale-UDP-entry
//    blackhole of kube-proxy's history cannot happen.
// A backend that turns terminating (still serving) instead keeps the
// connections it has, as under kube-proxy, while new ones avoid it.
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

function manifests(backends: Pod[], terminating: Pod[] = []): string {
  const endpoint = (b: Pod) => {
    const conditions = terminating.includes(b) ? '{ ready: false, serving: true, terminating: true }' : '{ ready: true }';
    return `  - { addresses: [${b.ip}], conditions: ${conditions}, nodeName: node-a }`;
  };
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
${[...backends, ...terminating].map(endpoint).join('\n')}
`;
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Service default/web (TCP 80 → 8080, UDP 53 → 5353) over three backend pods, synced from a watched file. */
async function webService() {
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
  const sync = new ServiceSync({ path: file, nodeName: 'node-a', reconciler, maps: dp.maps, log: pino({ level: 'silent' }), minSyncPeriodMs: 20 });
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

  return { dp, client, backends, prober, file, backendOf, sportOf };
}

/** Opens held connections to VIP:80 until each of `wanted` carries two; the others' are closed. */
async function holdConnections(ctx: Awaited<ReturnType<typeof webService>>, wanted: Pod[]) {
  const held: Array<{ stream: TcpStream; backend: Pod }> = [];
  const fewest = () => Math.min(...wanted.map((w) => held.filter((h) => h.backend === w).length));
  for (let i = 0; i < 100 && fewest() < 2; i++) {
    const stream = await ctx.prober.openTcpStream(ctx.client.netns, VIP, 80);
    cleanups.push(() => stream.close());
    const backend = ctx.backendOf('tcp', ctx.sportOf(await stream.send(`open ${i}`)));
    expect(backend).toBeDefined();
    if (wanted.includes(backend!)) held.push({ stream, backend: backend! });
    else await stream.close();
  }
  expect(fewest()).toBeGreaterThanOrEqual(2);
  return held;
}

/** Each held connection still answers, on the same connection. */
async function expectAnswering(ctx: Awaited<ReturnType<typeof webService>>, held: Array<{ stream: TcpStream }>) {
  const me = ctx.client.ip.replaceAll('.', '\\.');
  for (const [i, h] of held.entries()) expect(await h.stream.send(`still ${i}`)).toMatch(new RegExp(`^pong still ${i} \\(you are ${me}:\\d+\\)$`));
}

/** The service's backend count (slot 0) for `port`. */
function backendCount(ctx: Awaited<ReturnType<typeof webService>>, port: number, proto: 'tcp' | 'udp'): number {
  return lb4Service.decode(ctx.dp.maps.services.lookup(lb4Key.encode({ address: VIP, port, proto, slot: 0, scope: 'external' }))!).count;
}

describe.skipIf(!isRoot)('a backend leaving under traffic (needs root)', () => {
  it('removed: new flows avoid it, open TCP connections to the others are untouched, a UDP client moves on', { timeout: 60_000 }, async () => {
    const ctx = await webService();
    const { client, backends, prober, file, backendOf, sportOf } = ctx;
    // A UDP client with a fixed source port; the backend it reaches is the one to remove.
    const udp = await prober.openUdpSocket(client.netns, VIP, 53);
    cleanups.push(() => udp.close());
    const first = await udp.send('q1');
    const victim = backends.find((b) => first.includes(`from ${b.ip} `))!;
    expect(victim, first).toBeDefined();
    expect(backendOf('udp', sportOf(first))).toBe(victim);
    const survivors = backends.filter((b) => b !== victim);
    const held = await holdConnections(ctx, survivors);

    // The victim leaves the EndpointSlice; the watch picks the edit up.
    writeFileSync(file, manifests(survivors));
    await until('both services to have two backends', () => backendCount(ctx, 80, 'tcp') === 2 && backendCount(ctx, 53, 'udp') === 2);

    await expectAnswering(ctx, held);
    for (let i = 0; i < 20; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `new ${i}`);
      expect(backendOf('tcp', sportOf(r.reply))).not.toBe(victim);
    }
    // The UDP client, same source port: answered by a survivor.
    const next = await udp.send('q2');
    expect(sportOf(next)).toBe(sportOf(first));
    expect(survivors.some((b) => next.includes(`from ${b.ip} `)), next).toBe(true);
  });

  it('terminating: its open connections go on while new flows avoid it', { timeout: 60_000 }, async () => {
    const ctx = await webService();
    const { client, backends, prober, file, backendOf, sportOf } = ctx;
    const [leaving, ...staying] = backends as [Pod, ...Pod[]];
    const held = await holdConnections(ctx, backends);

    writeFileSync(file, manifests(staying, [leaving]));
    await until('the service to have two backends', () => backendCount(ctx, 80, 'tcp') === 2);

    await expectAnswering(ctx, held); // the terminating pod's two included
    for (let i = 0; i < 20; i++) {
      const r = await prober.tcpExchange(client.netns, VIP, 80, `new ${i}`);
      expect(backendOf('tcp', sportOf(r.reply))).not.toBe(leaving);
    }
  });
});
