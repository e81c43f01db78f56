// The daemon's incremental path: ClusterStates and DesiredStates give what
// clusterStateFromObjects() and desiredState() give, keep the objects of
// what did not change, and the Reconciler then writes only what did.
import { describe, expect, it } from 'vitest';

import { ClusterStates } from '../../engine/dataplane/cluster-states.js';
import { DesiredStates, desiredState } from '../../engine/dataplane/desired.js';
import { clusterStateFromObjects, type SourcedObject } from '../../engine/dataplane/k8s.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';

const service = (name: string, ip: string, rv: string): SourcedObject => ({
  source: 'api',
  object: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', resourceVersion: rv }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
});
const slice = (name: string, suffix: string, addresses: string[], rv: string): SourcedObject => ({
  source: 'api',
  object: {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-${suffix}`, namespace: 'shop', resourceVersion: rv, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  },
});

const cluster = (webAddresses: string[], webRv: string): SourcedObject[] => [
  service('web', '10.96.0.10', '1'),
  service('db', '10.96.0.20', '2'),
  service('web2', '10.96.0.10', '3'), // claims web's frontend, after web: skipped
  slice('web', 'a', webAddresses, webRv),
  slice('db', 'a', ['10.244.1.1'], '5'),
  slice('db', 'b', ['10.244.1.2'], '6'),
];

describe('ClusterStates and DesiredStates', () => {
  it('equal the stateless conversion and desired state, sync after sync', () => {
    const states = new ClusterStates();
    const desired = new DesiredStates();
    for (const objects of [cluster(['10.244.0.5', '10.244.0.6'], '4'), cluster(['10.244.0.5'], '7'), cluster(['10.244.0.5'], '7')]) {
      const state = states.convert(objects);
      expect(state).toEqual(clusterStateFromObjects(objects));
      const plain = desiredState(state.services, state.endpoints, { nodeName: 'node-a' });
      expect(desired.compute(state.services, state.endpoints, { nodeName: 'node-a' })).toEqual(plain);
    }
  });

  it('objects without a resourceVersion (manifest files) are converted anew every time', () => {
    const states = new ClusterStates();
    const objects = cluster(['10.244.0.5'], '4').map((o) => ({ ...o, object: { ...(o.object as object), metadata: { name: 'x', namespace: 'shop' } } }));
    expect(states.convert(objects)).toEqual(clusterStateFromObjects(objects));
  });

  it('keep the objects of unchanged Services, so the Reconciler writes only the changed one', () => {
    const states = new ClusterStates();
    const desired = new DesiredStates();
    const maps = { services: new MemoryMap('services'), backends: new MemoryMap('backends'), revNat: new MemoryMap('revNat') };
    const reconciler = new Reconciler(maps);
    const compute = (objects: SourcedObject[]) => {
      const state = states.convert(objects);
      return desired.compute(state.services, state.endpoints, { nodeName: 'node-a' });
    };
    const first = compute(cluster(['10.244.0.5', '10.244.0.6'], '4'));
    reconciler.apply(first);
    const second = compute(cluster(['10.244.0.5'], '7'));
    expect(second.frontends.get('10.96.0.20:80/tcp')).toBe(first.frontends.get('10.96.0.20:80/tcp'));
    expect(second.frontends.get('10.96.0.10:80/tcp')).not.toBe(first.frontends.get('10.96.0.10:80/tcp'));
    const result = reconciler.apply(second);
    // web: slot 2 and the backend gone, slot 0's count lowered; db's three entries untouched.
    expect(result.services).toEqual({ added: 0, updated: 1, removed: 1, unchanged: 4 });
    expect(result.backends).toEqual({ added: 0, updated: 0, removed: 1, unchanged: 3 });
    expect(maps.services.size).toBe(5);
  });

  it('update() changes the last state in place to what compute() gives, noting what changed', () => {
    const states = new ClusterStates();
    const desired = new DesiredStates();
    const objects = [service('web', '10.96.0.10', '1'), service('db', '10.96.0.20', '2'), slice('web', 'a', ['10.244.0.5'], '4'), slice('db', 'a', ['10.244.0.5', '10.244.1.1'], '5')];
    const state = states.convert(objects);
    const first = desired.compute(state.services, state.endpoints, { nodeName: 'node-a' });
    // web gets db's endpoint 10.244.1.1 too; db loses 10.244.0.5, which web keeps.
    const web = [service('web', '10.96.0.10', '1'), slice('web', 'a', ['10.244.0.5', '10.244.1.1'], '6')];
    const db = [service('db', '10.96.0.20', '2'), slice('db', 'a', ['10.244.1.1'], '7')];
    const updated = states.update(new Map([['shop/web', web], ['shop/db', db]]))!;
    expect(updated.state).toEqual(clusterStateFromObjects([...web, ...db]));
    const second = desired.update(updated.services, updated.state.endpoints, { nodeName: 'node-a' })!;
    expect(second).toBe(first);
    const plain = desiredState(updated.state.services, updated.state.endpoints, { nodeName: 'node-a' });
    expect(second.frontends).toEqual(plain.frontends);
    expect(second.backends).toEqual(plain.backends);
    expect(second.changes).toEqual({ frontends: new Set(['10.96.0.10:80/tcp', '10.96.0.20:80/tcp']), backends: new Set(['10.244.0.5:8080/tcp', '10.244.1.1:8080/tcp']) });
    // db gone: its backend 10.244.1.1 stays, web still uses it.
    const third = desired.update(states.update(new Map([['shop/db', []]]))!.services, updated.state.endpoints, { nodeName: 'node-a' })!;
    expect([...third.frontends.keys()]).toEqual(['10.96.0.10:80/tcp']);
    expect([...third.backends.keys()].sort()).toEqual(['10.244.0.5:8080/tcp', '10.244.1.1:8080/tcp']);
    // A frontend another Service owns: compute() decides.
    const clash = states.update(new Map([['shop/web2', [service('web2', '10.96.0.10', '9')]]]))!;
    expect(desired.update(clash.services, clash.state.endpoints, { nodeName: 'node-a' })).toBeUndefined();
  });
});
