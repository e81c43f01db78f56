// desiredState: the frontends and backends kube-proxy would program for a set
// of Services and their endpoints, and what is left out and why.
import { describe, expect, it } from 'vitest';

import { parseEndpoints, parseService, type EndpointInput, type ServiceInput } from '../../engine/dataplane/model.js';
import { lb4Key, lb4Service, SVC_FLAGS } from '../../engine/dataplane/layout.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { desiredState, frontendFlags, Reconciler, type DesiredState } from '../../engine/dataplane/reconcile.js';
import { addressOrder, compareOrder } from '../../engine/dataplane/desired.js';

const NODE = 'node-a';

function state(services: ServiceInput[], endpoints: Record<string, EndpointInput[]> = {}, nodeName = NODE): DesiredState {
  const parsed = services.map(parseService);
  const byService = new Map(
    Object.entries(endpoints).map(([key, list]) => {
      const [namespace = '', name = ''] = key.split('/');
      return [key, parseEndpoints({ namespace, name }, list)] as const;
    }),
  );
  return desiredState(parsed, byService, { nodeName });
}

/** frontend key → its backends, the shape most tests check. */
function backendsOf(s: DesiredState): Record<string, string[]> {
  return Object.fromEntries([...s.frontends].map(([key, f]) => [key, f.backends]));
}

const svc = (over: Partial<ServiceInput> = {}): ServiceInput => ({
  namespace: 'default',
  name: 'web',
  clusterIPs: ['10.96.0.10'],
  ports: [{ name: 'http', port: 80, targetPort: 8080 }],
  ...over,
});
const ep = (address: string, over: Partial<EndpointInput> = {}): EndpointInput => ({
  addresses: [address],
  ports: [{ name: 'http', port: 8080 }],
  nodeName: NODE,
  ...over,
});

describe('desiredState', () => {
  it('one frontend per cluster IP and port, the ready endpoints as backends in address order', () => {
    const s = state([svc()], { 'default/web': [ep('10.0.1.9'), ep('10.0.1.10'), ep('10.0.0.200')] });
    expect(backendsOf(s)).toEqual({ '10.96.0.10:80/tcp': ['10.0.0.200:8080/tcp', '10.0.1.9:8080/tcp', '10.0.1.10:8080/tcp'] });
    expect(s.frontends.get('10.96.0.10:80/tcp')).toMatchObject({
      address: '10.96.0.10',
      port: 80,
      proto: 'tcp',
      scope: 'external',
      kind: 'clusterIP',
      service: 'default/web',
      portName: 'http',
      trafficPolicy: 'Cluster',
      affinityTimeout: 0,
    });
    expect([...s.backends.values()]).toContainEqual({ address: '10.0.1.9', port: 8080, proto: 'tcp' });
    expect(s.skipped).toEqual([]);
  });

  it('matches each Service port to the endpoint port of the same name, by number otherwise', () => {
    const s = state(
      [
        svc({
          ports: [
            { name: 'http', port: 80, targetPort: 8080 },
            { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
            { name: 'metrics', port: 9100, targetPort: 9100 },
          ],
        }),
      ],
      {
        'default/web': [
          ep('10.0.0.1', {
            ports: [
              { name: 'http', port: 8081 }, // the slice says where http really is
              { name: 'dns', port: 5353, protocol: 'UDP' },
            ],
          }),
        ],
      },
    );
    expect(backendsOf(s)).toEqual({
      '10.96.0.10:80/tcp': ['10.0.0.1:8081/tcp'],
      '10.96.0.10:53/udp': ['10.0.0.1:5353/udp'],
      '10.96.0.10:9100/tcp': ['10.0.0.1:9100/tcp'],
    });
  });

  it('resolves a named targetPort per endpoint, leaving out endpoints without it', () => {
    const s = state([svc({ ports: [{ port: 80, targetPort: 'web' }] })], {
      'default/web': [
        ep('10.0.0.1', { ports: [{ name: 'web', port: 8080 }] }),
        ep('10.0.0.2', { ports: [{ name: 'web', port: 9090 }] }),
        ep('10.0.0.3', { ports: [{ name: 'web', port: 7070, protocol: 'UDP' }] }), // wrong protocol
        ep('10.0.0.4', { ports: [{ name: 'other', port: 8080 }] }),
      ],
    });
    expect(backendsOf(s)).toEqual({ '10.96.0.10:80/tcp': ['10.0.0.1:8080/tcp', '10.0.0.2:9090/tcp'] });
  });

  it('new flows: ready endpoints only, serving terminating ones when none is ready; flows already pinned keep any serving one', () => {
    const mixed = state([svc()], {
      'default/web': [
        ep('10.0.0.1'),
        ep('10.0.0.2', { ready: false, serving: true, terminating: true }),
        ep('10.0.0.3', { ready: false, serving: false }),
      ],
    });
    expect(backendsOf(mixed)).toEqual({ '10.96.0.10:80/tcp': ['10.0.0.1:8080/tcp'] });
    // The terminating pod stays a backend for the flows pinned to it; the one not serving does not.
    expect([...mixed.backends.keys()].sort()).toEqual(['10.0.0.1:8080/tcp', '10.0.0.2:8080/tcp']);

    const fallback = state([svc()], {
      'default/web': [
        ep('10.0.0.2', { ready: false, serving: true, terminating: true }),
        ep('10.0.0.3', { ready: false, serving: false, terminating: true }),
        ep('10.0.0.4', { ready: false, serving: true, terminating: false }),
      ],
    });
    expect(backendsOf(fallback)).toEqual({ '10.96.0.10:80/tcp': ['10.0.0.2:8080/tcp'] });
    expect([...fallback.backends.keys()].sort()).toEqual(['10.0.0.2:8080/tcp', '10.0.0.4:8080/tcp']);
  });

  it('keeps a frontend with no backends (count 0), so the datapath knows the VIP', () => {
    const s = state([svc()], {});
    expect(backendsOf(s)).toEqual({ '10.96.0.10:80/tcp': [] });
    expect(s.backends.size).toBe(0);
  });

  it('internalTrafficPolicy Local: only this node\'s endpoints, with the same fallback among them', () => {
    const endpoints = {
      'default/web': [
        ep('10.0.0.1', { nodeName: 'node-b' }),
        ep('10.0.0.2', { ready: false, serving: true, terminating: true }),
        ep('10.0.0.3'),
      ],
    };
    const local = state([svc({ internalTrafficPolicy: 'Local' })], endpoints);
    expect(backendsOf(local)).toEqual({ '10.96.0.10:80/tcp': ['10.0.0.3:8080/tcp'] });
    expect(local.frontends.get('10.96.0.10:80/tcp')!.trafficPolicy).toBe('Local');

    const onlyTerminating = state([svc({ internalTrafficPolicy: 'Local' })], endpoints, 'node-c');
    expect(backendsOf(onlyTerminating)).toEqual({ '10.96.0.10:80/tcp': [] });
    const terminatingHere = state(
      [svc({ internalTrafficPolicy: 'Local' })],
      { 'default/web': [ep('10.0.0.1', { nodeName: 'node-b' }), ep('10.0.0.2', { ready: false, serving: true, terminating: true })] },
    );
    expect(backendsOf(terminatingHere)).toEqual({ '10.96.0.10:80/tcp': ['10.0.0.2:8080/tcp'] });
  });

  it('externalIPs and load-balancer IPs are frontends too; NodePorts use 0.0.0.0', () => {
    const s = state(
      [
        svc({
          type: 'LoadBalancer',
          externalIPs: ['192.0.2.10'],
          loadBalancerIPs: ['198.51.100.7'],
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
          sessionAffinity: 'ClientIP',
          affinityTimeoutSeconds: 600,
        }),
      ],
      { 'default/web': [ep('10.0.0.1')] },
    );
    const summary = Object.fromEntries([...s.frontends].map(([key, f]) => [key, [f.kind, f.affinityTimeout, f.backends]]));
    expect(summary).toEqual({
      '10.96.0.10:80/tcp': ['clusterIP', 600, ['10.0.0.1:8080/tcp']],
      '192.0.2.10:80/tcp': ['externalIP', 600, ['10.0.0.1:8080/tcp']],
      '198.51.100.7:80/tcp': ['loadBalancer', 600, ['10.0.0.1:8080/tcp']],
      '0.0.0.0:30080/tcp': ['nodePort', 600, ['10.0.0.1:8080/tcp']],
    });
    expect(desiredState([parseService(svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }))], new Map(), { nodeName: NODE, nodePorts: false }).frontends.size).toBe(1);
  });

  it('with the node’s addresses, a NodePort is a frontend at each one of the Service’s family (what from_uplink matches)', () => {
    const services = [parseService(svc({ type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] }))];
    const endpoints = new Map([['default/web', parseEndpoints({ namespace: 'default', name: 'web' }, [ep('10.0.0.1')])]]);
    const s = desiredState(services, endpoints, { nodeName: NODE, nodeAddresses: ['192.0.2.1', '10.1.0.7', 'fd00::7', '192.0.2.1'] });
    expect(Object.fromEntries([...s.frontends].map(([key, f]) => [key, [f.kind, f.backends]]))).toEqual({
      '10.96.0.10:80/tcp': ['clusterIP', ['10.0.0.1:8080/tcp']],
      '192.0.2.1:30080/tcp': ['nodePort', ['10.0.0.1:8080/tcp']],
      '10.1.0.7:30080/tcp': ['nodePort', ['10.0.0.1:8080/tcp']],
    });
    // An external IP equal to a node address and port: the first claimant keeps it.
    const clash = desiredState(
      [parseService(svc({ name: 'a', externalIPs: ['192.0.2.1'], ports: [{ port: 30080 }] })), ...services],
      endpoints,
      { nodeName: NODE, nodeAddresses: ['192.0.2.1'] },
    );
    expect(clash.frontends.get('192.0.2.1:30080/tcp')?.service).toBe('default/a');
    expect(clash.skipped).toEqual([{ service: 'default/web', what: 'nodePort 192.0.2.1:30080/tcp', reason: 'already the frontend of default/a' }]);
  });

  it('slot 0 flags: external for every frontend but a ClusterIP, local on the external scope of a Local one', () => {
    const s = state([svc({ type: 'NodePort', externalIPs: ['192.0.2.10'], externalTrafficPolicy: 'Local', ports: [{ port: 80, nodePort: 30080 }] })], {
      'default/web': [ep('10.0.0.1')],
    });
    const flags = Object.fromEntries([...s.frontends].map(([key, f]) => [key, frontendFlags(f)]));
    expect(flags).toEqual({
      '10.96.0.10:80/tcp': 0,
      '192.0.2.10:80/tcp': SVC_FLAGS.external | SVC_FLAGS.local,
      '192.0.2.10:80/tcp@internal': SVC_FLAGS.external,
      '0.0.0.0:30080/tcp': SVC_FLAGS.external | SVC_FLAGS.local,
      '0.0.0.0:30080/tcp@internal': SVC_FLAGS.external,
    });
    // The Reconciler writes them into slot 0, and a policy change rewrites them.
    const maps = { services: new MemoryMap('services', lb4Key.size, lb4Service.size), backends: new MemoryMap('backends'), revNat: new MemoryMap('revNat') };
    const reconciler = new Reconciler(maps);
    reconciler.apply(s);
    const head = (address: string, port: number, scope: 'external' | 'internal' = 'external') =>
      lb4Service.decode(maps.services.lookup(lb4Key.encode({ address, port, proto: 'tcp', slot: 0, scope }))!).flags;
    expect(head('192.0.2.10', 80)).toBe(SVC_FLAGS.external | SVC_FLAGS.local);
    expect(head('192.0.2.10', 80, 'internal')).toBe(SVC_FLAGS.external);
    expect(head('10.96.0.10', 80)).toBe(0);
    const cluster = state([svc({ type: 'NodePort', externalIPs: ['192.0.2.10'], ports: [{ port: 80, nodePort: 30080 }] })], { 'default/web': [ep('10.0.0.1')] });
    expect(reconciler.apply(cluster).services).toMatchObject({ updated: 2, removed: 4 });
    expect(head('192.0.2.10', 80)).toBe(SVC_FLAGS.external);
  });

  it('externalTrafficPolicy Local: external frontends get local backends, plus an internal scope with all', () => {
    const s = state([svc({ externalIPs: ['192.0.2.10'], externalTrafficPolicy: 'Local' })], {
      'default/web': [ep('10.0.0.1', { nodeName: 'node-b' }), ep('10.0.0.2')],
    });
    expect(Object.fromEntries([...s.frontends].map(([k, f]) => [k, [f.scope, f.trafficPolicy, f.backends]]))).toEqual({
      '10.96.0.10:80/tcp': ['external', 'Cluster', ['10.0.0.1:8080/tcp', '10.0.0.2:8080/tcp']],
      '192.0.2.10:80/tcp': ['external', 'Local', ['10.0.0.2:8080/tcp']],
      '192.0.2.10:80/tcp@internal': ['internal', 'Cluster', ['10.0.0.1:8080/tcp', '10.0.0.2:8080/tcp']],
    });
  });

  it('ignores headless and ExternalName Services, saying so', () => {
    const s = state(
      [
        { namespace: 'db', name: 'pg', clusterIPs: ['None'], ports: [{ port: 5432 }] },
        { namespace: 'ext', name: 'api', type: 'ExternalName' },
      ],
      { 'db/pg': [ep('10.0.0.1')] },
    );
    expect(s.frontends.size).toBe(0);
    expect(s.backends.size).toBe(0);
    expect(s.skipped).toEqual([
      { service: 'db/pg', what: 'the Service', reason: 'headless Services are DNS only' },
      { service: 'ext/api', what: 'the Service', reason: 'ExternalName Services are DNS only' },
    ]);
  });

  it('skips SCTP ports, and frontends and endpoints of a family the Service has no cluster IP of, with reasons', () => {
    const s = state(
      [
        svc({
          clusterIPs: ['10.96.0.10'],
          externalIPs: ['2001:db8::1', '192.0.2.10'],
          ports: [
            { name: 'http', port: 80, targetPort: 8080 },
            { name: 'sig', port: 3868, protocol: 'SCTP' },
          ],
        }),
      ],
      { 'default/web': [ep('10.0.0.1'), ep('fd00::1'), ep('fd00::2')] },
    );
    expect(backendsOf(s)).toEqual({ '10.96.0.10:80/tcp': ['10.0.0.1:8080/tcp'], '192.0.2.10:80/tcp': ['10.0.0.1:8080/tcp'] });
    expect(s.skipped).toEqual([
      { service: 'default/web', what: 'endpoints fd00::1, fd00::2', reason: 'the Service has no IPv6 cluster IP (spec.ipFamilies)' },
      { service: 'default/web', what: 'externalIP 2001:db8::1', reason: 'the Service has no IPv6 cluster IP (spec.ipFamilies)' },
      { service: 'default/web', what: 'port sig/SCTP', reason: 'SCTP is not handled yet' },
    ]);
  });

  it('dual stack: each family\'s frontends get that family\'s endpoints only, NodePorts at the node addresses of both', () => {
    const s = desiredState(
      [
        parseService(
          svc({
            type: 'LoadBalancer',
            clusterIPs: ['10.96.0.10', 'fd00:96::10'],
            externalIPs: ['192.0.2.10', '2001:db8::10'],
            loadBalancerIPs: ['2001:db8:1::7'],
            ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
          }),
        ),
      ],
      new Map([['default/web', parseEndpoints({ namespace: 'default', name: 'web' }, [ep('fd00::2'), ep('10.0.0.2'), ep('fd00::1'), ep('10.0.0.1')])]]),
      { nodeName: NODE, nodeAddresses: ['192.0.2.1', '2001:DB8:0::1'] },
    );
    const v4 = ['10.0.0.1:8080/tcp', '10.0.0.2:8080/tcp'];
    const v6 = ['fd00::1:8080/tcp', 'fd00::2:8080/tcp'];
    expect(Object.fromEntries([...s.frontends].map(([key, f]) => [key, [f.kind, f.backends]]))).toEqual({
      '10.96.0.10:80/tcp': ['clusterIP', v4],
      'fd00:96::10:80/tcp': ['clusterIP', v6],
      '192.0.2.10:80/tcp': ['externalIP', v4],
      '2001:db8::10:80/tcp': ['externalIP', v6],
      '2001:db8:1::7:80/tcp': ['loadBalancer', v6],
      '192.0.2.1:30080/tcp': ['nodePort', v4],
      // The node address as canonical text: the map's key decodes to it.
      '2001:db8::1:30080/tcp': ['nodePort', v6],
    });
    expect(s.frontends.get('fd00:96::10:80/tcp')).toMatchObject({ address: 'fd00:96::10', port: 80, proto: 'tcp', scope: 'external' });
    expect([...s.backends.keys()].sort()).toEqual([...v4, ...v6].sort());
    expect(s.backends.get('fd00::1:8080/tcp')).toEqual({ address: 'fd00::1', port: 8080, proto: 'tcp' });
    expect(s.skipped).toEqual([]);
  });

  it('single-stack IPv6: IPv6 frontends only, NodePorts at the IPv6 node addresses (\'::\' without them), policies as for IPv4', () => {
    const six = svc({
      type: 'NodePort',
      clusterIPs: ['fd00:96::10'],
      externalIPs: ['2001:db8::10'],
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
    });
    const endpoints = { 'default/web': [ep('fd00::1', { nodeName: 'node-b' }), ep('fd00::2')] };
    const summary = (s: DesiredState) => Object.fromEntries([...s.frontends].map(([key, f]) => [key, [f.scope, f.trafficPolicy, f.backends]]));
    const all = ['fd00::1:8080/tcp', 'fd00::2:8080/tcp'];
    const local = ['fd00::2:8080/tcp'];
    expect(summary(state([six], endpoints))).toEqual({
      'fd00:96::10:80/tcp': ['external', 'Cluster', all],
      '2001:db8::10:80/tcp': ['external', 'Local', local],
      '2001:db8::10:80/tcp@internal': ['internal', 'Cluster', all],
      ':::30080/tcp': ['external', 'Local', local],
      ':::30080/tcp@internal': ['internal', 'Cluster', all],
    });
    const served = desiredState([parseService(six)], new Map([['default/web', parseEndpoints({ namespace: 'default', name: 'web' }, endpoints['default/web'])]]), {
      nodeName: NODE,
      nodeAddresses: ['192.0.2.1', '2001:db8::1', 'fe80::1'],
    });
    expect([...served.frontends.keys()].filter((k) => k.includes(':30080'))).toEqual([
      '2001:db8::1:30080/tcp',
      '2001:db8::1:30080/tcp@internal',
      'fe80::1:30080/tcp',
      'fe80::1:30080/tcp@internal',
    ]);
  });

  it('IPv6 backends in canonical order: by address as a number, not as text', () => {
    const s = state([svc({ clusterIPs: ['fd00:96::10'] })], {
      'default/web': [ep('fd00::10'), ep('fd00::1:0'), ep('fd00::9'), ep('2001:db8::1'), ep('fd00::9', { ports: [{ name: 'http', port: 7070 }] })],
    });
    expect(s.frontends.get('fd00:96::10:80/tcp')!.backends).toEqual(['2001:db8::1:8080/tcp', 'fd00::9:7070/tcp', 'fd00::9:8080/tcp', 'fd00::10:8080/tcp', 'fd00::1:0:8080/tcp']);
  });

  it('addressOrder sorts as the addresses do: IPv4 numerically, IPv6 as 32 hex digits after every IPv4', () => {
    expect(addressOrder('10.0.0.1')).toBe(0x0a000001);
    expect(addressOrder('fd00::1')).toBe('fd000000000000000000000000000001');
    expect(addressOrder('::')).toBe('0'.repeat(32));
    expect(addressOrder('1::')).toBe(`0001${'0'.repeat(28)}`);
    expect(addressOrder('2001:db8:0:1:2:3:4:5')).toBe('20010db8000000010002000300040005');
    expect(addressOrder('::ffff:10.0.0.1')).toBe('00000000000000000000ffff0a000001');
    const sorted = ['fd00::1:0', '10.0.0.10', 'fd00::9', '::1', '10.0.0.9', 'fd00::10'].sort((a, b) => compareOrder(addressOrder(a), addressOrder(b)));
    expect(sorted).toEqual(['10.0.0.9', '10.0.0.10', '::1', 'fd00::9', 'fd00::10', 'fd00::1:0']);
  });

  it('of one address:port listed twice, the first listing counts', () => {
    const gone = { ready: false, serving: false };
    // 10.0.0.1 not serving first, then ready (another slice's stale copy): it is not a backend.
    const first = state([svc()], { 'default/web': [ep('10.0.0.3'), ep('10.0.0.1', gone), ep('10.0.0.2'), ep('10.0.0.1')] });
    expect(first.frontends.get('10.96.0.10:80/tcp')!.backends).toEqual(['10.0.0.2:8080/tcp', '10.0.0.3:8080/tcp']);
    expect([...first.backends.keys()].sort()).toEqual(['10.0.0.2:8080/tcp', '10.0.0.3:8080/tcp']);
    // The other way round: it is.
    const second = state([svc()], { 'default/web': [ep('10.0.0.3'), ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.1', gone)] });
    expect(second.frontends.get('10.96.0.10:80/tcp')!.backends).toEqual(['10.0.0.1:8080/tcp', '10.0.0.2:8080/tcp', '10.0.0.3:8080/tcp']);
  });

  it('one backend per address:port even when two slices list it; one owner per frontend', () => {
    const s = state(
      [svc({ name: 'b-second', externalIPs: ['192.0.2.10'] }), svc({ name: 'a-first', clusterIPs: ['10.96.0.11'], externalIPs: ['192.0.2.10'] })],
      { 'default/b-second': [ep('10.0.0.1'), ep('10.0.0.1')], 'default/a-first': [ep('10.0.0.1')] },
    );
    expect(s.frontends.get('192.0.2.10:80/tcp')!.service).toBe('default/a-first');
    expect(s.frontends.get('10.96.0.10:80/tcp')!.backends).toEqual(['10.0.0.1:8080/tcp']);
    expect(s.backends.size).toBe(1);
    expect(s.skipped).toEqual([
      { service: 'default/b-second', what: 'externalIP 192.0.2.10:80/tcp', reason: 'already the frontend of default/a-first port http' },
    ]);
  });
});
