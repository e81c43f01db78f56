// Kubernetes manifests to ferry's model (k8s.ts) and reading them from disk.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterStateFromObjects, serviceFromManifest } from '../../engine/dataplane/k8s.js';
import { readManifests } from '../../engine/dataplane/manifest-files.js';

const svc = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop' },
  spec: {
    type: 'LoadBalancer',
    clusterIP: '10.96.0.10',
    clusterIPs: ['10.96.0.10'],
    externalIPs: ['192.0.2.7'],
    ports: [{ name: 'http', port: 80, targetPort: 'web', nodePort: 30080 }],
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 32000,
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
  },
  status: { loadBalancer: { ingress: [{ ip: '198.51.100.1' }, { hostname: 'lb.example' }] } },
};

const slice = (endpoints: unknown[], extra: Record<string, unknown> = {}) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-x', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints,
  ...extra,
});

describe('Kubernetes manifests', () => {
  it('a Service spec becomes the model Service', () => {
    expect(serviceFromManifest(svc)).toEqual({
      namespace: 'shop',
      name: 'web',
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.10'],
      externalIPs: ['192.0.2.7'],
      loadBalancerIPs: ['198.51.100.1'],
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'web', nodePort: 30080 }],
      sessionAffinity: 'ClientIP',
      affinityTimeoutSeconds: 60,
      externalTrafficPolicy: 'Local',
      internalTrafficPolicy: 'Cluster',
      healthCheckNodePort: 32000,
      headless: false,
    });
  });

  it('EndpointSlices are grouped by their Service, conditions defaulted', () => {
    const state = clusterStateFromObjects([
      { source: 'a', object: svc },
      { source: 'b', object: slice([{ addresses: ['10.244.0.5'], conditions: { ready: false, serving: true, terminating: true }, nodeName: 'n1', zone: 'z' }]) },
      { source: 'c', object: slice([{ addresses: ['10.244.0.6'] }]) },
      { source: 'd', object: slice([{ addresses: ['FD00:0::1'] }], { addressType: 'IPv6', metadata: { name: 'web-y', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } } }) },
      { source: 'e', object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } } },
      { source: 'f', object: slice([{ addresses: ['web.example'] }], { addressType: 'FQDN' }) },
    ]);
    expect(state.services).toHaveLength(1);
    expect(state.endpoints.get('shop/web')).toEqual([
      { addresses: ['10.244.0.5'], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], ready: false, serving: true, terminating: true, nodeName: 'n1', zone: 'z' },
      { addresses: ['10.244.0.6'], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], ready: true, serving: true, terminating: false },
      // An IPv6 slice's endpoints join the IPv4 ones' (a dual-stack Service has one slice of each), canonical.
      { addresses: ['fd00::1'], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], ready: true, serving: true, terminating: false },
    ]);
    // FQDN slices are left out, as kube-proxy leaves them: a warning, not an error.
    expect(state.problems).toEqual([
      { kind: 'EndpointSlice', object: 'shop/web-x', source: 'f', severity: 'warning', message: 'addressType FQDN: its endpoints are names, which Services are not balanced to' },
    ]);
  });

  it('an address of the other family than the slice\'s addressType is an error naming it', () => {
    const state = clusterStateFromObjects([
      { source: 'a', object: slice([{ addresses: ['10.244.0.5'] }, { addresses: ['10.244.0.6', 'fd00::6'] }]) },
      { source: 'b', object: slice([{ addresses: ['10.244.0.7'] }], { addressType: 'IPv6' }) },
    ]);
    expect(state.endpoints.size).toBe(0);
    expect(state.problems.map((p) => [p.source, p.severity, p.message])).toEqual([
      ['a', 'error', 'endpoints[1].addresses[1]: "fd00::6" is not an IPv4 address, as the slice\'s addressType says'],
      ['b', 'error', 'endpoints[0].addresses[0]: "10.244.0.7" is not an IPv6 address, as the slice\'s addressType says'],
    ]);
  });

  it('a bad object is left out, named with the manifest field; the others stay', () => {
    const bad = (spec: Record<string, unknown>) => ({ ...svc, metadata: { name: 'bad', namespace: 'shop' }, spec: { ...svc.spec, clusterIPs: undefined, clusterIP: '10.96.0.11', ...spec } });
    const state = clusterStateFromObjects([
      { source: 'f#0', object: svc },
      { source: 'f#1', object: bad({ ports: [{ port: 80, protocol: 'ICMP' }] }) },
      { source: 'f#2', object: bad({ clusterIP: '10.96.0.300' }) },
      { source: 'f#3', object: slice([{ addresses: ['10.244.0.999'] }]) },
      { source: 'f#4', object: bad({ healthCheckNodePort: 0 }) },
    ]);
    expect(state.services.map((s) => s.name)).toEqual(['web']);
    expect(state.problems.map((p) => `${p.kind} ${p.object}: ${p.message}`)).toEqual([
      expect.stringMatching(/^Service shop\/bad: spec\.ports\[0\]\.protocol: /),
      expect.stringMatching(/^Service shop\/bad: spec\.clusterIPs\[0\]: .*10\.96\.0\.300/),
      expect.stringMatching(/^EndpointSlice shop\/web-x: endpoints\[0\]\.addresses\[0\]: /),
      expect.stringMatching(/^Service shop\/bad: spec\.healthCheckNodePort: /),
    ]);
  });

  it('reads multi-document YAML, JSON and folders; a file that does not parse is reported', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-manifests-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}\n');
      writeFileSync(join(dir, 'c.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ ...svc, metadata: { name: 'c' } }] }));
      writeFileSync(join(dir, 'd.yaml'), 'kind: [unclosed\n');
      writeFileSync(join(dir, '.swp.yaml'), 'ignored: true\n');
      writeFileSync(join(dir, 'notes.txt'), 'ignored\n');
      const read = readManifests(dir);
      expect(read.errors.map((e) => e.source)).toEqual(['d.yaml']);
      const state = clusterStateFromObjects(read.objects);
      expect(state.problems).toEqual([]);
      expect(state.services.map((s) => `${s.namespace}/${s.name}`)).toEqual(['default/a', 'default/b', 'default/c']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
