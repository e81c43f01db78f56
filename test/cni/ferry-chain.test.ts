// ferry in plugin chains, run by libcni's cnitool:
// - ferry first, then the reference portmap and bandwidth plugins: they
//   work from ferry's result (DNAT to ferry's pod IP, tbf on ferry's host
//   veth), traffic flows through the port mapping, and DEL removes it all;
// - ferry after another plugin: it returns the prevResult with its own
//   additions (libcni passes a stub plugin's result to ferry), and so does a
//   direct call of the frontend with a prevResult on stdin (CNI 1.1.0, which
//   libcni 1.1.2 cannot drive).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newProber, openNetns } from '../support/probing.js';
import { referencePluginDir } from '../support/cnitool.js';
import { isRoot, run } from '../support/netns.js';
import {
  addNodeAddresses,
  bridgeName,
  cniEnv,
  cnitoolContainerId,
  endpointRecord,
  expectNothingLeft,
  ferryCnitool,
  ferryConf,
  ferryFixture,
  ferryPlugin,
  FRONTEND,
  hostVeths,
  inNode,
  ipRecords,
  netnsPath,
  NODE_V4,
  NODE_V6,
  podAddrs,
  podNetns,
  prepareClients,
  runFrontend,
  writeConflist,
  type FerryFixture,
} from '../support/ferry.js';


const PORT_MAPPINGS = [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }];
// Bits per second and bits, as the bandwidth capability has them.
const BANDWIDTH = { ingressRate: 8_000_000, ingressBurst: 800_000, egressRate: 16_000_000, egressBurst: 1_600_000 };

const nat = (f: FerryFixture) => inNode(f, 'iptables-save', ['-t', 'nat']);
const nat6 = (f: FerryFixture) => inNode(f, 'ip6tables-save', ['-t', 'nat']);
const qdiscs = (f: FerryFixture) => JSON.parse(inNode(f, 'tc', ['-j', 'qdisc', 'show'])) as any[];
const links = (f: FerryFixture) => JSON.parse(inNode(f, 'ip', ['-j', 'link', 'show'])) as any[];

/** A CNI plugin that reports one interface and address of its own on ADD, so ferry has a prevResult. */
function stubPlugin(f: FerryFixture): string {
  const dir = join(f.dir, 'plugins');
  mkdirSync(dir);
  const result = (netns: string) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net9', mac: '02:00:00:00:00:09', sandbox: netns }],
      ips: [{ interface: 0, address: '198.51.100.7/24', gateway: '198.51.100.1' }],
      dns: { nameservers: ['198.51.100.53'], search: ['pre.example'] },
    });
  writeFileSync(
    join(dir, 'stub-pre'),
    [
      '#!/bin/sh',
      '# Reports a result on ADD, nothing on DEL and CHECK.',
      'cat >/dev/null',
      'case "$CNI_COMMAND" in',
      `ADD) printf '%s\\n' '${result('__NETNS__')}' | sed "s#__NETNS__#$CNI_NETNS#" ;;`,
      `VERSION) printf '%s\\n' '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;`,
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(join(dir, 'stub-pre'), 0o755);
  return dir;
}

describe.skipIf(!isRoot)('ferry in plugin chains (needs root: namespaces, iptables, tc)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['routed', 'bridge'] as const) {
    it(`ferry (${mode}) + portmap + bandwidth: DNAT to ferry's pod IPs, tbf on its host veth, traffic through the mapping, DEL removes all`, async () => {
      const f = ferryFixture('fyc');
      const pod = podNetns('fyc-pod');
      addNodeAddresses(f);
      writeConflist(f, '1.0.0', [
        ferryPlugin(f, { mode }),
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
      ]);
      const capabilityArgs = { portMappings: PORT_MAPPINGS, bandwidth: BANDWIDTH };

      const add = ferryCnitool(f, 'add', pod, { capabilityArgs });
      expect(add.status, add.stderr).toBe(0);
      const r = add.result;
      expect(r.cniVersion).toBe('1.0.0');
      // ferry's interfaces and addresses, then bandwidth's ifb device.
      const [hostVeth] = hostVeths(f);
      const ferryIfs = mode === 'routed' ? [hostVeth, 'eth0'] : [bridgeName(f), hostVeth, 'eth0'];
      const names: string[] = r.interfaces.map((i: any) => i.name);
      expect(names.slice(0, ferryIfs.length)).toEqual(ferryIfs);
      expect(names.slice(ferryIfs.length)).toEqual([expect.stringMatching(/^bwp[0-9a-f]+$/)]);
      const ifb = names.at(-1)!;
      expect(r.ips.map((i: any) => i.interface)).toEqual([ferryIfs.length - 1, ferryIfs.length - 1]);
      const [ip4, ip6] = r.ips.map((i: any) => (i.address as string).split('/')[0]!);
      expect(podAddrs(pod).map((a) => a.split('/')[0])).toEqual([ip4, ip6]);

      // portmap: DNAT to ferry's pod addresses, in the node netns's tables.
      expect(nat(f)).toMatch(new RegExp(`--dport 18080 .*-j DNAT --to-destination ${ip4!.replaceAll('.', '\\.')}:80`));
      expect(nat6(f)).toMatch(new RegExp(`--dport 18080 .*-j DNAT --to-destination \\[${ip6}\\]:80`));
      // bandwidth: ingress (to the pod) shaped by tbf on ferry's host veth;
      // egress redirected from the host veth's ingress to the ifb, shaped there.
      const tbf = qdiscs(f).filter((q) => q.kind === 'tbf');
      expect(tbf.map((q) => [q.dev, q.options.rate])).toEqual(
        expect.arrayContaining([
          [hostVeth, BANDWIDTH.ingressRate / 8],
          [ifb, BANDWIDTH.egressRate / 8],
        ]),
      );
      expect(qdiscs(f).some((q) => q.kind === 'ingress' && q.dev === hostVeth)).toBe(true);

      // Traffic: node → its own address:18080 → DNAT → pod:80, both families.
      const prober = newProber();
      const [nodeNs, podNs] = [openNetns(f.node), openNetns(pod)];
      await prober.serveTcp(podNs, ip4!, 80);
      await prober.serveTcp(podNs, ip6!, 80);
      const v4 = await prober.tcpExchange(nodeNs, NODE_V4, 18080, 'via portmap');
      expect(v4.reply).toMatch(new RegExp(`^pong via portmap \\(you are ${NODE_V4.replaceAll('.', '\\.')}:\\d+\\)$`));
      // Right after ADD: the node resolves the pod from its bridge at once (no
      // DAD pending there), but the first neighbour solicitation may be lost
      // and is retried after ~1 s: 5 s leaves room for that.
      const v6 = await prober.tcpExchange(nodeNs, NODE_V6, 18080, 'via portmap6', 5000);
      expect(v6.reply).toMatch(new RegExp(`^pong via portmap6 \\(you are ${NODE_V6}:\\d+\\)$`));

      // CHECK: ferry and bandwidth pass; Debian's portmap 1.1.1 may fail on
      // its own bug (#819: IPv4 rules looked up in the IPv6 table) — exactly that.
      const check = ferryCnitool(f, 'check', pod, { capabilityArgs });
      if (check.status !== 0) expect(check.stderr).toMatch(/^could not check ipv6 dnat: rule .*--to-destination 10\./);

      const del = ferryCnitool(f, 'del', pod, { capabilityArgs });
      expect(del.status, del.stderr).toBe(0);
      expectNothingLeft(f, 'DEL of the chain');
      expect(nat(f)).not.toContain('18080');
      expect(nat6(f)).not.toContain('18080');
      expect(qdiscs(f).filter((q) => q.kind === 'tbf' || q.kind === 'ingress')).toEqual([]);
      expect(links(f).map((l) => l.ifname)).not.toContain(ifb);
    });
  }

  it('ferry after another plugin (cnitool): returns the prevResult with its additions; CHECK and DEL work from the chained result', () => {
    const f = ferryFixture('fyc');
    const pod = podNetns('fyc-pod');
    const stubDir = stubPlugin(f);
    writeConflist(f, '1.0.0', [{ type: 'stub-pre' }, ferryPlugin(f, { extra: { dns: { domain: 'cluster.local' } } })]);
    const pluginPaths = [stubDir, join(FRONTEND, '..'), referencePluginDir()];

    const add = ferryCnitool(f, 'add', pod, { pluginPaths });
    expect(add.status, add.stderr).toBe(0);
    const [hostVeth] = hostVeths(f);
    const ips = add.result.ips.slice(1).map((i: any) => i.address);
    expect(add.result).toEqual({
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'net9', mac: '02:00:00:00:00:09', sandbox: netnsPath(pod) },
        { name: hostVeth, mac: expect.any(String) },
        { name: 'eth0', mac: expect.any(String), sandbox: netnsPath(pod) },
      ],
      ips: [
        { interface: 0, address: '198.51.100.7/24', gateway: '198.51.100.1' },
        { interface: 2, address: expect.stringMatching(/\/32$/), gateway: '169.254.1.1' },
        { interface: 2, address: expect.stringMatching(/\/128$/), gateway: 'fe80::1' },
      ],
      routes: [
        { dst: '0.0.0.0/0', gw: '169.254.1.1' },
        { dst: '::/0', gw: 'fe80::1' },
      ],
      // The stub's servers and search, ferry's domain.
      dns: { nameservers: ['198.51.100.53'], domain: 'cluster.local', search: ['pre.example'] },
    });
    expect(endpointRecord(f, cnitoolContainerId(pod)).ips).toEqual(ips);

    const check = ferryCnitool(f, 'check', pod, { pluginPaths });
    expect(check.status, check.stderr).toBe(0);
    const del = ferryCnitool(f, 'del', pod, { pluginPaths });
    expect(del.status, del.stderr).toBe(0);
    expectNothingLeft(f, 'DEL');
  });

  it('a direct call with a prevResult on stdin (CNI 1.1.0, bridge mode): prevResult first, ferry second, indices shifted', async () => {
    const f = ferryFixture('fyc');
    const pod = podNetns('fyc-pod');
    // What the previous plugin made: net1 with an address (and so its subnet route).
    run('ip', ['-n', pod, 'link', 'add', 'net1', 'address', '02:00:00:00:00:0b', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'net1p']);
    run('ip', ['-n', pod, 'addr', 'add', '203.0.113.5/24', 'dev', 'net1']);
    run('ip', ['-n', pod, 'link', 'set', 'net1p', 'up']);
    run('ip', ['-n', pod, 'link', 'set', 'net1', 'up']);
    const prevResult = {
      cniVersion: '1.1.0',
      interfaces: [
        { name: 'host-a', mac: '02:00:00:00:00:0a' },
        { name: 'net1', mac: '02:00:00:00:00:0b', mtu: 9000, sandbox: netnsPath(pod) },
      ],
      ips: [{ interface: 1, address: '203.0.113.5/24' }],
      routes: [{ dst: '203.0.113.0/24', scope: 253 }],
      dns: { nameservers: ['203.0.113.53'] },
    };
    const stdin = { ...ferryConf(f, '1.1.0', { mode: 'bridge', family: 'dual' }), prevResult };
    const add = await runFrontend(f, { env: cniEnv('ADD', 'direct-1', pod), stdin });
    expect(add.status, add.stdout + add.stderr).toBe(0);
    const r = add.json;
    expect(r.cniVersion).toBe('1.1.0');
    expect(r.interfaces.slice(0, 2)).toEqual(prevResult.interfaces);
    expect(r.interfaces.slice(2).map((i: any) => i.name)).toEqual([bridgeName(f), hostVeths(f)[0], 'eth0']);
    expect(r.interfaces[4]).toMatchObject({ sandbox: netnsPath(pod), mtu: 1500 }); // mtu: a 1.1.0 field
    expect(r.ips[0]).toEqual(prevResult.ips[0]);
    expect(r.ips.slice(1)).toEqual([
      { interface: 4, address: expect.stringMatching(new RegExp(`^${f.v4.replaceAll('.', '\\.')}\\.\\d+/24$`)), gateway: `${f.v4}.1` },
      { interface: 4, address: expect.stringMatching(/\/64$/), gateway: `${f.v6}1` },
    ]);
    expect(r.routes).toEqual([
      { dst: '203.0.113.0/24', scope: 253 },
      { dst: '0.0.0.0/0', gw: `${f.v4}.1` },
      { dst: '::/0', gw: `${f.v6}1` },
    ]);
    expect(r.dns).toEqual({ nameservers: ['203.0.113.53'] });
    expect(ipRecords(f)).toHaveLength(2);

    // CHECK with the chained result as prevResult: ferry checks its own interface only.
    const check = await runFrontend(f, { env: cniEnv('CHECK', 'direct-1', pod), stdin: { ...ferryConf(f, '1.1.0', { mode: 'bridge' }), prevResult: r } });
    expect(check.status, check.stdout).toBe(0);
    expect(check.stdout).toBe('');

    const del = await runFrontend(f, { env: cniEnv('DEL', 'direct-1', pod), stdin: { ...ferryConf(f, '1.1.0', { mode: 'bridge' }), prevResult: r } });
    expect(del.status, del.stdout).toBe(0);
    expectNothingLeft(f, 'DEL');
  });
});
