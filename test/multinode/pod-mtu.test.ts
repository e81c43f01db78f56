// Pods' MTU in vxlan mode (plugin/network/mtu.ts): with `vxlanDevice` in the
// CNI config, ADD gives the pod's veth pair the device's MTU; an explicit
// `mtu` wins; without the device yet, ADD answers code 11 (try again later)
// before IPAM is touched. The device is made with ip, as the daemon
// would have made it.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { ip } from '../support/handle.js';
import { ipJson, isRoot, makeNetns } from '../support/netns.js';
import { openNetns } from '../support/probing.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function node() {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-mn-mtu-'));
  dirs.push(dir);
  const ns = makeNetns('mnm-node');
  ip(ns, 'link', 'set', 'lo', 'up');
  const handlers = createHandlers({ nodeNetns: openNetns(ns) });
  const add = async (extra: object) => {
    const pod = makeNetns('mnm-pod');
    const conf = {
      cniVersion: '1.0.0',
      name: 'mtu',
      type: 'ferry',
      logFile: join(dir, 'cni.log'),
      dataDir: join(dir, 'state'),
      ebpf: { pinRoot: join(dir, 'no-dataplane') },
      ipam: { type: 'ferry', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.244.1.0/24' }]] },
      ...extra,
    };
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `mtu-${pod}`, CNI_NETNS: `/var/run/netns/${pod}`, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: JSON.stringify(conf) }, handlers);
    return { out, pod, json: JSON.parse(out.stdout || '{}') };
  };
  return { ns, dir, add };
}

const mtuOf = (ns: string, dev: string): number => ipJson<any[]>(ns, ['link', 'show', 'dev', dev])[0].mtu;

describe.skipIf(!isRoot)('pod MTU from the vxlan device (needs root)', () => {
  it('takes the MTU of the device the config names; an explicit mtu wins', async () => {
    const { ns, add } = node();
    ip(ns, 'link', 'add', 'ferry.vxlan', 'mtu', '1370', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning');
    const a = await add({ vxlanDevice: 'ferry.vxlan' });
    expect(a.out.exitCode, a.out.stdout).toBe(0);
    expect(mtuOf(a.pod, 'eth0')).toBe(1370);
    expect(mtuOf(ns, a.json.interfaces[0].name), 'the host end too').toBe(1370);
    const b = await add({ vxlanDevice: 'ferry.vxlan', mtu: 1300 });
    expect(mtuOf(b.pod, 'eth0')).toBe(1300);
  });

  it('answers code 11 while the device does not exist, before touching IPAM', async () => {
    const { dir, add } = node();
    const r = await add({ vxlanDevice: 'ferry.vxlan' });
    expect(r.out.exitCode).toBe(1);
    expect(r.json).toMatchObject({ code: 11, msg: expect.stringContaining('vxlanDevice "ferry.vxlan" is not in the node\'s namespace') });
    expect(existsSync(join(dir, 'ipam')), 'IPAM was not even opened').toBe(false);
  });
});
