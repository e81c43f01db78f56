// Generated inputs for the runCni fuzz test: a seeded PRNG, valid configs and
// environments, and the ways to break them (structure, types, numbers,
// unicode, nesting, truncation, random bytes). Same seed, same cases.
import { convertResult } from '../../plugin/cni/result.js';
import { SUPPORTED_VERSIONS } from '../../plugin/cni/versions.js';
import { conf, podResult } from './fixtures.js';

/** mulberry32: small, fast, and good enough to pick mutations. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
}

const VERBS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'] as const;

const NASTY_STRINGS = [
  '',
  ' ',
  'eth0',
  'a/b',
  '..',
  '\u0000',
  '\u2028\u2029',
  '\ud800',
  '\udfff\ud800',
  '😀🇫🇷',
  'e\u0301',
  '\u202eevil',
  '%s%n',
  '${x}',
  '"quoted"',
  '\\',
  '\n    at fake (/x.js:1:1)',
  '10.0.0.1',
  '10.0.0.0/8',
  'fd00::/64',
  '::ffff:1.2.3.4/120',
  '0a:58:0a:f4:01:05',
  'ferry',
  'host-local',
  '1.1.0',
  '0.4.0',
  '0.3.1',
  '2.0.0',
  '__proto__',
  'constructor',
  'x'.repeat(300),
];

const NUMBERS = [0, -0, 1, -1, 68, 1500, 65535, 65536, 1.5, 1e308, -1e308, 2 ** 53 + 1, 5e-324, 255, 256, 4294967296];

export function randomString(r: Rng): string {
  if (r.chance(0.5)) return r.pick(NASTY_STRINGS);
  const len = r.int(r.chance(0.05) ? 5000 : 24);
  let s = '';
  for (let i = 0; i < len; i++) {
    const k = r.int(5);
    if (k === 0) s += String.fromCharCode(r.int(0x80));
    else if (k === 1) s += String.fromCharCode(r.int(0x10000)); // lone surrogates included
    else if (k === 2) s += String.fromCodePoint(0x10000 + r.int(0xfffff));
    else s += 'abcdefghijklmnopqrstuvwxyz0123456789_.-/:'[r.int(41)];
  }
  return s;
}

export function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick(NUMBERS);
    case 3:
      return (r.next() - 0.5) * 10 ** r.int(20);
    case 4:
      return randomString(r);
    case 5:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    case 6: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(4); i > 0; i--) o[randomString(r)] = randomValue(r, depth + 1);
      return o;
    }
    default:
      return nest(r, randomValue(r, depth + 1), 1 + r.int(r.chance(0.1) ? 200 : 10));
  }
}

function nest(r: Rng, v: unknown, levels: number): unknown {
  for (let i = 0; i < levels; i++) v = r.chance(0.5) ? [v] : { k: v };
  return v;
}

/** A config that parses: some version, some optional fields, maybe a prevResult in that version's shape. */
export function validConfig(r: Rng): Record<string, unknown> {
  const v = r.pick(SUPPORTED_VERSIONS);
  const extra: Record<string, unknown> = {};
  if (r.chance(0.3)) extra.mode = r.pick(['routed', 'bridge']);
  if (r.chance(0.3)) extra.mtu = r.pick([1280, 1450, 1500, 9000]);
  if (r.chance(0.2)) extra.logLevel = r.pick(['debug', 'error']);
  if (r.chance(0.2)) extra.dns = { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] };
  if (r.chance(0.2)) extra.runtimeConfig = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], mac: '0a:58:0a:f4:01:07' };
  if (r.chance(0.2)) extra.capabilities = { portMappings: true };
  if (r.chance(0.4)) extra.prevResult = convertResult(podResult(), v);
  if (r.chance(0.3)) extra['cni.dev/valid-attachments'] = [{ containerID: 'abc', ifname: 'eth0' }];
  if (r.chance(0.2)) extra.otherPlugin = { anything: [1, 'two'] };
  if (r.chance(0.05)) extra.ipMasq = true;
  return conf(v, extra);
}

/** Every [container, key] pair inside `root`, found without recursion. */
function slots(root: unknown): Array<[Record<string | number, unknown>, string | number]> {
  const out: Array<[Record<string | number, unknown>, string | number]> = [];
  const stack = [root];
  while (stack.length && out.length < 500) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    for (const k of Object.keys(node)) {
      const key = Array.isArray(node) ? Number(k) : k;
      out.push([node as Record<string | number, unknown>, key]);
      stack.push((node as Record<string, unknown>)[k]);
    }
  }
  return out;
}

/** Structural mutations of a parsed config, in place. */
export function mutateValue(r: Rng, root: Record<string, unknown>): void {
  const all = slots(root);
  if (!all.length) return;
  const [node, key] = r.pick(all);
  switch (r.int(7)) {
    case 0:
      if (Array.isArray(node)) node.splice(key as number, 1);
      else delete node[key];
      break;
    case 1:
      node[key] = randomValue(r);
      break;
    case 2:
      node[key] = r.pick(NUMBERS);
      break;
    case 3:
      node[key] = randomString(r);
      break;
    case 4:
      node[key] = nest(r, node[key], 1 + r.int(r.chance(0.2) ? 100 : 5));
      break;
    case 5:
      if (!Array.isArray(node)) node[randomString(r)] = randomValue(r);
      break;
    default:
      // JSON.parse makes "__proto__" an own key; make sure ferry treats it as one.
      if (!Array.isArray(node)) Object.defineProperty(node, '__proto__', { value: randomValue(r), enumerable: true, configurable: true, writable: true });
  }
}

/** Text-level damage: truncation, flipped and inserted characters, number literals JSON.stringify cannot write. */
export function mutateText(r: Rng, text: string): string {
  switch (r.int(8)) {
    case 0:
      return text.slice(0, r.int(text.length + 1));
    case 1: {
      let t = text;
      for (let n = 1 + r.int(4); n > 0; n--) {
        const i = r.int(t.length);
        t = t.slice(0, i) + r.pick(['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\u0000', 'x', '1', '-', 'e', '.']) + t.slice(i + 1);
      }
      return t;
    }
    case 2: {
      const i = r.int(text.length + 1);
      return text.slice(0, i) + randomString(r) + text.slice(i);
    }
    case 3:
      return text.replace(/\d+/, r.pick(['1e400', '-1e400', '1e-400', '123456789012345678901234567890', '0.0000001', '1E+2']));
    case 4:
      return `${'['.repeat(r.int(100_000))}${text}`;
    case 5:
      // A duplicated key: JSON.parse keeps the last.
      return text.replace(/^\{/, `{"cniVersion": ${JSON.stringify(r.pick(['0.1.0', '1.1.0', 'x']))},`);
    case 6:
      return r.pick(['', ' ', '\n', 'null', '[]', '{}', '"string"', '0', 'true', '\ufeff{}', '{"cniVersion":"1.1.0"}']);
    default:
      return randomString(r);
  }
}

export function validEnv(r: Rng): Record<string, string | undefined> {
  const command = r.pick(VERBS);
  const e: Record<string, string | undefined> = { CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin' };
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    e.CNI_CONTAINERID = r.pick(['8f1b2c3d4e5f', 'a', 'A1_b.c-d']);
    e.CNI_NETNS = r.pick(['/var/run/netns/cni-1', '/proc/42/ns/net']);
    e.CNI_IFNAME = r.pick(['eth0', 'net1', 'x'.repeat(15)]);
    if (r.chance(0.7)) e.CNI_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0';
  }
  return e;
}

const ENV_NAMES = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'];

export function mutateEnv(r: Rng, e: Record<string, string | undefined>): void {
  const name = r.pick(ENV_NAMES);
  switch (r.int(4)) {
    case 0:
      delete e[name];
      break;
    case 1:
      e[name] = '';
      break;
    case 2:
      e[name] = name === 'CNI_COMMAND' ? r.pick(['add', 'Del', 'GET', 'VERSION ', ' ADD', '']) : randomString(r);
      break;
    default:
      e[name] = name === 'CNI_ARGS' ? r.pick(['FOO=bar', 'a=b=c', ';;', 'IgnoreUnknown=maybe', 'K8S_POD_NAME=a;K8S_POD_NAME=b', 'IgnoreUnknown=1;__proto__=x']) : randomString(r);
  }
}

export interface FuzzCase {
  env: Record<string, string | undefined>;
  stdin: string;
  /** How the fake handler behaves if the request reaches it. */
  behaviour: 'ok' | 'cniError' | 'error' | 'errno' | 'string' | 'badResult' | 'noResult';
}

export function makeCase(r: Rng): FuzzCase {
  const env = validEnv(r);
  for (let n = r.chance(0.7) ? 0 : 1 + r.int(3); n > 0; n--) mutateEnv(r, env);
  if (r.chance(0.05)) {
    for (const k of Object.keys(env)) delete env[k];
    for (let n = r.int(6); n > 0; n--) env[r.chance(0.8) ? r.pick(ENV_NAMES) : randomString(r)] = randomString(r);
  }

  const config = validConfig(r);
  const structural = r.chance(0.5) ? 0 : 1 + r.int(4);
  for (let n = structural; n > 0; n--) mutateValue(r, config);
  let stdin = JSON.stringify(config);
  if (r.chance(0.3)) stdin = mutateText(r, stdin);

  const behaviour = r.pick(['ok', 'ok', 'ok', 'cniError', 'error', 'errno', 'string', 'badResult', 'noResult'] as const);
  return { env, stdin, behaviour };
}
