// The node's addresses on the uplink, both families: what NodePorts are
// served at (uplinkAddresses()) and what attachUplink() writes into
// ferry_node_cfg as the SNAT addresses — the first global IPv4 address, and
// the first global IPv6 one ('::' without one). Link-local addresses are not
// the node's.
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane } from '../../engine/dataplane/loader.js';
import { attachUplink, detachUplink, readNodeConfig, uplinkAddresses, writeNodeConfig } from '../../engine/dataplane/uplink.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { handleIn, ip } from '../support/handle.js';
import { isRoot } from '../support/netns.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('node config: the IPv6 SNAT address', () => {
  it('is checked as IPv6 (:: for none) before anything is written', () => {
    const map = new MemoryMap('node_cfg');
    const config = { snatAddress: '192.0.2.1', snatPortMin: 61000, snatPortMax: 65535 };
    expect(() => writeNodeConfig(map, { ...config, snatAddress6: '192.0.2.1' })).toThrow("node config: snatAddress6 must be an IPv6 address ('::' for none), got 192.0.2.1");
    expect(map.size).toBe(0);
    writeNodeConfig(map, { ...config, snatAddress6: '2001:db8::1' });
    expect(readNodeConfig(map)).toMatchObject({ snatAddress: '192.0.2.1', snatAddress6: '2001:db8::1' });
  });
});

describe.skipIf(!isRoot)('the uplink’s addresses (needs root)', () => {
  it('global IPv4 and IPv6 addresses serve NodePorts; the first of each family is the SNAT address', async () => {
    const pinRoot = makePinDir('ferry-upaddr');
    cleanups.push(() => removePinDir(pinRoot));
    const dp = await loadDataplane(pinRoot);
    cleanups.push(() => dp.close());
    const { ns, h } = await handleIn('fupa');
    ip(ns, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'far');
    ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'uplink');
    ip(ns, '-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'uplink', 'nodad');
    ip(ns, '-6', 'addr', 'add', 'fe80::99/64', 'dev', 'uplink', 'nodad');
    ip(ns, 'link', 'set', 'uplink', 'up');

    const addresses = await uplinkAddresses(h, 'uplink');
    expect(addresses).toEqual({ 4: ['192.0.2.1'], 6: ['2001:db8::1'] });
    const up = await attachUplink(dp, h, 'uplink');
    cleanups.push(() => detachUplink(pinRoot, 'uplink'));
    expect(up.config).toMatchObject({ snatAddress: '192.0.2.1', snatAddress6: '2001:db8::1' });
    expect(readNodeConfig(dp.maps.nodeConfig)).toEqual(up.config);

    // Without a global IPv6 address: '::', IPv6 flows from outside to Cluster-policy frontends have no SNAT address.
    ip(ns, '-6', 'addr', 'del', '2001:db8::1/64', 'dev', 'uplink');
    expect((await uplinkAddresses(h, 'uplink'))[6]).toEqual([]);
    expect((await attachUplink(dp, h, 'uplink')).config.snatAddress6).toBe('::');
    // Given, it is used as given.
    expect((await attachUplink(dp, h, 'uplink', { snatAddress6: '2001:db8::7' })).config.snatAddress6).toBe('2001:db8::7');
    expect(readNodeConfig(dp.maps.nodeConfig).snatAddress6).toBe('2001:db8::7');
  });
});
