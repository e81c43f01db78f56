// CNI 1.1.0's GC and STATUS, which Debian's libcni (1.1.2) cannot send: the
// frontend binary is executed directly inside the node netns with the
// environment and stdin the spec prescribes (CNI_COMMAND, CNI_PATH, and a
// config carrying cni.dev/valid-attachments for GC).
import { readdirSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isRoot, run } from '../support/netns.js';
import {
  cniEnv,
  endpointFiles,
  expectNothingLeft,
  ferryConf,
  ferryFixture,
  hostVeths,
  ipRecords,
  leftovers,
  linkExists,
  podAddrs,
  podNetns,
  prepareClients,
  runFrontend,
  type FerryFixture,
  type PluginOptions,
} from '../support/ferry.js';

const verbEnv = (command: string) => ({ CNI_COMMAND: command, CNI_PATH: '/usr/lib/cni' });

async function add(f: FerryFixture, o: PluginOptions, containerId: string, pod: string): Promise<any> {
  const r = await runFrontend(f, { env: cniEnv('ADD', containerId, pod), stdin: ferryConf(f, '1.1.0', o) });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return r.json;
}

function gc(f: FerryFixture, o: PluginOptions, valid: Array<{ containerID: string; ifname: string }>) {
  return runFrontend(f, { env: verbEnv('GC'), stdin: { ...ferryConf(f, '1.1.0', o), 'cni.dev/valid-attachments': valid } });
}

function status(f: FerryFixture, o: PluginOptions) {
  return runFrontend(f, { env: verbEnv('STATUS'), stdin: ferryConf(f, '1.1.0', o) });
}

const bare = (r: any) => r.ips.map((i: any) => (i.address as string).split('/')[0]).sort();

describe.skipIf(!isRoot)('GC and STATUS through the frontend binary (needs root: namespaces, veths)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['routed', 'bridge'] as const) {
    it(`GC (${mode}) removes the host veths, IPAM records and endpoint records of unlisted attachments, keeps listed ones and links that are not its own`, async () => {
      const f = ferryFixture('fyg');
      const o: PluginOptions = { mode };
      const [p1, p2, p3] = [podNetns('fyg-pod'), podNetns('fyg-pod'), podNetns('fyg-pod')];
      const keep = await add(f, o, 'keep-1', p1);
      await add(f, o, 'gone-2', p2);
      await add(f, o, 'gone-3', p3);
      expect(ipRecords(f)).toHaveLength(6);
      expect(hostVeths(f)).toHaveLength(3);
      // gone-3 as an ADD that crashed before its endpoint record: GC finds it by its IPAM records.
      rmSync(join(f.stateDir, 'endpoints', f.network, 'gone-3_eth0.json'));
      // Links GC must leave alone: not ferry's, and ferry-named but in none of this network's records.
      run('ip', ['-n', f.node, 'link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1']);
      run('ip', ['-n', f.node, 'link', 'add', 'fy0123456789abc', 'type', 'veth', 'peer', 'name', 'fyother-peer']);

      const r = await gc(f, o, [{ containerID: 'keep-1', ifname: 'eth0' }]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toBe('');

      const keepVeth = keep.interfaces.find((i: any) => /^fy[0-9a-f]{13}$/.test(i.name)).name;
      expect(ipRecords(f)).toEqual(bare(keep));
      expect(endpointFiles(f)).toEqual(['keep-1_eth0.json']);
      expect(hostVeths(f).sort()).toEqual([keepVeth, 'fy0123456789abc'].sort());
      expect(linkExists(f.node, 'other0')).toBe(true);
      expect(linkExists(p2, 'eth0') || linkExists(p3, 'eth0')).toBe(false);
      expect(podAddrs(p1).sort()).toEqual(keep.ips.map((i: any) => i.address).sort());

      // The kept attachment is intact.
      const check = await runFrontend(f, { env: cniEnv('CHECK', 'keep-1', p1), stdin: { ...ferryConf(f, '1.1.0', o), prevResult: keep } });
      expect(check.status, check.stdout).toBe(0);

      // GC is idempotent; with nothing valid, everything of ferry's goes.
      expect((await gc(f, o, [{ containerID: 'keep-1', ifname: 'eth0' }])).status).toBe(0);
      expect(ipRecords(f)).toHaveLength(2);
      const all = await gc(f, o, []);
      expect(all.status, all.stdout).toBe(0);
      expect(leftovers(f)).toEqual({ hostVeths: ['fy0123456789abc'], ipRecords: [], endpoints: [] });
      expect(linkExists(f.node, 'other0')).toBe(true);
    });
  }

  it("GC of one network leaves another ferry network's attachments alone (host veth names do not say their network)", async () => {
    const f = ferryFixture('fyg');
    const [pa, pb] = [podNetns('fyg-pod'), podNetns('fyg-pod')];
    const confA = ferryConf(f, '1.1.0', { family: 'v4' });
    const confB = { ...ferryConf(f, '1.1.0', { family: 'v4', ranges: [[{ subnet: '172.30.0.0/24' }]] }), name: `${f.network}-b` };
    const a = await runFrontend(f, { env: cniEnv('ADD', 'pod-a', pa), stdin: confA });
    const b = await runFrontend(f, { env: cniEnv('ADD', 'pod-b', pb), stdin: confB });
    expect([a.status, b.status], a.stdout + b.stdout).toEqual([0, 0]);
    const vethB = b.json.interfaces[0].name;

    const gcA = await runFrontend(f, { env: verbEnv('GC'), stdin: { ...confA, 'cni.dev/valid-attachments': [] } });
    expect(gcA.status, gcA.stdout).toBe(0);
    expect(leftovers(f)).toEqual({ hostVeths: [vethB], ipRecords: [], endpoints: [] });
    expect(podAddrs(pb)).toEqual(['172.30.0.2/32']);
    expect(readdirSync(join(f.ipamDir, `${f.network}-b`)).filter((n) => isIP(n))).toEqual(['172.30.0.2']);

    const gcB = await runFrontend(f, { env: verbEnv('GC'), stdin: { ...confB, 'cni.dev/valid-attachments': [] } });
    expect(gcB.status, gcB.stdout).toBe(0);
    expect(hostVeths(f)).toEqual([]);
    expect(readdirSync(join(f.ipamDir, `${f.network}-b`)).filter((n) => isIP(n))).toEqual([]);
  });

  it('GC keeps an attachment listed by container id and ifname only (another ifname of the same container goes)', async () => {
    const f = ferryFixture('fyg');
    const o: PluginOptions = { family: 'v4' };
    const [p1, p2] = [podNetns('fyg-pod'), podNetns('fyg-pod')];
    await add(f, o, 'same', p1);
    const net1 = await runFrontend(f, { env: cniEnv('ADD', 'same', p2, 'net1'), stdin: ferryConf(f, '1.1.0', o) });
    expect(net1.status, net1.stdout).toBe(0);
    expect((await gc(f, o, [{ containerID: 'same', ifname: 'eth0' }])).status).toBe(0);
    expect(endpointFiles(f)).toEqual(['same_eth0.json']);
    expect(ipRecords(f)).toHaveLength(1);
    expect(hostVeths(f)).toHaveLength(1);
    expect(linkExists(p2, 'net1')).toBe(false);
  });

  it('GC and STATUS are refused in CNI versions before 1.1.0 (code 1), GC without valid-attachments (code 7)', async () => {
    const f = ferryFixture('fyg');
    for (const verb of ['GC', 'STATUS']) {
      const r = await runFrontend(f, { env: verbEnv(verb), stdin: { ...ferryConf(f, '1.0.0'), 'cni.dev/valid-attachments': [] } });
      expect(r.status).toBe(1);
      expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 1, msg: `${verb} is not part of CNI 1.0.0; it arrived in 1.1.0` });
    }
    const r = await runFrontend(f, { env: verbEnv('GC'), stdin: ferryConf(f, '1.1.0') });
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining('cni.dev/valid-attachments') });
  });

  it('STATUS: nothing and exit 0 while addresses are free; error 50 naming the range when one is exhausted; ADD then fails with 100', async () => {
    const f = ferryFixture('fys');
    // One address in the IPv4 set; the IPv6 set has plenty.
    const o: PluginOptions = {
      ranges: [[{ subnet: `${f.v4}.0/24`, rangeStart: `${f.v4}.9`, rangeEnd: `${f.v4}.9` }], [{ subnet: `${f.v6}/64` }]],
    };
    const [p1, p2] = [podNetns('fys-pod'), podNetns('fys-pod')];

    const before = await status(f, o);
    expect(before.status, before.stdout).toBe(0);
    expect(before.stdout).toBe('');

    const first = await add(f, o, 'first', p1);
    expect(first.ips[0].address).toBe(`${f.v4}.9/32`);

    const full = await status(f, o);
    expect(full.status).toBe(1);
    expect(full.json).toEqual({
      cniVersion: '1.1.0',
      code: 50,
      msg: `no free address: range set 0 (${f.v4}.0/24 ${f.v4}.9-${f.v4}.9): 1/1 used`,
    });

    const second = await runFrontend(f, { env: cniEnv('ADD', 'second', p2), stdin: ferryConf(f, '1.1.0', o) });
    expect(second.status).toBe(1);
    expect(second.json).toMatchObject({ cniVersion: '1.1.0', code: 100, msg: expect.stringContaining(`no free address in range set 0 (${f.v4}.0/24 ${f.v4}.9-${f.v4}.9)`) });
    // The failed ADD took nothing: not the IPv6 address it could have had, no veth, no record.
    expect(ipRecords(f)).toEqual(bare(first));
    expect(hostVeths(f)).toHaveLength(1);
    expect(endpointFiles(f)).toEqual(['first_eth0.json']);
    expect(linkExists(p2, 'eth0')).toBe(false);

    const del = await runFrontend(f, { env: cniEnv('DEL', 'first', p1), stdin: ferryConf(f, '1.1.0', o) });
    expect(del.status, del.stdout).toBe(0);
    const after = await status(f, o);
    expect(after.status, after.stdout).toBe(0);
    expect(after.stdout).toBe('');
    expectNothingLeft(f, 'DEL');
  });

  it('STATUS with a /30 subnet: its one address (the gateway is never handed out) taken is exhaustion', async () => {
    const f = ferryFixture('fys');
    const o: PluginOptions = { family: 'v4', ranges: [[{ subnet: `${f.v4}.0/30` }]] };
    const [p1, p2] = [podNetns('fys-pod'), podNetns('fys-pod')];
    // .0 network, .1 gateway, .3 broadcast: .2 is the only address to hand out.
    await add(f, o, 'a', p1);
    const r = await status(f, o);
    expect(r.json).toMatchObject({ code: 50, msg: expect.stringContaining('1/1 used') });
    const refused = await runFrontend(f, { env: cniEnv('ADD', 'b', p2), stdin: ferryConf(f, '1.1.0', o) });
    expect(refused.json?.code).toBe(100);
  });
});
