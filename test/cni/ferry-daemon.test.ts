// Daemon mode: `ferry daemon` runs inside the node netns and serves the
// frontend binary over a unix socket; cnitool reaches it through
// FERRY_CNI_SOCKET. Who answered is read from the plugin's log, whose every
// line carries the pid of the process that wrote it. Without a daemon (no
// socket, or a stale one) the frontend falls back to the in-process plugin,
// and both share one state: either can undo what the other did.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../support/netns.js';
import {
  alive,
  CLI,
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
  netnsPath,
  podNetns,
  prepareClients,
  runFrontend,
  startDaemon,
  writeConflist,
  type FerryFixture,
} from '../support/ferry.js';

const K8S_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-0;K8S_POD_UID=11111111-2222-3333-4444-555555555555';

/** The pids that logged each verb's "done" or "failed" line, in order. */
function answeredBy(f: FerryFixture): Array<{ cmd: string; pid: number }> {
  return readFileSync(f.logFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => / done$/.test(l.msg) || /^failed: /.test(l.msg))
    .map((l) => ({ cmd: l.cmd, pid: l.pid }));
}

describe.skipIf(!isRoot)('ferry daemon mode (needs root: namespaces, veths)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['routed', 'bridge'] as const) {
    it(`cnitool → frontend → daemon (${mode}): ADD, CHECK, DEL all served by the daemon`, async () => {
      const f = ferryFixture('fyd');
      const pod = podNetns('fyd-pod');
      writeConflist(f, '1.0.0', [ferryPlugin(f, { mode })]);
      const daemon = await startDaemon(f);
      const socket = daemon.socket;

      const add = ferryCnitool(f, 'add', pod, { socket, args: K8S_ARGS });
      expect(add.status, add.stderr).toBe(0);
      expect(add.result.ips).toHaveLength(2);
      expect(endpointRecord(f, cnitoolContainerId(pod)).k8s).toEqual({
        podNamespace: 'kube-system',
        podName: 'coredns-0',
        podUid: '11111111-2222-3333-4444-555555555555',
      });
      const check = ferryCnitool(f, 'check', pod, { socket, args: K8S_ARGS });
      expect(check.status, check.stderr).toBe(0);
      const del = ferryCnitool(f, 'del', pod, { socket, args: K8S_ARGS });
      expect(del.status, del.stderr).toBe(0);
      expectNothingLeft(f, 'DEL through the daemon');

      expect(answeredBy(f)).toEqual([
        { cmd: 'ADD', pid: daemon.pid },
        { cmd: 'CHECK', pid: daemon.pid },
        { cmd: 'DEL', pid: daemon.pid },
      ]);
      expect(alive(daemon.pid)).toBe(true);
      await daemon.stop();
      expect(alive(daemon.pid)).toBe(false);
    });
  }

  it('fallback: with no daemon the same calls run in-process; state is shared both ways', async () => {
    const f = ferryFixture('fyd');
    const [p1, p2] = [podNetns('fyd-pod'), podNetns('fyd-pod')];
    writeConflist(f, '1.0.0', [ferryPlugin(f)]);

    // No socket at all: in-process.
    const add1 = ferryCnitool(f, 'add', p1);
    expect(add1.status, add1.stderr).toBe(0);

    // A daemon: it CHECKs what the in-process plugin added, and ADDs p2.
    const daemon = await startDaemon(f);
    expect(ferryCnitool(f, 'check', p1, { socket: daemon.socket }).status).toBe(0);
    const add2 = ferryCnitool(f, 'add', p2, { socket: daemon.socket });
    expect(add2.status, add2.stderr).toBe(0);
    expect(add2.result.ips.map((i: any) => i.address)).not.toEqual(add1.result.ips.map((i: any) => i.address));
    await daemon.stop();

    // The daemon is gone (its socket with it): in-process again, undoing what the daemon did.
    const check2 = ferryCnitool(f, 'check', p2, { socket: daemon.socket });
    expect(check2.status, check2.stderr).toBe(0);
    for (const pod of [p1, p2]) {
      const del = ferryCnitool(f, 'del', pod, { socket: daemon.socket });
      expect(del.status, del.stderr).toBe(0);
    }
    expectNothingLeft(f, 'DEL');

    const pids = answeredBy(f);
    expect(pids.map((p) => p.cmd)).toEqual(['ADD', 'CHECK', 'ADD', 'CHECK', 'DEL', 'DEL']);
    expect(pids.map((p) => p.pid === daemon.pid)).toEqual([false, true, true, false, false, false]);
  });

  it('fallback: a stale socket left by a killed daemon is not an error', async () => {
    const f = ferryFixture('fyd');
    const pod = podNetns('fyd-pod');
    writeConflist(f, '1.0.0', [ferryPlugin(f, { family: 'v4' })]);
    const daemon = await startDaemon(f);
    process.kill(daemon.pid, 'SIGKILL');
    while (alive(daemon.pid)) await new Promise((r) => setTimeout(r, 10));

    const add = ferryCnitool(f, 'add', pod, { socket: daemon.socket });
    expect(add.status, add.stderr).toBe(0);
    expect(ferryCnitool(f, 'del', pod, { socket: daemon.socket }).status).toBe(0);
    expectNothingLeft(f, 'DEL');
    expect(answeredBy(f).every((p) => p.pid !== daemon.pid)).toBe(true);
  });

  it('the daemon serves GC and STATUS (1.1.0) and errors, and survives a malformed frame', async () => {
    const f = ferryFixture('fyd');
    const pod = podNetns('fyd-pod');
    const daemon = await startDaemon(f);
    const socket = daemon.socket;
    const conf = ferryConf(f, '1.1.0');

    // A frame that breaks the limits (2^31 environment variables): the daemon drops the connection.
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(socket, () => c.write(Buffer.from([0, 0, 0, 0x80])));
      c.on('close', () => resolve());
      c.on('error', reject);
      c.resume();
    });
    expect(alive(daemon.pid)).toBe(true);

    const status = await runFrontend(f, { socket, env: { CNI_COMMAND: 'STATUS' }, stdin: conf });
    expect(status.status, status.stdout).toBe(0);
    expect(status.stdout).toBe('');

    const add = await runFrontend(f, { socket, env: cniEnv('ADD', 'gc-me', pod), stdin: conf });
    expect(add.status, add.stdout).toBe(0);
    expect(ipRecords(f)).toHaveLength(2);
    expect(hostVeths(f)).toHaveLength(1);

    const bad = await runFrontend(f, { socket, env: cniEnv('ADD', 'gc-me', pod, 'eth/1'), stdin: conf });
    expect(bad.status).toBe(1);
    expect(bad.json).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_IFNAME "eth/1"') });

    const gc = await runFrontend(f, { socket, env: { CNI_COMMAND: 'GC' }, stdin: { ...conf, 'cni.dev/valid-attachments': [] } });
    expect(gc.status, gc.stdout).toBe(0);
    expectNothingLeft(f, 'GC');
    expect(answeredBy(f).map((p) => [p.cmd, p.pid === daemon.pid])).toEqual([
      ['STATUS', true],
      ['ADD', true],
      ['ADD', true],
      ['GC', true],
    ]);
  });

  it('a second daemon on the same socket refuses to start, and the first keeps serving', async () => {
    const f = ferryFixture('fyd');
    const pod = podNetns('fyd-pod');
    const daemon = await startDaemon(f);
    const second = spawnSync('nsenter', [`--net=${netnsPath(f.node)}`, '--', process.execPath, CLI, 'daemon', '--cni-socket', daemon.socket], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(second.status, second.stderr).not.toBe(0);
    expect(second.stderr).toContain(`CNI socket ${daemon.socket}: another ferry daemon is listening on it`);

    const add = await runFrontend(f, { socket: daemon.socket, env: cniEnv('ADD', 'still-1', pod), stdin: ferryConf(f, '1.0.0') });
    expect(add.status, add.stdout).toBe(0);
    const del = await runFrontend(f, { socket: daemon.socket, env: cniEnv('DEL', 'still-1', pod), stdin: ferryConf(f, '1.0.0') });
    expect(del.status, del.stdout).toBe(0);
    expectNothingLeft(f, 'DEL');
    expect(answeredBy(f).map((p) => p.pid)).toEqual([daemon.pid, daemon.pid]);
  });

  it('VERSION: the same answer in-process and through the daemon, with or without a config', async () => {
    const f = ferryFixture('fyd');
    const daemon = await startDaemon(f);
    const supportedVersions = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
    for (const socket of [undefined, daemon.socket]) {
      for (const [stdin, cniVersion] of [['{"cniVersion":"0.4.0"}', '0.4.0'], ['', '1.1.0'], [JSON.stringify(ferryConf(f, '1.0.0')), '1.0.0']] as const) {
        const r = await runFrontend(f, { socket, env: { CNI_COMMAND: 'VERSION' }, stdin });
        expect(r.status, r.stdout).toBe(0);
        expect(r.json).toEqual({ cniVersion, supportedVersions });
      }
    }
  });
});
