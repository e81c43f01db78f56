// The node network without a kernel: v1 Node objects to ClusterNodes
// (engine/nodes/k8s.ts), the derived VTEP MAC and address (vtep.ts), and
// the desired routes, neighbours and FDB entries per mode (desired.ts).
import { describe, expect, it } from 'vitest';
import { desiredNodeNetwork } from '../../engine/nodes/desired.js';
import { nodesFromObjects } from '../../engine/nodes/k8s.js';
import { checkNodeNetworkSettings, DEFAULT_VXLAN, type ClusterNode } from '../../engine/nodes/model.js';
import { vtepAddress, vtepMac } from '../../engine/nodes/vtep.js';

const node = (name: string, spec: object, addresses: Array<{ type: string; address: string }>) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  spec,
  status: { addresses },
});
const internal = (address: string) => ({ type: 'InternalIP', address });
const read = (...objects: unknown[]) => nodesFromObjects(objects.map((object, i) => ({ source: `f#${i}`, object })));

describe('v1 Node objects to cluster nodes', () => {
  it('takes spec.podCIDRs (or spec.podCIDR) and the InternalIPs, sorted by name; other kinds are not ours', () => {
    const r = read(
      node('b', { podCIDR: '10.244.2.0/24' }, [internal('192.168.0.12'), { type: 'Hostname', address: 'b' }, { type: 'ExternalIP', address: '203.0.113.2' }]),
      node('a', { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] }, [internal('192.168.0.11'), internal('2001:db8:0:0::11')]),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' } },
    );
    expect(r.problems).toEqual([]);
    expect(r.nodes).toEqual([
      { name: 'a', addresses: ['192.168.0.11', '2001:db8::11'], podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
      { name: 'b', addresses: ['192.168.0.12'], podCIDRs: ['10.244.2.0/24'] },
    ]);
  });

  it('keeps a Node without pod CIDRs or InternalIP (nothing to route yet); reads Lists', () => {
    const r = read({ apiVersion: 'v1', kind: 'NodeList', items: [node('new', {}, []), node('c', { podCIDR: '10.244.3.0/24' }, [internal('192.168.0.13')])] });
    expect(r.nodes.map((n) => n.name)).toEqual(['c', 'new']);
    expect(r.nodes[1]).toEqual({ name: 'new', addresses: [], podCIDRs: [] });
  });

  it('leaves out a Node with a bad field, naming the field, and a duplicate; the others still count', () => {
    const r = read(
      node('hostbits', { podCIDRs: ['10.244.1.1/24'] }, [internal('192.168.0.11')]),
      node('badip', { podCIDR: '10.244.2.0/24' }, [internal('192.168.0.300')]),
      node('shortip', { podCIDR: '10.244.3.0/24' }, [internal('10.1')]),
      node('ok', { podCIDR: '10.244.4.0/24' }, [internal('192.168.0.14')]),
      node('ok', { podCIDR: '10.244.5.0/24' }, [internal('192.168.0.15')]),
      { apiVersion: 'v1', kind: 'Node', metadata: {} },
    );
    expect(r.nodes).toEqual([{ name: 'ok', addresses: ['192.168.0.14'], podCIDRs: ['10.244.4.0/24'] }]);
    expect(r.problems).toEqual([
      { node: 'hostbits', source: 'f#0', message: 'spec.podCIDRs[0]: 10.244.1.1/24 has host bits set (the network is 10.244.1.0/24)' },
      { node: 'badip', source: 'f#1', message: 'status.addresses[0].address: "192.168.0.300" is not an IP address' },
      { node: 'shortip', source: 'f#2', message: 'status.addresses[0].address: "10.1" is not an IP address' },
      { node: 'ok', source: 'f#4', message: 'defined twice; the first one is used' },
      { node: '?', source: 'f#5', message: 'metadata.name: required' },
    ]);
  });
});

describe('VTEP MAC and address', () => {
  it('derives a locally administered unicast MAC from the node address, and the pod CIDR network address', () => {
    expect(vtepMac('10.0.0.7')).toBe('66:79:0a:00:00:07');
    expect(vtepMac('192.168.100.255')).toBe('66:79:c0:a8:64:ff');
    const first = parseInt(vtepMac('1.2.3.4').slice(0, 2), 16);
    expect(first & 0b10, 'locally administered').toBe(0b10);
    expect(first & 0b01, 'unicast').toBe(0);
    expect(() => vtepMac('fd00::1')).toThrow(/not an IPv4 address/);
    expect(vtepAddress('10.244.2.0/24')).toBe('10.244.2.0');
  });
});

describe('desired node network', () => {
  const n = (name: string, addresses: string[], podCIDRs: string[]): ClusterNode => ({ name, addresses, podCIDRs });
  const self = n('a', ['192.168.0.11', '2001:db8::11'], ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  const b = n('b', ['192.168.0.12', '2001:db8::12'], ['10.244.2.0/24', 'fd00:10:244:2::/64']);
  const c = n('c', ['192.168.0.13'], ['10.244.3.0/24', 'fd00:10:244:3::/64']);

  it('direct: a route per remote pod CIDR via the node address of its family; the own pod CIDRs blackholed', () => {
    const d = desiredNodeNetwork('direct', self, [c, self, b]);
    expect(d.routes).toEqual([
      { dst: '10.244.2.0/24', gw: '192.168.0.12', onlink: false, node: 'b' },
      { dst: 'fd00:10:244:2::/64', gw: '2001:db8::12', onlink: false, node: 'b' },
      { dst: '10.244.3.0/24', gw: '192.168.0.13', onlink: false, node: 'c' },
    ]);
    expect(d.blackholes).toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);
    expect(d).toMatchObject({ neighbors: [], fdb: [], problems: ['node c: no IPv6 InternalIP to route pod CIDR fd00:10:244:3::/64 via'] });
  });

  it('vxlan: route onlink via the VTEP address, its neighbour entry and one FDB entry per node', () => {
    const two = n('d', ['192.168.0.14'], ['10.244.4.0/24', '10.244.5.0/24']);
    const d = desiredNodeNetwork('vxlan', self, [self, b, two]);
    expect(d.localAddress).toBe('192.168.0.11');
    expect(d.vtepCidr).toBe('10.244.1.0/32');
    expect(d.routes).toEqual([
      { dst: '10.244.2.0/24', gw: '10.244.2.0', onlink: true, node: 'b' },
      { dst: '10.244.4.0/24', gw: '10.244.4.0', onlink: true, node: 'd' },
      { dst: '10.244.5.0/24', gw: '10.244.5.0', onlink: true, node: 'd' },
    ]);
    expect(d.neighbors).toEqual([
      { ip: '10.244.2.0', mac: '66:79:c0:a8:00:0c', node: 'b' },
      { ip: '10.244.4.0', mac: '66:79:c0:a8:00:0e', node: 'd' },
      { ip: '10.244.5.0', mac: '66:79:c0:a8:00:0e', node: 'd' },
    ]);
    expect(d.fdb).toEqual([
      { mac: '66:79:c0:a8:00:0c', dst: '192.168.0.12', node: 'b' },
      { mac: '66:79:c0:a8:00:0e', dst: '192.168.0.14', node: 'd' },
    ]);
    expect(d.problems).toEqual(['node b: pod CIDR fd00:10:244:2::/64 is IPv6; the VXLAN overlay carries IPv4 pod CIDRs only']);
  });

  it('a pod CIDR overlapping one already claimed (by this node first, then by name) is not routed', () => {
    const clash = n('b2', ['192.168.0.22'], ['10.244.2.128/25']);
    const mine = n('b3', ['192.168.0.23'], ['10.244.0.0/16']);
    const d = desiredNodeNetwork('direct', n('a', ['192.168.0.11'], ['10.244.1.0/24']), [b, clash, mine]);
    expect(d.routes.map((r) => r.dst)).toEqual(['10.244.2.0/24', 'fd00:10:244:2::/64']);
    expect(d.problems).toEqual([
      'node b2: pod CIDR 10.244.2.128/25 overlaps 10.244.2.0/24 of node b; not routed',
      'node b3: pod CIDR 10.244.0.0/16 overlaps 10.244.1.0/24 of node a; not routed',
    ]);
  });

  it('vxlan without an IPv4 address of this node throws: there is nothing to tunnel from', () => {
    expect(() => desiredNodeNetwork('vxlan', n('a', ['2001:db8::11'], ['10.244.1.0/24']), [b])).toThrow(/node a has no IPv4 InternalIP/);
  });
});

describe('node network settings', () => {
  it('refuses a VNI, port or device name the kernel would', () => {
    const check = (vxlan: object) => () => checkNodeNetworkSettings({ mode: 'vxlan', vxlan: { ...DEFAULT_VXLAN, ...vxlan } });
    expect(check({})).not.toThrow();
    expect(check({ vni: 1 << 24 })).toThrow('VXLAN VNI must be an integer in 0..16777215, got 16777216');
    expect(check({ port: 0 })).toThrow('VXLAN port must be an integer in 1..65535, got 0');
    expect(check({ device: 'a-name-too-long-for-linux' })).toThrow(/interface name must be 1-15 bytes/);
  });
});
