// End to end through the API server source: `ferry daemon --kubeconfig`
// (the production path: the CLI, @kubernetes/client-node's informers) in a
// node namespace, against the fake API server on that namespace's
// 127.0.0.1. A ClusterIP whose backends are pods reached through ferry's
// CNI carries traffic, an EndpointSlice change moves it, a health check
// node port counts local endpoints, /healthz follows the Node's deletion,
// /metrics is scraped and parsed, and an invalid Service is refused by name.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Prober } from '../../engine/probe/probe.js';
import { isRoot, run } from '../support/netns.js';
import { NetnsApiServer } from './netns-apiserver.js';
import { parsePrometheus, sample } from './prometheus.js';
import { DaemonProcess, httpGetIn, isSync, nodeFixture, pollUntil } from './support.js';

const VIP = '10.96.0.10';
const HEALTHZ = '127.0.0.1:10256';
const METRICS = '127.0.0.1:10249';
const HEALTH_CHECK_PORT = 32100;

const cleanups: Array<() => unknown> = [];
const defer = (c: () => unknown) => void cleanups.push(c);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const service = (name: string, spec: Record<string, unknown>) => ({ metadata: { name, namespace: 'shop' }, spec: { type: 'ClusterIP', ...spec } });
const slice = (serviceName: string, endpoints: Array<{ ip: string; node: string; ready?: boolean }>) => ({
  metadata: { name: `${serviceName}-x`, namespace: 'shop', labels: { 'kubernetes.io/service-name': serviceName } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: endpoints.map((e) => ({ addresses: [e.ip], nodeName: e.node, conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: !(e.ready ?? true) } })),
});
const node = (extra: Record<string, unknown> = {}) => ({ metadata: { name: 'node-a', ...extra }, status: { addresses: [{ type: 'InternalIP', address: '192.168.77.2' }] } });

describe.skipIf(!isRoot)('ferry daemon --kubeconfig (needs root)', () => {
  it('serves a ClusterIP from the API server, follows an EndpointSlice change, health checks, healthz and metrics', { timeout: 120_000 }, async () => {
    const f = nodeFixture('fa', defer);
    const api = await NetnsApiServer.start(f.netns);
    defer(() => api.close());
    const kubeconfig = join(f.dir, 'kubeconfig');
    api.writeKubeconfig(kubeconfig);
    api.apply('nodes', node());
    const config = join(f.dir, 'daemon.yaml');
    writeFileSync(config, `kubeconfig: ${kubeconfig}\nnodeName: node-a\nhealthzBindAddress: "${HEALTHZ}"\nmetricsBindAddress: "${METRICS}"\n`);
    const daemon = new DaemonProcess(f.ns, ['--config', config, '--cni-socket', join(f.dir, 'cni.sock'), '--pin-root', f.pinRoot]);
    defer(() => daemon.kill());
    expect(await daemon.waitFor(isSync, 30_000)).toMatchObject({ services: 0 });

    const client = await f.addPod('client');
    const be1 = await f.addPod('be1');
    const be2 = await f.addPod('be2');
    const prober = new Prober();
    defer(() => prober.close());
    for (const b of [be1, be2]) await prober.serveTcp(b.netns, b.ip, 8080, { echo: true });

    // A ClusterIP with be1, an invalid Service beside it (refused by name), and a
    // LoadBalancer Service with policy Local and a health check node port.
    const ports = [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }];
    api.apply('services', service('web', { clusterIP: VIP, ports }));
    api.apply('endpointslices', slice('web', [{ ip: be1.ip, node: 'node-a' }]));
    api.apply('services', service('broken', { clusterIP: '10.96.0.11', ports: [{ port: 80, protocol: 'ICMP' }] }));
    api.apply('services', service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.30', externalTrafficPolicy: 'Local', healthCheckNodePort: HEALTH_CHECK_PORT, ports: [{ ...ports[0], nodePort: 30080 }] }));
    api.apply('endpointslices', slice('lb', [{ ip: be2.ip, node: 'node-a' }, { ip: '10.244.9.9', node: 'node-b' }]));
    const refused = await daemon.waitFor((l) => l.level === 50 && l.object === 'shop/broken', 20_000);
    expect(refused.msg).toMatch(/^Service shop\/broken \(api\) left out: spec\.ports\[0\]\.protocol: /);
    await daemon.waitFor((l) => isSync(l) && l.services === 2 && l.backends === 3, 20_000);
    for (let i = 0; i < 5; i++) expect((await prober.tcpExchange(client.netns, VIP, 80, `to be1 ${i}`)).reply).toContain(`pong to be1 ${i}`);

    // The slice moves web to be2; be1 is cut off to prove the traffic follows.
    const moved = daemon.lines.length;
    api.apply('endpointslices', slice('web', [{ ip: be2.ip, node: 'node-a' }]));
    const sync = await daemon.waitFor((l) => isSync(l) && l.backends === 2, 20_000, moved);
    expect(sync.writes).toMatchObject({ backends: { removed: 1 } });
    run('ip', ['-n', be1.ns, 'link', 'set', 'eth0', 'down']);
    for (let i = 0; i < 5; i++) expect((await prober.tcpExchange(client.netns, VIP, 80, `to be2 ${i}`, 5000)).reply).toContain(`pong to be2 ${i}`);

    // The health check node port counts lb's ready endpoints on node-a.
    const check = () => httpGetIn(f.ns, `http://127.0.0.1:${HEALTH_CHECK_PORT}/`);
    expect(await pollUntil('the health check server', check, (a) => a.status === 200)).toMatchObject({
      json: { service: { namespace: 'shop', name: 'lb' }, localEndpoints: 1, serviceProxyHealthy: true },
    });
    // Every address of both families, as kube-proxy's ":port".
    expect(await httpGetIn(f.ns, `http://[::1]:${HEALTH_CHECK_PORT}/`)).toMatchObject({ status: 200, json: { localEndpoints: 1 } });
    api.apply('endpointslices', slice('lb', [{ ip: be2.ip, node: 'node-a', ready: false }, { ip: '10.244.9.9', node: 'node-b' }]));
    expect(await pollUntil('503: no ready local endpoint', check, (a) => a.status === 503)).toMatchObject({ json: { localEndpoints: 0 } });
    api.remove('services', 'shop', 'lb');
    await pollUntil('the health check port closed', () => check().then(() => false, () => true), (closed) => closed);

    // /metrics, parsed.
    const s = parsePrometheus((await httpGetIn(f.ns, `http://${METRICS}/metrics`)).body);
    expect(sample(s, 'ferry_services_programmed')).toBe(1);
    expect(sample(s, 'ferry_endpoints_programmed')).toBe(1);
    expect(sample(s, 'ferry_sync_refused_objects')).toBe(1);
    expect(sample(s, 'ferry_sync_errors_total')).toBe(0);
    expect(sample(s, 'ferry_sync_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(sample(s, 'ferry_sync_map_writes_total{map="backends",op="removed"}')).toBeGreaterThanOrEqual(2);
    expect(sample(s, 'ferry_lb_packets_total{outcome="translated"}')).toBeGreaterThanOrEqual(10);

    // /healthz: healthy; then this node's Node is being deleted: /healthz fails, /livez does not.
    expect(await httpGetIn(f.ns, `http://${HEALTHZ}/healthz`)).toMatchObject({ status: 200, json: { nodeEligible: true } });
    api.apply('nodes', node({ deletionTimestamp: new Date().toISOString() }));
    expect(await pollUntil('/healthz 503', () => httpGetIn(f.ns, `http://${HEALTHZ}/healthz`), (a) => a.status === 503)).toMatchObject({ json: { nodeEligible: false } });
    expect((await httpGetIn(f.ns, `http://${HEALTHZ}/livez`)).status).toBe(200);
    expect(daemon.alive).toBe(true);
  });
});
