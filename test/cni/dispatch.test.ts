// runCni end to end with fake verbs: what reaches the handlers, and what the
// runtime reads on stdout for every outcome.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { netlinkError } from '../../engine/netlink/errors.js';
import { appendResult } from '../../plugin/cni/chain.js';
import { runCni } from '../../plugin/cni/dispatch.js';
import { CniError, pluginNotAvailable } from '../../plugin/cni/errors.js';
import { createLogger } from '../../plugin/cni/log.js';
import type { AddRequest, CheckRequest, DelRequest, GcRequest } from '../../plugin/cni/request.js';
import { convertResult, parseResult } from '../../plugin/cni/result.js';
import { readStdin } from '../../plugin/cni/stdio.js';
import { SUPPORTED_VERSIONS } from '../../plugin/cni/versions.js';
import { env, fakeHandlers, podResult, silent, stdin } from './fixtures.js';

const run = (e: Record<string, string | undefined>, s: string, h = fakeHandlers()) => runCni({ env: e, stdin: s }, h, { logger: silent });

async function failure(e: Record<string, string | undefined>, s: string, h = fakeHandlers()) {
  const out = await run(e, s, h);
  expect(out.exitCode).toBe(1);
  expect(out.stdout.endsWith('}\n')).toBe(true);
  return JSON.parse(out.stdout) as { cniVersion: string; code: number; msg: string; details?: string };
}

// A prevResult in each version's own shape, as the plugin before ferry wrote it.
function prevResultIn(v: string): Record<string, unknown> {
  return convertResult(
    parseResult({ interfaces: [{ name: 'cni0', mac: '00:11:22:33:44:55' }], ips: [{ address: '10.1.0.5/16', gateway: '10.1.0.1', interface: 0 }], routes: [{ dst: '10.0.0.0/8' }] }),
    v as never,
  ) as unknown as Record<string, unknown>;
}

describe('runCni ADD', () => {
  it('hands the handler everything parsed, and writes its result in the config\'s version', async () => {
    for (const v of SUPPORTED_VERSIONS) {
      const h = fakeHandlers();
      const out = await run(env('ADD'), stdin(v), h);
      expect(out.exitCode).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual(convertResult(podResult(), v));
      const req = h.calls[0] as AddRequest;
      expect(req).toMatchObject({
        command: 'ADD',
        cniVersion: v,
        containerId: '8f1b2c3d4e5f',
        netns: '/var/run/netns/cni-1234',
        ifname: 'eth0',
        k8s: { podNamespace: 'default', podName: 'web-0' },
        path: ['/opt/cni/bin'],
        conf: { name: 'k8s-pod-network', mode: 'routed', cniVersion: v },
      });
      expect(req.prevResult).toBeUndefined();
      expect(req.requestId).toMatch(/^[0-9a-f]{8}$/);
      expect(typeof req.log.info).toBe('function');
    }
  });

  it('passes a prevResult of every version on, in that version\'s shape', async () => {
    for (const v of SUPPORTED_VERSIONS) {
      const prev = prevResultIn(v);
      const h = fakeHandlers({ add: async (req) => appendResult(req.prevResult, podResult()) });
      const out = await run(env('ADD'), stdin(v, { prevResult: prev }), h);
      expect(out.exitCode).toBe(0);
      const wire = JSON.parse(out.stdout);
      expect(wire.cniVersion).toBe(v);
      expect(wire.interfaces[0]).toEqual((prev.interfaces as unknown[])[0]);
      expect(wire.ips[0]).toEqual((prev.ips as unknown[])[0]);
      expect(wire.ips[1].interface).toBe(2); // ferry's eth0, after cni0 and the host veth
      expect(wire.routes[0]).toEqual({ dst: '10.0.0.0/8' });
      expect(wire.ips.every((ip: { version?: string }) => (ip.version !== undefined) === v.startsWith('0.'))).toBe(true);
    }
  });

  it('refuses a malformed prevResult with 7', async () => {
    const err = await failure(env('ADD'), stdin('1.0.0', { prevResult: { ips: [{ address: 'nope' }] } }));
    expect(err).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'prevResult.ips[0].address "nope": expected an address with a /prefix, e.g. 10.1.0.0/16' });
  });

  it('refuses what ferry cannot honour with 2', async () => {
    expect(await failure(env('ADD'), stdin('1.1.0', { ipMasq: true }))).toMatchObject({ code: 2, msg: expect.stringMatching(/^ipMasq true: /) });
  });

  it('reports a result ferry built wrong as 999, not as the runtime\'s fault', async () => {
    const bad = fakeHandlers({ add: async () => ({ ...podResult(), ips: [{ address: '10.0.0.1' }] }) });
    expect(await failure(env('ADD'), stdin(), bad)).toEqual({
      cniVersion: '1.1.0',
      code: 999,
      msg: 'ferry built an invalid result: result.ips[0].address "10.0.0.1": expected an address with a /prefix, e.g. 10.1.0.0/16',
    });
    const none = fakeHandlers({ add: async () => undefined as never });
    expect((await failure(env('ADD'), stdin(), none)).msg).toBe('ferry built no result for ADD');
  });
});

describe('runCni DEL, CHECK, STATUS, GC', () => {
  it('DEL succeeds silently, without a netns, and despite unsupported fields', async () => {
    const h = fakeHandlers();
    const out = await run(env('DEL', { CNI_NETNS: undefined }), stdin('0.3.0', { ipMasq: true }), h);
    expect(out).toEqual({ stdout: '', exitCode: 0 });
    expect(h.calls[0]).toMatchObject({ command: 'DEL', netns: '', containerId: '8f1b2c3d4e5f' });
  });

  it('DEL passes a good prevResult and drops a bad one instead of failing', async () => {
    const h = fakeHandlers();
    await run(env('DEL'), stdin('0.4.0', { prevResult: prevResultIn('0.4.0') }), h);
    expect((h.calls[0] as DelRequest).prevResult?.ips).toEqual([{ address: '10.1.0.5/16', gateway: '10.1.0.1', interface: 0 }]);
    const out = await run(env('DEL'), stdin('0.4.0', { prevResult: { ips: 'garbage' } }), h);
    expect(out).toEqual({ stdout: '', exitCode: 0 });
    expect((h.calls[1] as DelRequest).prevResult).toBeUndefined();
  });

  it('CHECK needs 0.4.0 or later and a prevResult', async () => {
    for (const v of ['0.3.0', '0.3.1']) {
      expect(await failure(env('CHECK'), stdin(v, { prevResult: prevResultIn(v) }))).toEqual({
        cniVersion: v,
        code: 1,
        msg: `CHECK is not part of CNI ${v}; it arrived in 0.4.0`,
      });
    }
    expect(await failure(env('CHECK'), stdin('0.4.0'))).toMatchObject({ code: 7, msg: 'prevResult: required for CHECK (the runtime passes the result of the ADD)' });
    const h = fakeHandlers();
    const out = await run(env('CHECK'), stdin('1.0.0', { prevResult: prevResultIn('1.0.0') }), h);
    expect(out).toEqual({ stdout: '', exitCode: 0 });
    expect((h.calls[0] as CheckRequest).prevResult.interfaces).toEqual([{ name: 'cni0', mac: '00:11:22:33:44:55' }]);
  });

  it('STATUS and GC need 1.1.0 and no attachment variables', async () => {
    for (const cmd of ['STATUS', 'GC']) {
      expect(await failure({ CNI_COMMAND: cmd }, stdin('1.0.0'))).toEqual({ cniVersion: '1.0.0', code: 1, msg: `${cmd} is not part of CNI 1.0.0; it arrived in 1.1.0` });
    }
    const h = fakeHandlers();
    expect(await run({ CNI_COMMAND: 'STATUS' }, stdin('1.1.0'), h)).toEqual({ stdout: '', exitCode: 0 });
    expect(h.calls[0]).toMatchObject({ command: 'STATUS', cniVersion: '1.1.0' });
    expect(h.calls[0]).not.toHaveProperty('containerId');
  });

  it('STATUS reports a handler\'s "not available" as 50', async () => {
    const h = fakeHandlers({ status: async () => Promise.reject(pluginNotAvailable('IPAM pool 10.244.1.0/24 exhausted')) });
    expect(await failure({ CNI_COMMAND: 'STATUS' }, stdin(), h)).toEqual({ cniVersion: '1.1.0', code: 50, msg: 'IPAM pool 10.244.1.0/24 exhausted' });
  });

  it('GC gets the valid attachments and refuses to run without them', async () => {
    const h = fakeHandlers();
    const attachments = [{ containerID: 'a1', ifname: 'eth0' }, { containerID: 'b2', ifname: 'net1' }];
    expect(await run({ CNI_COMMAND: 'GC' }, stdin('1.1.0', { 'cni.dev/valid-attachments': attachments }), h)).toEqual({ stdout: '', exitCode: 0 });
    expect((h.calls[0] as GcRequest).validAttachments).toEqual(attachments);
    expect(await failure({ CNI_COMMAND: 'GC' }, stdin('1.1.0'))).toMatchObject({ code: 7, msg: expect.stringMatching(/^cni\.dev\/valid-attachments: required for GC/) });
    // An empty list is a real answer: nothing is valid any more.
    expect((await run({ CNI_COMMAND: 'GC' }, stdin('1.1.0', { 'cni.dev/valid-attachments': [] }))).exitCode).toBe(0);
  });
});

describe('runCni VERSION', () => {
  const all = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
  it('answers from stdin\'s cniVersion alone, or 1.1.0 on empty stdin', async () => {
    const h = fakeHandlers();
    expect(JSON.parse((await run({ CNI_COMMAND: 'VERSION' }, '', h)).stdout)).toEqual({ cniVersion: '1.1.0', supportedVersions: all });
    expect(JSON.parse((await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}', h)).stdout)).toEqual({ cniVersion: '0.4.0', supportedVersions: all });
    // The whole config is fine too, and so is a version ferry lacks: the answer is how the runtime learns that.
    expect(JSON.parse((await run({ CNI_COMMAND: 'VERSION', CNI_IFNAME: 'a/b' }, stdin('1.0.0'), h)).stdout).cniVersion).toBe('1.0.0');
    expect(JSON.parse((await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.2.0"}', h)).stdout).cniVersion).toBe('0.2.0');
    expect(h.calls).toEqual([]);
  });

  it('says 6 for input that is not a version request', async () => {
    expect(await failure({ CNI_COMMAND: 'VERSION' }, '{"cniVersion": 1}')).toEqual({ cniVersion: '1.1.0', code: 6, msg: 'cniVersion: expected string, got number' });
    expect(await failure({ CNI_COMMAND: 'VERSION' }, '{"cniVersion": "one"}')).toMatchObject({ code: 6, msg: 'cniVersion "one" is not a version (MAJOR.MINOR.PATCH)' });
    expect((await failure({ CNI_COMMAND: 'VERSION' }, '{')).code).toBe(6);
  });
});

describe('runCni errors', () => {
  it('writes early errors in the version stdin claims', async () => {
    expect(await failure(env('ADD', { CNI_IFNAME: 'eth/0' }), stdin('0.4.0'))).toEqual({
      cniVersion: '0.4.0',
      code: 4,
      msg: `CNI_IFNAME "eth/0": interface name must not contain '/'`,
    });
    expect((await failure(env('ADD', { CNI_IFNAME: 'eth/0' }), 'garbage')).cniVersion).toBe('1.1.0');
  });

  it('keeps a handler\'s CniError code and details', async () => {
    const h = fakeHandlers({ add: async () => Promise.reject(new CniError(3, 'container gone', 'netns /var/run/netns/cni-1234 does not exist')) });
    expect(await failure(env('ADD'), stdin('0.3.1'), h)).toEqual({
      cniVersion: '0.3.1',
      code: 3,
      msg: 'container gone',
      details: 'netns /var/run/netns/cni-1234 does not exist',
    });
  });

  it('maps other errors without printing a stack', async () => {
    const cases: Array<[unknown, number, string]> = [
      [new TypeError("Cannot read properties of undefined (reading 'x')"), 999, "Cannot read properties of undefined (reading 'x')"],
      [netlinkError('ip link add', 'veth8f1b2c3d', 17, 'File exists'), 5, 'ip link add veth8f1b2c3d: file already exists (EEXIST): kernel says "File exists"'],
      [Object.assign(new Error('resource busy'), { code: 'EBUSY' }), 11, 'resource busy'],
      ['a string', 999, 'a string'],
      [null, 999, 'non-Error value thrown: null'],
    ];
    for (const [thrown, code, msg] of cases) {
      for (const verb of ['add', 'del'] as const) {
        const h = fakeHandlers({
          [verb]: () => {
            throw thrown;
          },
        });
        const out = await run(env(verb.toUpperCase()), stdin(), h);
        expect(out.exitCode).toBe(1);
        expect(JSON.parse(out.stdout)).toEqual({ cniVersion: '1.1.0', code, msg });
        expect(out.stdout).not.toMatch(/\n\s+at |\.ts:\d+|Error:/);
      }
    }
  });
});

describe('runCni logging', () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const stream = new PassThrough();
    stream.on('data', (d: Buffer) => d.toString().trim().split('\n').forEach((l) => lines.push(JSON.parse(l))));
    return { lines, logger: pino({ level: 'debug' }, stream) };
  }

  it('puts the request id, command and attachment in every line, the stack only in the log', async () => {
    const { lines, logger } = capture();
    const h = fakeHandlers({
      add: async (req) => {
        req.log.debug({ step: 'veth' }, 'creating veth');
        throw new TypeError('boom');
      },
    });
    const out = await runCni({ env: env('ADD'), stdin: stdin() }, h, { logger });
    await new Promise((r) => setImmediate(r));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const req = lines[0]!.req;
    for (const l of lines) {
      expect(l).toMatchObject({ req, cmd: 'ADD', containerId: '8f1b2c3d4e5f', netns: '/var/run/netns/cni-1234', ifname: 'eth0', network: 'k8s-pod-network' });
    }
    const failed = lines.find((l) => l.level === 50)!;
    expect(failed.msg).toBe('failed: boom');
    expect((failed.err as { stack: string }).stack).toMatch(/TypeError: boom\n\s+at /);
    expect(out.stdout).not.toMatch(/\bat /);
  });

  it('logs rejected requests with what came in', async () => {
    const { lines, logger } = capture();
    await runCni({ env: env('ADD', { CNI_IFNAME: 'bad/name' }), stdin: '{' }, fakeHandlers(), { logger });
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ cmd: 'ADD', ifname: 'bad/name', code: 4 });
  });
});

describe('createLogger', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cni-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the log directory and appends JSON lines', () => {
    const file = join(dir, 'nested', 'deeper', 'cni.log');
    const log = createLogger({ logFile: file, logLevel: 'debug' }).child({ req: 'r1' });
    log.debug('one');
    createLogger({ logFile: file }).info('two');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.msg, l.plugin])).toEqual([
      ['one', 'ferry'],
      ['two', 'ferry'],
    ]);
    expect(lines[0].req).toBe('r1');
    expect(lines[0].time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('falls back to stderr when the file cannot be opened, without throwing', () => {
    expect(() => createLogger({ logFile: '/proc/ferry-cannot-exist/cni.log', logLevel: 'error' }).error('still logged')).not.toThrow();
  });
});

describe('readStdin', () => {
  it('reads everything as UTF-8', async () => {
    expect(await readStdin(Readable.from([Buffer.from('{"a":'), Buffer.from('"é"}')]))).toBe('{"a":"é"}');
  });

  it('reads nothing from a terminal', async () => {
    expect(await readStdin(Object.assign(new PassThrough(), { isTTY: true }))).toBe('');
  });

  it('fails with 5 on too much input or a read error', async () => {
    await expect(readStdin(Readable.from([Buffer.alloc(10)]), 5)).rejects.toMatchObject({ code: 5, msg: expect.stringMatching(/larger than 5 bytes/) });
    const broken = new PassThrough();
    const p = readStdin(broken);
    broken.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
    await expect(p).rejects.toMatchObject({ code: 5, msg: 'reading the network config from stdin: EIO: i/o error, read' });
  });
});
