// kube-proxy's health semantics in the daemon, on 127.0.0.1 with ports the
// kernel picks: /healthz and /livez against a clock the test moves, the
// health check node port servers and what they count, and the /metrics
// exposition. The end-to-end tests (daemon*.test.ts) run them in the real
// daemon. No root needed.
import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Endpoint, Service } from '../../engine/dataplane/model.js';
import { healthCheckPlan, type HealthCheckTarget } from '../../plugin/daemon/health-checks.js';
import { healthzHandler, ProxyHealth } from '../../plugin/daemon/healthz.js';
import { listenHttp, type HttpListener } from '../../plugin/daemon/http.js';
import { DaemonMetrics } from '../../plugin/daemon/metrics.js';
import { ServiceHealthServers } from '../../plugin/daemon/service-health.js';
import type { SyncReport } from '../../plugin/daemon/services.js';
import { parsePrometheus, sample } from './prometheus.js';

const log = pino({ level: 'silent' });
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(handler: Parameters<typeof listenHttp>[3]): Promise<HttpListener> {
  const l = await listenHttp('test server', '127.0.0.1', 0, handler);
  cleanups.push(() => l.close());
  return l;
}

async function get(port: number, path = '/'): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text, headers: res.headers };
}

/**
 * `count` ports nothing listens on now (the kernel's picks, released). All are
 * held open before any is closed, so they are distinct: a port released and
 * asked for again may come back.
 */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer().listen(0, '127.0.0.1'));
  await Promise.all(servers.map((s) => new Promise((r) => s.once('listening', r))));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

describe('/healthz and /livez (kube-proxy semantics)', () => {
  it('200 until a queued change has waited the timeout for a sync, then 503 until one succeeds', async () => {
    let now = Date.parse('2025-01-01T00:00:00Z');
    const health = new ProxyHealth({ timeoutMs: 60_000, now: () => now });
    let eligible = true;
    const { port } = await serve(healthzHandler(health, () => eligible));
    const iso = (ms: number) => new Date(ms).toISOString();

    // Starting up: nothing queued, healthy; lastUpdated is "now" while healthy, as kube-proxy answers.
    expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: { lastUpdated: iso(now), currentTime: iso(now), nodeEligible: true } });
    health.updated();
    const synced = now;
    now += 1000;
    health.queued();
    now += 59_999;
    expect((await get(port, '/healthz')).status).toBe(200);
    health.queued(); // a later change does not move the oldest one
    now += 1;
    const stale = await get(port, '/healthz');
    expect(stale).toMatchObject({ status: 503, body: { lastUpdated: iso(synced), currentTime: iso(now), nodeEligible: true } });
    expect(stale.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await get(port, '/livez')).toMatchObject({ status: 503, body: { lastUpdated: iso(synced), currentTime: iso(now) } });
    health.updated();
    expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: { lastUpdated: iso(now) } });

    // A node being deleted fails /healthz (load balancers drain it) but not /livez (no restart).
    eligible = false;
    expect(await get(port, '/healthz')).toMatchObject({ status: 503, body: { nodeEligible: false } });
    expect((await get(port, '/livez')).status).toBe(200);
    expect((await get(port, '/metrics')).status).toBe(404);
  });

  it('reports Go\'s zero time when stale without ever having synced', () => {
    let now = 0;
    const health = new ProxyHealth({ timeoutMs: 10, now: () => now });
    health.queued();
    now = 10;
    expect(health.status()).toEqual({ healthy: false, lastUpdated: new Date('0001-01-01T00:00:00Z'), currentTime: new Date(10) });
  });
});

const lbService = (name: string, extra: Partial<Service> = {}): Service => ({
  namespace: 'shop',
  name,
  type: 'LoadBalancer',
  clusterIPs: ['10.96.0.10'],
  externalIPs: [],
  loadBalancerIPs: [],
  ports: [{ protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }],
  sessionAffinity: 'None',
  affinityTimeoutSeconds: 10_800,
  externalTrafficPolicy: 'Local',
  internalTrafficPolicy: 'Cluster',
  headless: false,
  healthCheckNodePort: 32000,
  ...extra,
});
const endpoint = (address: string, nodeName: string, ready = true, port = 8080): Endpoint => ({
  addresses: [address],
  ports: [{ port, protocol: 'TCP' }],
  ready,
  serving: ready,
  terminating: !ready,
  nodeName,
});

describe('health check node ports', () => {
  it('are planned for LoadBalancer Services with policy Local, counting this node\'s ready endpoints once each', () => {
    const plan = healthCheckPlan(
      {
        services: [
          lbService('web'),
          lbService('nolocal', { healthCheckNodePort: 32001 }),
          lbService('cluster', { externalTrafficPolicy: 'Cluster', healthCheckNodePort: 32002 }),
          lbService('nodeport', { type: 'NodePort', healthCheckNodePort: 32003 }),
          lbService('noport', { healthCheckNodePort: undefined }),
        ],
        endpoints: new Map([
          // 10.244.0.5 twice (two ports) counts once; a terminating one and another node's do not count.
          ['shop/web', [endpoint('10.244.0.5', 'node-a'), endpoint('10.244.0.5', 'node-a', true, 8443), endpoint('10.244.0.6', 'node-a'), endpoint('10.244.0.7', 'node-a', false), endpoint('10.244.1.5', 'node-b')]],
          ['shop/nolocal', [endpoint('10.244.1.6', 'node-b')]],
        ]),
      },
      'node-a',
    );
    expect([...plan.targets.values()]).toEqual([
      { namespace: 'shop', name: 'web', port: 32000, localEndpoints: 2 },
      { namespace: 'shop', name: 'nolocal', port: 32001, localEndpoints: 0 },
    ]);
    expect(plan.missingPort).toEqual(['shop/noport']);
  });

  it('answer like kube-proxy\'s, follow the counts and the proxy\'s health, and open and close with their Services', async () => {
    let proxyHealthy = true;
    const servers = new ServiceHealthServers({ hosts: () => ['127.0.0.1'], proxyHealthy: () => proxyHealthy, log });
    cleanups.push(() => servers.close());
    const [p1, p2, p3] = (await freePorts(3)) as [number, number, number];
    const target = (name: string, port: number, localEndpoints: number): [string, HealthCheckTarget] => [`shop/${name}`, { namespace: 'shop', name, port, localEndpoints }];

    await servers.update(new Map([target('web', p1, 2), target('db', p2, 0)]));
    const web = await get(p1);
    expect(web).toMatchObject({ status: 200, body: { service: { namespace: 'shop', name: 'web' }, localEndpoints: 2, serviceProxyHealthy: true } });
    expect(web.headers.get('x-load-balancing-endpoint-weight')).toBe('2');
    expect(await get(p2)).toMatchObject({ status: 503, body: { service: { namespace: 'shop', name: 'db' }, localEndpoints: 0 } });
    proxyHealthy = false;
    expect(await get(p1)).toMatchObject({ status: 503, body: { localEndpoints: 2, serviceProxyHealthy: false } });
    proxyHealthy = true;

    // web's last local endpoint goes, db moves to another port, api appears.
    await servers.update(new Map([target('web', p1, 0), target('db', p3, 1), target('api', p2, 1)]));
    expect(await get(p1)).toMatchObject({ status: 503, body: { localEndpoints: 0 } });
    expect(await get(p3)).toMatchObject({ status: 200, body: { service: { name: 'db' }, localEndpoints: 1 } });
    expect(await get(p2)).toMatchObject({ status: 200, body: { service: { name: 'api' } } });

    await servers.update(new Map([target('api', p2, 1)]));
    await expect(get(p1)).rejects.toThrow();
    expect(servers.served.map((s) => s.name)).toEqual(['api']);
  });

  it('a port in use is logged naming the Service, the others still open, and it is tried again at the next sync', async () => {
    const lines: Array<{ level: number; msg: string; service?: string }> = [];
    const servers = new ServiceHealthServers({ hosts: () => ['127.0.0.1'], proxyHealthy: () => true, log: pino({}, { write: (l: string) => lines.push(JSON.parse(l)) }) });
    cleanups.push(() => servers.close());
    const taken = await serve(() => undefined);
    const [free] = (await freePorts(1)) as [number];
    const targets = new Map<string, HealthCheckTarget>([
      ['shop/a', { namespace: 'shop', name: 'a', port: taken.port, localEndpoints: 1 }],
      ['shop/b', { namespace: 'shop', name: 'b', port: free, localEndpoints: 1 }],
    ]);
    await servers.update(targets);
    expect(lines.find((l) => l.level === 50)).toMatchObject({ service: 'shop/a', msg: expect.stringMatching(/health check of Service shop\/a on 127\.0\.0\.1:\d+: .*EADDRINUSE/) });
    expect((await get(free)).status).toBe(200);
    await taken.close();
    await servers.update(targets);
    expect((await get(taken.port)).body).toMatchObject({ service: { name: 'a' } });
  });
});

describe('/metrics', () => {
  it('exposes the syncs, what they programmed, and the datapath read at each scrape', async () => {
    let translated = 5n;
    const metrics = new DaemonMetrics(async () => ({
      counters: { translated, ct_created: 2n } as never,
      conntrack: { entries: 4, maxEntries: 65536 },
      maps: [
        { map: 'services', entries: 3, maxEntries: 65536 },
        { map: 'conntrack', entries: 4, maxEntries: 65536 },
      ],
      gc: { totals: { runs: 7, errors: 0, expired: 1, orphaned: 0, withdrawn: 2 } },
    }));
    const report = (ms: number, writes: number): SyncReport => ({
      services: 2,
      frontends: 3,
      backends: 4,
      problems: 1,
      writes: { services: { added: writes, updated: 0, removed: 0, unchanged: 0 }, backends: { added: 0, updated: 0, removed: 1, unchanged: 3 }, revNat: { added: 0, updated: 0, removed: 0, unchanged: 0 } },
      conntrackForgotten: 0,
      ms,
    });
    metrics.observeSync(report(3, 3), 1_700_000_000_000);
    metrics.observeSync(report(40, 1), 1_700_000_001_000);
    metrics.syncFailed();
    const { port } = await serve(metrics.handler());
    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      return parsePrometheus(await res.text());
    };
    let s = await scrape();
    expect(sample(s, 'ferry_sync_duration_seconds_count')).toBe(2);
    expect(sample(s, 'ferry_sync_duration_seconds_bucket{le="0.004"}')).toBe(1);
    expect(sample(s, 'ferry_sync_duration_seconds_bucket{le="0.064"}')).toBe(2);
    expect(sample(s, 'ferry_sync_last_timestamp_seconds')).toBe(1_700_000_001);
    expect(sample(s, 'ferry_sync_errors_total')).toBe(1);
    expect(sample(s, 'ferry_sync_refused_objects')).toBe(1);
    expect(sample(s, 'ferry_services_programmed')).toBe(2);
    expect(sample(s, 'ferry_frontends_programmed')).toBe(3);
    expect(sample(s, 'ferry_endpoints_programmed')).toBe(4);
    expect(sample(s, 'ferry_sync_map_writes_total{map="services",op="added"}')).toBe(4);
    expect(sample(s, 'ferry_sync_map_writes_total{map="backends",op="removed"}')).toBe(2);
    expect(sample(s, 'ferry_lb_packets_total{outcome="translated"}')).toBe(5);
    expect(sample(s, 'ferry_lb_events_total{event="ct_created"}')).toBe(2);
    expect(sample(s, 'ferry_ct_entries')).toBe(4);
    expect(sample(s, 'ferry_bpf_map_entries{map="services"}')).toBe(3);
    expect(sample(s, 'ferry_bpf_map_max_entries{map="conntrack"}')).toBe(65536);
    expect(sample(s, 'ferry_ct_gc_deleted_total{reason="withdrawn"}')).toBe(2);
    expect(sample(s, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    // The datapath's counters are read again at each scrape.
    translated = 9n;
    s = await scrape();
    expect(sample(s, 'ferry_lb_packets_total{outcome="translated"}')).toBe(9);
  });
});
