// applyNodeNetwork() (engine/nodes/reconcile.ts) in one namespace, its
// uplink a veth pair with 192.168.100.11/24, checked with ip and bridge:
// the vxlan device as flannel makes it, a second apply that writes nothing,
// a remote node whose address changes, VXLAN settings that force the
// device to be recreated, the switch to direct mode, a route the kernel
// refuses (reported by name, the others still written) and a foreign link
// in the device's way.
import { describe, expect, it } from 'vitest';
import { desiredNodeNetwork } from '../../engine/nodes/desired.js';
import { DEFAULT_VXLAN, type ClusterNode, type NodeNetworkMode, type NodeNetworkSettings } from '../../engine/nodes/model.js';
import { applyNodeNetwork } from '../../engine/nodes/reconcile.js';
import { handleIn, ip, vethUp } from '../support/handle.js';
import { ipJson, isRoot, run } from '../support/netns.js';
import { PROTO, VXLAN_DEVICE } from './cluster.js';

const self: ClusterNode = { name: 'a', addresses: ['192.168.100.11'], podCIDRs: ['10.244.1.0/24'] };
const b: ClusterNode = { name: 'b', addresses: ['192.168.100.12'], podCIDRs: ['10.244.2.0/24'] };
const c: ClusterNode = { name: 'c', addresses: ['192.168.100.13'], podCIDRs: ['10.244.3.0/24'] };
const settings = (mode: NodeNetworkMode, vni = DEFAULT_VXLAN.vni): NodeNetworkSettings => ({ mode, vxlan: { ...DEFAULT_VXLAN, vni } });

async function nodeNs() {
  const { ns, h } = await handleIn('mnr');
  vethUp(ns, 'eth0', 'peer0');
  ip(ns, 'addr', 'add', '192.168.100.11/24', 'dev', 'eth0');
  const apply = (mode: NodeNetworkMode, nodes: ClusterNode[], s = settings(mode)) => applyNodeNetwork(h, s, desiredNodeNetwork(mode, self, nodes));
  return { ns, h, apply };
}

const routes = (ns: string) => ipJson<any[]>(ns, ['route', 'show', 'proto', PROTO]).map((r) => `${r.type === 'blackhole' ? 'blackhole ' : ''}${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}${r.flags?.includes('onlink') ? ' onlink' : ''}`).sort();
const neighbors = (ns: string) => ipJson<any[]>(ns, ['neigh', 'show', 'dev', VXLAN_DEVICE, 'nud', 'permanent']).map((n) => `${n.dst} ${n.lladdr}`).sort();
const fdb = (ns: string) => (JSON.parse(run('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', VXLAN_DEVICE])) as any[]).filter((e) => e.dst).map((e) => `${e.mac} ${e.dst} ${e.state || 'permanent'}`).sort();
const device = (ns: string) => ipJson<any[]>(ns, ['-d', 'link', 'show', 'dev', VXLAN_DEVICE])[0];
const hasDevice = (ns: string) => ipJson<any[]>(ns, ['link', 'show']).some((l) => l.ifname === VXLAN_DEVICE);
const none = { added: 0, changed: 0, removed: 0 };

describe.skipIf(!isRoot)('applying the node network to a namespace (needs root)', () => {
  it('vxlan: device, address, routes, neighbours and FDB as flannel has them; a second apply writes nothing', async () => {
    const { ns, apply } = await nodeNs();
    const first = await apply('vxlan', [self, b, c]);
    expect(first).toMatchObject({ device: { action: 'created' }, routes: { added: 3 }, neighbors: { added: 2 }, fdb: { added: 2 }, errors: [] });

    const dev = device(ns);
    expect(dev).toMatchObject({ mtu: 1450, address: '66:79:c0:a8:64:0b', operstate: expect.stringMatching(/UNKNOWN|UP/) });
    expect(dev.linkinfo.info_data).toMatchObject({ id: 1, port: 8472, local: '192.168.100.11', learning: false, link: 'eth0' });
    expect(ipJson<any[]>(ns, ['-4', 'addr', 'show', 'dev', VXLAN_DEVICE])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(['10.244.1.0/32']);
    expect(routes(ns)).toEqual([
      `10.244.2.0/24 via 10.244.2.0 dev ${VXLAN_DEVICE} onlink`,
      `10.244.3.0/24 via 10.244.3.0 dev ${VXLAN_DEVICE} onlink`,
      'blackhole 10.244.1.0/24',
    ]);
    expect(neighbors(ns)).toEqual(['10.244.2.0 66:79:c0:a8:64:0c', '10.244.3.0 66:79:c0:a8:64:0d']);
    expect(fdb(ns)).toEqual(['66:79:c0:a8:64:0c 192.168.100.12 permanent', '66:79:c0:a8:64:0d 192.168.100.13 permanent']);

    expect(await apply('vxlan', [self, b, c])).toMatchObject({ device: { action: 'adopted' }, routes: none, neighbors: none, fdb: none, errors: [] });
  });

  it('vxlan: a node whose address changes gets a new MAC and FDB entry; the route stays', async () => {
    const { ns, apply } = await nodeNs();
    await apply('vxlan', [self, b, c]);
    const moved = { ...c, addresses: ['192.168.100.23'] };
    expect(await apply('vxlan', [self, b, moved])).toMatchObject({ routes: none, neighbors: { added: 0, changed: 1, removed: 0 }, fdb: { added: 1, changed: 0, removed: 1 } });
    expect(neighbors(ns)).toEqual(['10.244.2.0 66:79:c0:a8:64:0c', '10.244.3.0 66:79:c0:a8:64:17']);
    expect(fdb(ns)).toEqual(['66:79:c0:a8:64:0c 192.168.100.12 permanent', '66:79:c0:a8:64:17 192.168.100.23 permanent']);
  });

  it('vxlan: another VNI recreates the device and programs it again; the MTU follows the uplink', async () => {
    const { ns, apply } = await nodeNs();
    await apply('vxlan', [self, b]);
    const before = device(ns).ifindex;
    ip(ns, 'link', 'set', 'eth0', 'mtu', '9000');
    const r = await apply('vxlan', [self, b], settings('vxlan', 42));
    expect(r).toMatchObject({ device: { action: 'recreated' }, routes: { added: 1 }, neighbors: { added: 1 }, fdb: { added: 1 }, errors: [] });
    expect(device(ns).ifindex).not.toBe(before);
    expect(device(ns)).toMatchObject({ mtu: 8950, linkinfo: { info_data: { id: 42 } } });
    expect(routes(ns)).toContain(`10.244.2.0/24 via 10.244.2.0 dev ${VXLAN_DEVICE} onlink`);
  });

  it('direct after vxlan: the device goes (with its neighbours and FDB) and the routes go via the node addresses', async () => {
    const { ns, apply } = await nodeNs();
    await apply('vxlan', [self, b, c]);
    const r = await apply('direct', [self, b, c]);
    expect(r).toMatchObject({ deviceRemoved: true, routes: { added: 2, changed: 0, removed: 0 }, errors: [] });
    expect(hasDevice(ns)).toBe(false);
    expect(routes(ns)).toEqual(['10.244.2.0/24 via 192.168.100.12 dev eth0', '10.244.3.0/24 via 192.168.100.13 dev eth0', 'blackhole 10.244.1.0/24']);
    expect(await apply('direct', [self, c])).toMatchObject({ deviceRemoved: false, routes: { added: 0, changed: 0, removed: 1 } });
    expect(routes(ns)).toEqual(['10.244.3.0/24 via 192.168.100.13 dev eth0', 'blackhole 10.244.1.0/24']);
  });

  it('direct, dual stack: the IPv6 pod CIDR goes via the IPv6 node address', async () => {
    const { ns, h } = await nodeNs();
    ip(ns, 'addr', 'add', '2001:db8:100::11/64', 'dev', 'eth0', 'nodad');
    const me = { ...self, addresses: [...self.addresses, '2001:db8:100::11'], podCIDRs: [...self.podCIDRs, 'fd00:10:244:1::/64'] };
    const peer = { ...b, addresses: [...b.addresses, '2001:db8:100::12'], podCIDRs: [...b.podCIDRs, 'fd00:10:244:2::/64'] };
    const r = await applyNodeNetwork(h, settings('direct'), desiredNodeNetwork('direct', me, [me, peer]));
    expect(r).toMatchObject({ routes: { added: 4 }, errors: [] });
    expect(ipJson<any[]>(ns, ['-6', 'route', 'show', 'proto', PROTO]).map((x) => `${x.type === 'blackhole' ? 'blackhole ' : ''}${x.dst}${x.gateway ? ` via ${x.gateway}` : ''}`).sort()).toEqual([
      'blackhole fd00:10:244:1::/64',
      'fd00:10:244:2::/64 via 2001:db8:100::12',
    ]);
    expect(await applyNodeNetwork(h, settings('direct'), desiredNodeNetwork('direct', me, [me, peer]))).toMatchObject({ routes: none, errors: [] });
  });

  it('direct: a node off the uplink subnet cannot be a gateway; the error names the route and keeps the kernel text, the others are written', async () => {
    const { ns, apply } = await nodeNs();
    const far = { name: 'far', addresses: ['198.51.100.7'], podCIDRs: ['10.244.7.0/24'] };
    const r = await apply('direct', [self, b, far]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^node far: ip route replace 10\.244\.7\.0\/24 via 198\.51\.100\.7 .*in netns mnr-.*(unreachable|gateway)/i);
    expect(routes(ns)).toEqual(['10.244.2.0/24 via 192.168.100.12 dev eth0', 'blackhole 10.244.1.0/24']);
  });

  it('a link of another kind under the device name is not replaced', async () => {
    const { ns, apply } = await nodeNs();
    vethUp(ns, VXLAN_DEVICE, 'other0');
    await expect(apply('vxlan', [self, b])).rejects.toThrow(`vxlan device "${VXLAN_DEVICE}" in netns ${ns}: a veth of that name exists`);
    expect(ipJson<any[]>(ns, ['-d', 'link', 'show', 'dev', VXLAN_DEVICE])[0].linkinfo.info_kind).toBe('veth');
  });
});
