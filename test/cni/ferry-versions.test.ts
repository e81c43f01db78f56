// ferry alone under libcni's cnitool, the way a runtime drives it: a
// conflist (or a single .conf) per spec version 0.3.0 … 1.0.0 (what
// Debian's libcni speaks), routed and bridge mode, IPv4, IPv6 and dual
// stack. ADD answers in the config's version's shape and wires the pod;
// CHECK (0.4.0+) passes and notices damage; DEL leaves nothing behind and
// may be repeated. The plugin runs in-process (no daemon listens).
import { beforeAll, describe, expect, it } from 'vitest';
import { ipJson, isRoot, run } from '../support/netns.js';
import {
  bridgeName,
  cniEnv,
  cnitoolContainerId,
  endpointRecord,
  expectNothingLeft,
  ferryCnitool,
  ferryConf,
  ferryFixture,
  ferryPlugin,
  hostVeths,
  ipRecords,
  linkExists,
  netnsPath,
  podAddrs,
  podNetns,
  prepareClients,
  runFrontend,
  writeConf,
  writeConflist,
  type Family,
  type FerryFixture,
} from '../support/ferry.js';

type Mode = 'routed' | 'bridge';
const K8S_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-7d9f;K8S_POD_UID=6a1f0e2c-93b4-4c55-a1de-0f3b7c9e2d11';

interface Case {
  version: string;
  mode: Mode;
  family: Family;
  form: 'conflist' | 'conf';
}

/** What ADD must have answered and built, checked against the kernel with iproute2. */
function expectAttached(f: FerryFixture, pod: string, c: Case, result: any): { ips: string[]; hostVeth: string } {
  expect(result.cniVersion).toBe(c.version);
  const legacy = c.version.startsWith('0.');
  const families = c.family === 'dual' ? ['4', '6'] : [c.family === 'v4' ? '4' : '6'];

  // interfaces: routed [host veth, pod]; bridge [bridge, host veth, pod].
  const names = result.interfaces.map((i: any) => i.name);
  const hostVeth: string = c.mode === 'routed' ? names[0] : names[1];
  expect(hostVeth).toMatch(/^fy[0-9a-f]{13}$/);
  expect(names).toEqual(c.mode === 'routed' ? [hostVeth, 'eth0'] : [bridgeName(f), hostVeth, 'eth0']);
  const podIndex = names.length - 1;
  expect(result.interfaces[podIndex].sandbox).toBe(netnsPath(pod));
  for (const i of result.interfaces.slice(0, podIndex)) expect(i.sandbox).toBeUndefined();
  for (const i of result.interfaces) expect(i.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);

  // ips: one per family, in the version's shape.
  expect(result.ips).toHaveLength(families.length);
  for (const [n, ipc] of result.ips.entries()) {
    const fam = families[n]!;
    expect(ipc.interface).toBe(podIndex);
    if (legacy) expect(ipc.version).toBe(fam);
    else expect(ipc).not.toHaveProperty('version');
    const v4 = fam === '4';
    if (c.mode === 'routed') {
      expect(ipc.address).toMatch(v4 ? new RegExp(`^${f.v4.replaceAll('.', '\\.')}\\.\\d+/32$`) : new RegExp(`^${f.v6}[0-9a-f]+/128$`));
      expect(ipc.gateway).toBe(v4 ? '169.254.1.1' : 'fe80::1');
    } else {
      expect(ipc.address).toMatch(v4 ? new RegExp(`^${f.v4.replaceAll('.', '\\.')}\\.\\d+/24$`) : new RegExp(`^${f.v6}[0-9a-f]+/64$`));
      expect(ipc.gateway).toBe(v4 ? `${f.v4}.1` : `${f.v6}1`);
    }
  }
  const gateways = result.ips.map((i: any) => i.gateway);
  expect(result.routes).toEqual(families.map((fam, n) => ({ dst: fam === '4' ? '0.0.0.0/0' : '::/0', gw: gateways[n] })));

  // The kernel: the pod has exactly those addresses and default routes.
  const ips: string[] = result.ips.map((i: any) => i.address);
  expect(podAddrs(pod).sort()).toEqual([...ips].sort());
  for (const [n, fam] of families.entries()) {
    const defaults = ipJson<any[]>(pod, [`-${fam}`, 'route', 'show', 'default']);
    expect(defaults.map((r) => [r.gateway, r.dev])).toEqual([[gateways[n], 'eth0']]);
  }
  // The node: routed has a host route per pod IP through the host veth;
  // bridge has the veth enslaved to the bridge, which holds the gateways.
  expect(hostVeths(f)).toEqual([hostVeth]);
  if (c.mode === 'routed') {
    for (const fam of families) {
      const routes = ipJson<any[]>(f.node, [`-${fam}`, 'route', 'show', 'dev', hostVeth]).map((r) => r.dst);
      for (const ip of ips.filter((a) => a.includes(':') === (fam === '6'))) expect(routes).toContain(ip.split('/')[0]);
    }
  } else {
    const [veth] = ipJson<any[]>(f.node, ['link', 'show', 'dev', hostVeth]);
    expect(veth.master).toBe(bridgeName(f));
    const bridgeAddrs = ipJson<any[]>(f.node, ['addr', 'show', 'dev', bridgeName(f)]).flatMap((l) => l.addr_info);
    for (const gw of gateways) expect(bridgeAddrs.map((a) => a.local)).toContain(gw);
    // No address of the bridge is still in DAD when ADD returns (its link-local
    // included): until then the node cannot resolve pods for forwarded IPv6.
    expect(bridgeAddrs.filter((a) => a.tentative).map((a) => a.local)).toEqual([]);
  }
  // State: one IPAM record per address, one endpoint record with the pod's identity.
  expect(ipRecords(f)).toEqual(ips.map((a) => a.split('/')[0]).sort());
  const containerId = cnitoolContainerId(pod);
  expect(endpointRecord(f, containerId)).toMatchObject({
    containerId,
    ifname: 'eth0',
    netns: netnsPath(pod),
    hostVeth,
    mode: c.mode,
    ips,
    k8s: { podNamespace: 'shop', podName: 'cart-7d9f', podUid: '6a1f0e2c-93b4-4c55-a1de-0f3b7c9e2d11' },
  });
  return { ips, hostVeth };
}

function configure(f: FerryFixture, c: Case): void {
  const o = { mode: c.mode, family: c.family };
  if (c.form === 'conf') writeConf(f, ferryConf(f, c.version, o));
  else writeConflist(f, c.version, [ferryPlugin(f, o)]);
}

function roundTrip(c: Case): void {
  const f = ferryFixture('fyv');
  const pod = podNetns('fyv-pod');
  configure(f, c);

  const add = ferryCnitool(f, 'add', pod, { args: K8S_ARGS });
  expect(add.status, add.stderr).toBe(0);
  expectAttached(f, pod, c, add.result);

  const check = ferryCnitool(f, 'check', pod, { args: K8S_ARGS });
  if (c.version.startsWith('0.3.')) {
    // libcni refuses CHECK itself below 0.4.0, before any plugin runs.
    expect(check.status).not.toBe(0);
    expect(check.stderr).toContain(`configuration version "${c.version}" does not support the CHECK command`);
  } else {
    expect(check.status, check.stderr).toBe(0);
  }

  const del = ferryCnitool(f, 'del', pod, { args: K8S_ARGS });
  expect(del.status, del.stderr).toBe(0);
  expectNothingLeft(f, `DEL (${c.version} ${c.mode} ${c.family})`);
  expect(linkExists(pod, 'eth0')).toBe(false);
  if (c.mode === 'bridge') expect(linkExists(f.node, bridgeName(f))).toBe(true); // shared, kept (as the reference bridge plugin does)

  // DEL is idempotent.
  const again = ferryCnitool(f, 'del', pod, { args: K8S_ARGS });
  expect(again.status, again.stderr).toBe(0);
}

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];
const MODES: Mode[] = ['routed', 'bridge'];

describe.skipIf(!isRoot)('ferry alone under cnitool (needs root: namespaces, veths)', () => {
  beforeAll(() => prepareClients(), 600_000);

  describe('every spec version, dual stack, conflist', () => {
    for (const version of VERSIONS) {
      for (const mode of MODES) {
        it(`${version} ${mode}: ADD in ${version}'s shape, CHECK, DEL leaves nothing`, () => {
          roundTrip({ version, mode, family: 'dual', form: 'conflist' });
        });
      }
    }
  });

  describe('single-family networks, and the single .conf form', () => {
    for (const mode of MODES) {
      it(`1.0.0 ${mode}, IPv4 only, .conf`, () => roundTrip({ version: '1.0.0', mode, family: 'v4', form: 'conf' }));
      it(`1.0.0 ${mode}, IPv6 only, conflist`, () => roundTrip({ version: '1.0.0', mode, family: 'v6', form: 'conflist' }));
    }
    it('0.3.1 routed, dual stack, .conf', () => roundTrip({ version: '0.3.1', mode: 'routed', family: 'dual', form: 'conf' }));
  });

  it('CHECK reports what is broken (ferry code 102), naming it', () => {
    const f = ferryFixture('fyv');
    const pod = podNetns('fyv-pod');
    writeConflist(f, '1.0.0', [ferryPlugin(f)]);
    const add = ferryCnitool(f, 'add', pod);
    expect(add.status, add.stderr).toBe(0);
    const [v4, v6] = add.result.ips.map((i: any) => i.address as string);
    run('ip', ['-n', pod, 'addr', 'del', v4!, 'dev', 'eth0']);
    const hostVeth = add.result.interfaces[0].name;
    run('ip', ['-n', f.node, '-6', 'route', 'del', v6!, 'dev', hostVeth]);

    const check = ferryCnitool(f, 'check', pod);
    expect(check.status).not.toBe(0);
    expect(check.stderr).toContain(`eth0 in netns ${pod} lacks address ${v4}`);
    expect(check.stderr).toContain(`node has no route ${v6} dev ${hostVeth}`);

    expect(ferryCnitool(f, 'del', pod).status).toBe(0);
    expectNothingLeft(f, 'DEL after a failed CHECK');
  });

  it('capabilities through CAP_ARGS (ips, mac, dns) and mtu reach the pod and the result', () => {
    const f = ferryFixture('fyv');
    const pod = podNetns('fyv-pod');
    writeConflist(f, '1.0.0', [
      ferryPlugin(f, {
        extra: { mtu: 1400, capabilities: { ips: true, mac: true, dns: true }, dns: { nameservers: ['10.96.0.10'], domain: 'cluster.local' } },
      }),
    ]);
    const capabilityArgs = {
      ips: [`${f.v4}.77/24`, `${f.v6}77/64`],
      mac: '0a:58:0a:37:00:4d',
      dns: { servers: ['10.96.0.53'], searches: ['ns1.svc.cluster.local'], options: ['ndots:5'] },
    };
    const add = ferryCnitool(f, 'add', pod, { capabilityArgs });
    expect(add.status, add.stderr).toBe(0);
    expect(add.result.ips.map((i: any) => i.address)).toEqual([`${f.v4}.77/32`, `${f.v6}77/128`]);
    expect(add.result.interfaces[1].mac).toBe('0a:58:0a:37:00:4d');
    // The runtime's dns wins over the config's where both say something (CONVENTIONS.md).
    expect(add.result.dns).toEqual({ nameservers: ['10.96.0.53'], domain: 'cluster.local', search: ['ns1.svc.cluster.local'], options: ['ndots:5'] });
    const [podLink] = ipJson<any[]>(pod, ['link', 'show', 'dev', 'eth0']);
    expect([podLink.address, podLink.mtu]).toEqual(['0a:58:0a:37:00:4d', 1400]);
    const [hostLink] = ipJson<any[]>(f.node, ['link', 'show', 'dev', add.result.interfaces[0].name]);
    expect(hostLink.mtu).toBe(1400);
    expect(ipRecords(f)).toEqual([`${f.v4}.77`, `${f.v6}77`].sort());
    expect(ferryCnitool(f, 'check', pod, { capabilityArgs }).status).toBe(0);
    expect(ferryCnitool(f, 'del', pod, { capabilityArgs }).status).toBe(0);
    expectNothingLeft(f, 'DEL');
  });

  it('DEL after the pod netns is gone: through cnitool, and with CNI_NETNS unset', async () => {
    const f = ferryFixture('fyv');
    const [p1, p2] = [podNetns('fyv-pod'), podNetns('fyv-pod')];
    writeConflist(f, '1.0.0', [ferryPlugin(f)]);
    for (const pod of [p1, p2]) expect(ferryCnitool(f, 'add', pod).status).toBe(0);
    expect(ipRecords(f)).toHaveLength(4);
    for (const pod of [p1, p2]) run('ip', ['netns', 'del', pod]);

    const del = ferryCnitool(f, 'del', p1);
    expect(del.status, del.stderr).toBe(0);
    const direct = await runFrontend(f, { env: { ...cniEnv('DEL', cnitoolContainerId(p2), p2), CNI_NETNS: undefined }, stdin: ferryConf(f, '1.0.0') });
    expect(direct.status, direct.stdout).toBe(0);
    expect(direct.stdout).toBe('');
    expectNothingLeft(f, 'DEL without a netns');
  });

  it('a repeated ADD keeps the addresses (IPAM is idempotent) and rebuilds the veth', () => {
    const f = ferryFixture('fyv');
    const pod = podNetns('fyv-pod');
    writeConflist(f, '1.0.0', [ferryPlugin(f)]);
    const first = ferryCnitool(f, 'add', pod);
    expect(first.status, first.stderr).toBe(0);
    // Runtimes retry an ADD that timed out, with everything of the first in place.
    const second = ferryCnitool(f, 'add', pod);
    expect(second.status, second.stderr).toBe(0);
    expect(second.result.ips).toEqual(first.result.ips);
    expect(ipRecords(f)).toHaveLength(2);
    expect(hostVeths(f)).toEqual([first.result.interfaces[0].name]);
    expect(ferryCnitool(f, 'check', pod).status).toBe(0);
    expect(ferryCnitool(f, 'del', pod).status).toBe(0);
    expectNothingLeft(f, 'DEL');
  });
});
