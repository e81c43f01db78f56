// runCni against 10,000 generated invocations (seeded; FERRY_FUZZ_SEED and
// FERRY_FUZZ_CASES override). Whatever arrives, every call must finish, print
// nothing or exactly one JSON document — a result in the config's version, a
// VERSION answer, or a spec error object — exit 0 exactly when there is no
// error, and never leak a stack trace.
import { describe, expect, it } from 'vitest';
import { appendResult } from '../../plugin/cni/chain.js';
import { runCni, type CniOutput } from '../../plugin/cni/dispatch.js';
import { CniError } from '../../plugin/cni/errors.js';
import type { CniHandlers, CniRequest } from '../../plugin/cni/request.js';
import { emptyResult } from '../../plugin/cni/result.js';
import { SUPPORTED_VERSIONS } from '../../plugin/cni/versions.js';
import { podResult, silent } from './fixtures.js';
import { makeCase, Rng, type FuzzCase } from './fuzz-inputs.js';

const SEED = Number(process.env.FERRY_FUZZ_SEED ?? 0xf3a7c0de);
const CASES = Number(process.env.FERRY_FUZZ_CASES ?? 10_000);
const WATCHDOG_MS = 2_000;

function handlersFor(c: FuzzCase, seen: CniRequest[]): CniHandlers {
  const act = async (req: CniRequest) => {
    seen.push(req);
    switch (c.behaviour) {
      case 'cniError':
        throw new CniError(3, 'container gone', 'fuzz');
      case 'error':
        throw new Error('fuzz handler failed');
      case 'errno':
        throw Object.assign(new Error('fuzz EIO'), { code: 'EIO', errno: -5 });
      case 'string':
        throw 'fuzz string';
      default:
        return undefined;
    }
  };
  return {
    add: async (req) => {
      await act(req);
      if (c.behaviour === 'badResult') return { ...emptyResult(), ips: [{ address: 'not-an-ip' }] };
      if (c.behaviour === 'noResult') return undefined as never;
      return appendResult(req.prevResult, podResult(req.netns));
    },
    del: act,
    check: act,
    status: act,
    gc: act,
  };
}

const ERROR_KEYS = new Set(['cniVersion', 'code', 'msg', 'details']);

/** An independent reading of the spec's result shape per version (not result.ts's). */
function resultProblem(o: Record<string, unknown>, version: string): string | undefined {
  const legacy = version.startsWith('0.');
  const v11 = version === '1.1.0';
  const only = (x: unknown, keys: string[], what: string) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return `${what} is not an object`;
    const extra = Object.keys(x).filter((k) => !keys.includes(k));
    return extra.length ? `${what} has ${extra.join(',')}` : undefined;
  };
  const top = only(o, ['cniVersion', 'interfaces', 'ips', 'routes', 'dns'], 'result');
  if (top) return top;
  if (o.cniVersion !== version) return `cniVersion ${String(o.cniVersion)} != ${version}`;
  for (const i of (o.interfaces as unknown[]) ?? []) {
    const p = only(i, v11 ? ['name', 'mac', 'mtu', 'sandbox', 'socketPath', 'pciID'] : ['name', 'mac', 'sandbox'], 'interface');
    if (p) return p;
  }
  for (const ip of (o.ips as Array<Record<string, unknown>>) ?? []) {
    const p = only(ip, legacy ? ['version', 'interface', 'address', 'gateway'] : ['interface', 'address', 'gateway'], 'ip');
    if (p) return p;
    if (legacy !== (ip.version === '4' || ip.version === '6')) return `ip version ${String(ip.version)} in ${version}`;
    if (typeof ip.address !== 'string' || !ip.address.includes('/')) return 'ip address not CIDR';
  }
  for (const r of (o.routes as unknown[]) ?? []) {
    const p = only(r, v11 ? ['dst', 'gw', 'mtu', 'advmss', 'priority', 'table', 'scope'] : ['dst', 'gw'], 'route');
    if (p) return p;
  }
  return undefined;
}

function check(c: FuzzCase, out: CniOutput, seen: CniRequest[]): string | undefined {
  if (out.exitCode !== 0 && out.exitCode !== 1) return `exit code ${out.exitCode}`;
  // Inputs are echoed JSON-quoted, so a real stack frame is a line of its own once decoded;
  // text that merely came from the input (even a fake frame) never is.
  const input = JSON.stringify(c);
  if (!input.includes('Error:') && out.stdout.includes('Error:')) return '"Error:" on stdout';
  if (!input.includes('node:internal') && out.stdout.includes('node:internal')) return 'node internals on stdout';
  const command = c.env.CNI_COMMAND;

  if (out.stdout === '') {
    if (out.exitCode !== 0) return 'failure without an error object';
    if (!['DEL', 'CHECK', 'STATUS', 'GC'].includes(command ?? '')) return `empty success for ${command}`;
    return undefined;
  }
  if (!out.stdout.endsWith('\n')) return 'stdout not newline-terminated';
  let doc: unknown;
  try {
    doc = JSON.parse(out.stdout); // one document, or this throws
  } catch {
    return 'stdout is not one JSON document';
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'stdout is not a JSON object';
  const o = doc as Record<string, unknown>;

  if (out.exitCode === 1) {
    if (!Object.keys(o).every((k) => ERROR_KEYS.has(k))) return `error object has ${Object.keys(o).join(',')}`;
    if (!(SUPPORTED_VERSIONS as readonly unknown[]).includes(o.cniVersion)) return `error cniVersion ${String(o.cniVersion)}`;
    if (!Number.isInteger(o.code) || (o.code as number) < 1) return `error code ${String(o.code)}`;
    if (typeof o.msg !== 'string' || o.msg === '') return 'error msg missing';
    if (o.details !== undefined && typeof o.details !== 'string') return 'error details not a string';
    if (/^\s*at\s/m.test(`${o.msg}\n${o.details ?? ''}`)) return 'stack frame in the error object';
    // 999 means "unclassified": only a handler (the fakes here) may cause it, never the protocol layer.
    if (!seen.length && o.code === 999) return `999 before any handler ran: ${String(o.msg)}`;
    // What a handler threw comes out with the mapped code.
    if (seen.length) {
      const want = { cniError: 3, error: 999, errno: 5, string: 999, badResult: 999, noResult: 999, ok: undefined }[c.behaviour];
      if (want !== undefined && o.code !== want) return `handler ${c.behaviour} gave code ${String(o.code)}`;
      if (want === undefined) return `handler succeeded but code ${String(o.code)}`;
    }
    return undefined;
  }

  if ('code' in o) return 'exit 0 with an error code';
  if (command === 'VERSION') {
    return Array.isArray(o.supportedVersions) && typeof o.cniVersion === 'string' ? undefined : 'bad VERSION answer';
  }
  if (command !== 'ADD') return `${command} printed a result`;
  const req = seen[0];
  if (!req) return 'ADD result without a handler call';
  return resultProblem(o, req.cniVersion);
}

async function withWatchdog<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('runCni fuzz', () => {
  it(`survives ${CASES} generated invocations (seed ${SEED.toString(16)})`, async () => {
    const r = new Rng(SEED);
    const codes = new Map<string, number>();
    const started = Date.now();
    for (let n = 0; n < CASES; n++) {
      const c = makeCase(r);
      const seen: CniRequest[] = [];
      const out = await withWatchdog(runCni({ env: c.env, stdin: c.stdin }, handlersFor(c, seen), { logger: silent }), WATCHDOG_MS);
      const problem = out === 'timeout' ? `no answer within ${WATCHDOG_MS} ms` : check(c, out, seen);
      if (problem) {
        const shown = JSON.stringify({ case: n, seed: SEED, problem, env: c.env, behaviour: c.behaviour, stdin: c.stdin.slice(0, 2000), out });
        expect.fail(`fuzz case ${n} (FERRY_FUZZ_SEED=${SEED}): ${problem}\n${shown}`);
      }
      const o = out as CniOutput;
      const key = o.exitCode === 0 ? `ok ${c.env.CNI_COMMAND}` : `code ${(JSON.parse(o.stdout) as { code: number }).code}`;
      codes.set(key, (codes.get(key) ?? 0) + 1);
      // Same input, same answer (the request id lives only in the log).
      if (n % 97 === 0) {
        const again = await runCni({ env: c.env, stdin: c.stdin }, handlersFor(c, []), { logger: silent });
        expect(again).toEqual(o);
      }
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`fuzz: ${CASES} cases in ${seconds.toFixed(1)} s:`, Object.fromEntries([...codes].sort()));
    // The generator must reach every path, or the run proves little.
    for (const key of ['ok ADD', 'ok DEL', 'ok CHECK', 'ok STATUS', 'ok GC', 'ok VERSION', 'code 1', 'code 2', 'code 3', 'code 4', 'code 5', 'code 6', 'code 7', 'code 999']) {
      expect([key, (codes.get(key) ?? 0) > 0]).toEqual([key, true]);
    }
  }, 60_000);
});
