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

  it('update(): a frontend moves to a Service changed before the one it leaves', () => {
    const states = new ClusterStates();
    const desired = new DesiredStates();
    const options = { nodeName: 'node-a' };
    const state = states.convert([service('a', '10.96.0.10', '1'), service('b', '10.96.0.20', '2'), slice('a', 'x', ['10.244.0.1'], '3'), slice('b', 'x', ['10.244.0.2'], '4')]);
    desired.compute(state.services, state.endpoints, options);
    // b takes a's cluster IP, a gets another; b comes first in the changes.
    const b = [service('b', '10.96.0.10', '5'), slice('b', 'x', ['10.244.0.2'], '4')];
    const a = [service('a', '10.96.0.30', '6'), slice('a', 'x', ['10.244.0.1'], '3')];
    const updated = states.update(new Map([['shop/b', b], ['shop/a', a]]))!;
    const next = desired.update(updated.services, updated.state.endpoints, options)!;
    const plain = desiredState(updated.state.services, updated.state.endpoints, options);
    expect(next.frontends).toEqual(plain.frontends);
    expect(next.backends).toEqual(plain.backends);
    expect(next.skipped).toEqual([]);
    expect(next.frontends.get('10.96.0.10:80/tcp')?.service).toBe('shop/b');
  });

  it('update() keeps a backend two Services use until neither does', () => {
    const states = new ClusterStates();
    const desired = new DesiredStates();
    const options = { nodeName: 'node-a' };
    // web has two frontends (cluster IP and an external IP), both with 10.244.0.5; db has it too.
    const web = (rv: string, addresses: string[]) => [
      { source: 'api', object: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', resourceVersion: rv }, spec: { clusterIP: '10.96.0.10', externalIPs: ['192.0.2.10'], ports: [{ name: 'http', port: 80, targetPort: 8080 }] } } },
      slice('web', 'a', addresses, rv),
    ];
    const db = (rv: string, addresses: string[]) => [service('db', '10.96.0.20', rv), slice('db', 'a', addresses, rv)];
    const state = states.convert([...web('1', ['10.244.0.5']), ...db('2', ['10.244.0.5'])]);
    desired.compute(state.services, state.endpoints, options);
    const step = (changes: Array<[string, SourcedObject[]]>) => {
      const updated = states.update(new Map(changes))!;
      const next = desired.update(updated.services, updated.state.endpoints, options)!;
      expect(next.backends).toEqual(desiredState(updated.state.services, updated.state.endpoints, options).backends);
      return [...next.backends.keys()].sort();
    };
    expect(step([['shop/db', db('3', ['10.244.0.6'])]])).toEqual(['10.244.0.5:8080/tcp', '10.244.0.6:8080/tcp']);
    expect(step([['shop/web', web('4', ['10.244.0.7'])]])).toEqual(['10.244.0.6:8080/tcp', '10.244.0.7:8080/tcp']);
    expect(step([['shop/db', db('5', ['10.244.0.7'])]])).toEqual(['10.244.0.7:8080/tcp']);
    expect(step([['shop/web', web('6', ['10.244.0.8'])]])).toEqual(['10.244.0.7:8080/tcp', '10.244.0.8:8080/tcp']);
    expect(step([['shop/db', []]])).toEqual(['10.244.0.8:8080/tcp']);
  });
});
