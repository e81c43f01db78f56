// Proves the cnitool harness with the *reference* plugins only (bridge,
// host-local, portmap from Debian's containernetworking-plugins): libcni's
// cnitool runs inside a throw-away "node" netns (the bridge plugin creates
// its bridge in the namespace it runs in, so never the host's), the pod is
// another throw-away netns, and every data dir (host-local's, libcni's
// result cache) lives in a temp dir.
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cnitool, ensureCnitool, referencePluginDir, type CnitoolArgs } from '../support/cnitool.js';
import { inNetns, ipJson, isRoot, makeNetns, run } from '../support/netns.js';

interface Fixture {
  dir: string;
  confDir: string;
  dataDir: string;
  cacheDir: string;
  node: string;
  pod: string;
  bridge: string;
  network: string;
  subnetPrefix: string; // "10.199.N"
}

let fixture: Fixture | undefined;

function makeFixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cnitool-'));
  const f: Fixture = {
    dir,
    confDir: join(dir, 'net.d'),
    dataDir: join(dir, 'host-local'),
    cacheDir: join(dir, 'cache'),
    node: makeNetns('cnit-node'),
    pod: makeNetns('cnit-pod'),
    bridge: `fbr${randomBytes(4).toString('hex')}`, // 11 chars (IFNAMSIZ 15)
    network: `cnit-${randomBytes(4).toString('hex')}`,
    // Never 0: its IPv6 twin (v6Prefix) must be written as printed, and a zero group is elided.
    subnetPrefix: `10.199.${randomInt(1, 256)}`,
  };
  for (const d of [f.confDir, f.dataDir, f.cacheDir]) mkdirSync(d);
  fixture = f;
  return f;
}

afterEach(() => {
  // The netns helpers delete node and pod (and with them the bridge, veths
  // and iptables rules); the temp dir holds everything else.
  if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
  fixture = undefined;
});

/** ULA twin of the IPv4 subnet, e.g. fd00:199:2a::/64 for 10.199.42.0/24. */
function v6Prefix(f: Fixture): string {
  return `fd00:199:${Number(f.subnetPrefix.split('.')[2]).toString(16)}:`;
}

function bridgePlugin(f: Fixture, dualStack = false): Record<string, unknown> {
  const ranges = [[{ subnet: `${f.subnetPrefix}.0/24` }]];
  const routes = [{ dst: '0.0.0.0/0' }];
  if (dualStack) {
    ranges.push([{ subnet: `${v6Prefix(f)}:/64` }]);
    routes.push({ dst: '::/0' });
  }
  return {
    type: 'bridge',
    bridge: f.bridge,
    isGateway: true,
    ipMasq: false,
    ipam: { type: 'host-local', ranges, dataDir: f.dataDir, routes },
  };
}

function call(f: Fixture, command: CnitoolArgs['command'], extra: Partial<CnitoolArgs> = {}) {
  return cnitool({
    command,
    network: f.network,
    netnsPath: `/var/run/netns/${f.pod}`,
    confDir: f.confDir,
    pluginPaths: [referencePluginDir()],
    cacheDir: f.cacheDir,
    nodeNetns: f.node,
    ...extra,
  });
}

/** The pod's global addresses of one family on eth0, as "ADDR/PREFIX". */
function podAddrs(f: Fixture, family: 'inet' | 'inet6' = 'inet'): string[] {
  const links = ipJson<any[]>(f.pod, ['addr', 'show', 'dev', 'eth0']);
  return links.flatMap((l) =>
    (l.addr_info ?? [])
      .filter((a: any) => a.family === family && a.scope === 'global')
      .map((a: any) => `${a.local}/${a.prefixlen}`),
  );
}

function hasLink(ns: string | null, dev: string): boolean {
  try {
    run('ip', [...(ns ? ['-n', ns] : []), 'link', 'show', 'dev', dev]);
    return true;
  } catch {
    return false;
  }
}

/** Asserts a successful ADD and returns the pod's IPv4 address with prefix. */
function expectAdded(f: Fixture, add: ReturnType<typeof cnitool>): string {
  expect(add.status, add.stderr).toBe(0);
  expect(add.result?.cniVersion).toBe('1.0.0');
  const ip: string = add.result.ips?.find((i: any) => !i.address.includes(':'))?.address;
  expect(ip).toMatch(new RegExp(`^${f.subnetPrefix.replaceAll('.', '\\.')}\\.\\d+/24$`));
  const sandboxIf = add.result.interfaces.find((i: any) => i.name === 'eth0');
  expect(sandboxIf?.sandbox).toBe(`/var/run/netns/${f.pod}`);

  // The pod has the address, the bridge and its gateway are in the node netns only.
  expect(podAddrs(f)).toEqual([ip]);
  expect(hasLink(f.node, f.bridge)).toBe(true);
  expect(hasLink(null, f.bridge)).toBe(false);
  const gw = ipJson<any[]>(f.node, ['addr', 'show', 'dev', f.bridge])
    .flatMap((l) => l.addr_info)
    .map((a: any) => a.local);
  expect(gw).toContain(`${f.subnetPrefix}.1`);
  // host-local recorded the lease in our data dir; libcni cached the result in ours.
  expect(existsSync(join(f.dataDir, f.network, ip.split('/')[0]!))).toBe(true);
  expect(readdirSync(join(f.cacheDir, 'results'))).toHaveLength(1);
  return ip;
}

function expectDeleted(f: Fixture, ip: string): void {
  expect(hasLink(f.pod, 'eth0')).toBe(false);
  expect(existsSync(join(f.dataDir, f.network, ip.split('/')[0]!))).toBe(false);
  expect(readdirSync(join(f.cacheDir, 'results'))).toHaveLength(0);
}

describe.skipIf(!isRoot)('cnitool harness with the reference plugins (needs root: netns, bridge, iptables)', () => {
  beforeAll(() => {
    ensureCnitool();
  }, 600_000);

  it('bridge + host-local (.conf): ADD gives the pod an address, CHECK passes, DEL removes it', () => {
    const f = makeFixture();
    writeFileSync(
      join(f.confDir, '10-bridge.conf'),
      JSON.stringify({ cniVersion: '1.0.0', name: f.network, ...bridgePlugin(f) }),
    );

    const ip = expectAdded(f, call(f, 'add'));

    const check = call(f, 'check');
    expect(check.status, check.stderr).toBe(0);

    const del = call(f, 'del');
    expect(del.status, del.stderr).toBe(0);
    expectDeleted(f, ip);

    // CHECK has something to check: without the cached result it fails.
    expect(call(f, 'check').status).not.toBe(0);
    // DEL is idempotent.
    expect(call(f, 'del').status).toBe(0);
  });

  it('bridge + host-local then portmap (.conflist, CAP_ARGS portMappings)', () => {
    // Dual-stack, so the harness covers IPv6 too.
    const f = makeFixture();
    writeFileSync(
      join(f.confDir, '10-chain.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: f.network,
        plugins: [bridgePlugin(f, true), { type: 'portmap', capabilities: { portMappings: true }, snat: true }],
      }),
    );
    const capabilityArgs = { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] };
    const nat = () => inNetns(f.node, 'iptables-save', ['-t', 'nat']);
    const nat6 = () => inNetns(f.node, 'ip6tables-save', ['-t', 'nat']);

    const add = call(f, 'add', { capabilityArgs });
    const ip = expectAdded(f, add);
    const podIp = ip.split('/')[0]!;
    const ip6: string = add.result.ips.find((i: any) => i.address.includes(':'))?.address;
    expect(ip6).toMatch(new RegExp(`^${v6Prefix(f)}:[0-9a-f]+/64$`));
    const podIp6 = ip6.split('/')[0]!;
    expect(podAddrs(f, 'inet6')).toEqual([ip6]);
    expect(nat()).toMatch(new RegExp(`--dport 18080 .*-j DNAT --to-destination ${podIp.replaceAll('.', '\\.')}:80`));
    expect(nat6()).toMatch(new RegExp(`--dport 18080 .*-j DNAT --to-destination \\[${podIp6}\\]:80`));

    // Debian's portmap (plugins 1.1.1) cannot pass CHECK where ip6tables
    // works: it checks the IPv6 nat table for the IPv4 rules as well
    // (containernetworking/plugins#819, fixed upstream after 1.1.1). Accept
    // exactly that failure, which still proves bridge and host-local passed
    // CHECK before it (libcni runs the chain in order).
    const check = call(f, 'check', { capabilityArgs });
    if (check.status !== 0) expect(check.stderr).toMatch(/^could not check ipv6 dnat: rule .*--to-destination 10\./);

    const del = call(f, 'del', { capabilityArgs });
    expect(del.status, del.stderr).toBe(0);
    expectDeleted(f, ip);
    expect(nat()).not.toContain('--dport 18080');
    expect(nat6()).not.toContain('--dport 18080');
    expect(existsSync(join(f.dataDir, f.network, podIp6))).toBe(false);
  });
});
