// Bad input through the frontend binary, in-process and through the daemon:
// each call exits non-zero with the spec's error object on stdout — the
// right code, a message naming the variable or config key — and leaves
// nothing behind: no host veth, no IPAM record, no endpoint record, no link
// in the pod, nothing new in the node.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ipJson, isRoot, run } from '../support/netns.js';
import {
  cniEnv,
  ferryConf,
  ferryFixture,
  leftovers,
  netnsPath,
  podNetns,
  prepareClients,
  runFrontend,
  startDaemon,
  type FerryFixture,
  type FrontendOutput,
} from '../support/ferry.js';

interface Ctx {
  f: FerryFixture;
  pod: string;
  socket: string | undefined;
  /** The result of the setup's ADD, when it made one. */
  first?: any;
}

interface BadCase {
  name: string;
  /** Default: an ADD of container "bad-1" into ctx.pod. */
  env?: (c: Ctx) => Record<string, string | undefined>;
  /** Default: ferry's 1.0.0 config, dual stack, routed. */
  stdin?: (c: Ctx) => string | object;
  /** Runs before the bad call; what it leaves is the baseline. */
  setup?: (c: Ctx) => Promise<void>;
  code: number;
  msg: RegExp;
  /** The version the error is written in; default 1.0.0 (the config's). */
  cniVersion?: string;
}

const conf = (c: Ctx, extra: Record<string, unknown> = {}) => ({ ...ferryConf(c.f, '1.0.0'), ...extra });
const withRanges = (c: Ctx, ranges: unknown[][]) => ({ ...ferryConf(c.f, '1.0.0', { ranges }) });
const addEnv = (c: Ctx, extra: Record<string, string | undefined> = {}) => cniEnv('ADD', 'bad-1', c.pod, 'eth0', extra);

/** A first attachment, made through the same path (daemon or not) as the bad call. */
async function addFirst(c: Ctx, stdin: object): Promise<void> {
  const pod = podNetns('fye-pod');
  const r = await runFrontend(c.f, { socket: c.socket, env: cniEnv('ADD', 'first-1', pod), stdin });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  c.first = r.json;
}

const CASES: BadCase[] = [
  { name: 'malformed JSON', stdin: () => '{"cniVersion": "1.0.0", "name": ', code: 6, msg: /^network config is not valid JSON: .* at line 1, column \d+/, cniVersion: '1.1.0' },
  { name: 'a config that is not an object', stdin: () => '[1, 2]', code: 6, msg: /^network config must be a JSON object, got array/, cniVersion: '1.1.0' },
  { name: 'CNI_COMMAND missing', env: (c) => addEnv(c, { CNI_COMMAND: undefined }), code: 4, msg: /^CNI_COMMAND: not set/ },
  { name: 'CNI_COMMAND unknown', env: (c) => addEnv(c, { CNI_COMMAND: 'ATTACH' }), code: 4, msg: /^CNI_COMMAND "ATTACH": unknown command/ },
  { name: 'CNI_CONTAINERID missing', env: (c) => addEnv(c, { CNI_CONTAINERID: undefined }), code: 4, msg: /^CNI_CONTAINERID: required for ADD but not set$/ },
  { name: 'CNI_IFNAME missing', env: (c) => addEnv(c, { CNI_IFNAME: undefined }), code: 4, msg: /^CNI_IFNAME: required for ADD but not set$/ },
  { name: 'CNI_NETNS missing', env: (c) => addEnv(c, { CNI_NETNS: undefined }), code: 4, msg: /^CNI_NETNS: required for ADD but not set$/ },
  {
    name: 'three variables missing: one error naming each',
    env: () => ({ CNI_COMMAND: 'ADD' }),
    code: 4,
    msg: /^CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME: required for ADD but not set$/,
  },
  { name: 'CNI_CONTAINERID with a bad character', env: (c) => addEnv(c, { CNI_CONTAINERID: 'abc/def' }), code: 4, msg: /^CNI_CONTAINERID "abc\/def": container id may contain only/ },
  { name: 'CNI_ARGS with an unknown key and no IgnoreUnknown', env: (c) => addEnv(c, { CNI_ARGS: 'K8S_POD_NAME=web-0;FOO=bar' }), code: 4, msg: /^CNI_ARGS "K8S_POD_NAME=web-0;FOO=bar": unknown keys "FOO" \(set IgnoreUnknown=1 to allow them\)$/ },
  { name: 'cniVersion unknown', stdin: (c) => conf(c, { cniVersion: '9.9.9' }), code: 1, msg: /^cniVersion "9\.9\.9" is not supported; ferry supports 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0$/, cniVersion: '1.1.0' },
  { name: 'cniVersion missing', stdin: (c) => conf(c, { cniVersion: undefined }), code: 1, msg: /^cniVersion is not set/, cniVersion: '1.1.0' },
  { name: 'subnet prefix out of range', stdin: (c) => withRanges(c, [[{ subnet: `${c.f.v4}.0/33` }]]), code: 7, msg: /^ipam\.ranges\[0\]\[0\]\.subnet "10\.\d+\.\d+\.0\/33": prefix length must be 0-32$/ },
  { name: 'subnet not a CIDR', stdin: (c) => withRanges(c, [[{ subnet: 'banana' }]]), code: 7, msg: /^ipam\.ranges\[0\]\[0\]\.subnet "banana": / },
  { name: 'subnet with host bits set', stdin: (c) => withRanges(c, [[{ subnet: `${c.f.v4}.7/24` }]]), code: 7, msg: /^ipam\.ranges\[0\]\[0\]\.subnet "10\.\d+\.\d+\.7\/24": host bits set; the network is 10\.\d+\.\d+\.0\/24$/ },
  { name: 'rangeStart outside the subnet', stdin: (c) => withRanges(c, [[{ subnet: `${c.f.v4}.0/24`, rangeStart: '192.0.2.10' }]]), code: 7, msg: /^ipam\.ranges\[0\]\[0\]\.rangeStart "192\.0\.2\.10": outside subnet/ },
  { name: 'ifname too long', env: (c) => addEnv(c, { CNI_IFNAME: 'eth0123456789abcdef' }), code: 4, msg: /^CNI_IFNAME "eth0123456789abcdef": interface name must be at most 15 bytes, got 19$/ },
  { name: "ifname containing '/'", env: (c) => addEnv(c, { CNI_IFNAME: 'eth/0' }), code: 4, msg: /^CNI_IFNAME "eth\/0": interface name must not contain '\/'$/ },
  { name: 'CNI_NETNS that does not exist', env: (c) => addEnv(c, { CNI_NETNS: netnsPath(`${c.pod}-gone`) }), code: 3, msg: /^CNI_NETNS "\/var\/run\/netns\/.*-gone": no such network namespace$/ },
  {
    name: 'CNI_NETNS that is not a network namespace',
    env: (c) => {
      const file = join(c.f.dir, 'not-a-netns');
      writeFileSync(file, '');
      return addEnv(c, { CNI_NETNS: file });
    },
    code: 4,
    msg: /^CNI_NETNS ".*not-a-netns": not a network namespace$/,
  },
  { name: 'CHECK in 0.3.1', env: (c) => cniEnv('CHECK', 'bad-1', c.pod), stdin: (c) => conf(c, { cniVersion: '0.3.1', prevResult: {} }), code: 1, msg: /^CHECK is not part of CNI 0\.3\.1; it arrived in 0\.4\.0$/, cniVersion: '0.3.1' },
  { name: 'CHECK without prevResult', env: (c) => cniEnv('CHECK', 'bad-1', c.pod), code: 7, msg: /^prevResult: required for CHECK/ },
  { name: 'ipMasq, which ferry does not implement', stdin: (c) => conf(c, { ipMasq: true }), code: 2, msg: /^ipMasq true: / },
  { name: 'an unknown mode', stdin: (c) => conf(c, { mode: 'overlay' }), code: 7, msg: /^mode: expected one of "routed", "bridge", got "overlay"$/ },
  {
    name: 'exhausted range (ferry code 100), the other family rolled back',
    // IPv6 (set 1) has one address; IPv4 (set 0) is reserved first, then must be released.
    stdin: (c) => withRanges(c, [[{ subnet: `${c.f.v4}.0/24` }], [{ subnet: `${c.f.v6}/64`, rangeStart: `${c.f.v6}9`, rangeEnd: `${c.f.v6}9` }]]),
    setup: (c) => addFirst(c, withRanges(c, [[{ subnet: `${c.f.v4}.0/24` }], [{ subnet: `${c.f.v6}/64`, rangeStart: `${c.f.v6}9`, rangeEnd: `${c.f.v6}9` }]])),
    code: 100,
    msg: /^no free address in range set 1 \(fd00:[0-9a-f:]+\/64 fd00:[0-9a-f:]+9-fd00:[0-9a-f:]+9\)$/,
  },
  {
    name: 'requested IP in use (ferry code 101), naming it and its holder',
    setup: (c) => addFirst(c, ferryConf(c.f, '1.0.0')),
    stdin: (c) => conf(c, { runtimeConfig: { ips: [c.first.ips[1].address.replace('/128', '/64')] } }),
    code: 101,
    msg: /^requested IP fd00:[0-9a-f:]+: in use by first-1\/eth0$/,
  },
  {
    name: 'requested IP in no range (code 7)',
    stdin: (c) => conf(c, { runtimeConfig: { ips: ['198.51.100.9/24'] } }),
    code: 7,
    msg: /^requested IP 198\.51\.100\.9: not in any range set/,
  },
  {
    name: 'CNI_IFNAME already taken in the pod (code 4), addresses released',
    setup: async (c) => {
      run('ip', ['-n', c.pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
    },
    code: 4,
    msg: /^CNI_IFNAME "eth0": a link of that name already exists in netns /,
  },
  {
    name: 'bridge name taken by a veth (code 7), addresses released',
    setup: async (c) => {
      run('ip', ['-n', c.f.node, 'link', 'add', 'fbrtaken', 'type', 'veth', 'peer', 'name', 'fbrtaken-p']);
    },
    stdin: (c) => conf(c, { mode: 'bridge', bridge: 'fbrtaken' }),
    code: 7,
    msg: /^bridge "fbrtaken": a veth of that name exists in the node namespace$/,
  },
];

const linkNames = (ns: string) => ipJson<any[]>(ns, ['link', 'show']).map((l) => l.ifname).sort();

function snapshot(c: Ctx) {
  return { ...leftovers(c.f), pod: linkNames(c.pod), node: linkNames(c.f.node) };
}

function expectError(r: FrontendOutput, bad: BadCase): void {
  expect(r.status, `exit status; stdout: ${r.stdout} stderr: ${r.stderr}`).toBe(1);
  expect(r.json, `stdout is the error object: ${r.stdout}`).toBeDefined();
  expect(Object.keys(r.json).sort()).toEqual(['cniVersion', 'code', 'msg', ...(r.json.details !== undefined ? ['details'] : [])].sort());
  expect(r.json.code, r.json.msg).toBe(bad.code);
  expect(r.json.msg).toMatch(bad.msg);
  expect(r.json.cniVersion).toBe(bad.cniVersion ?? '1.0.0');
}

describe.skipIf(!isRoot)('bad input through the frontend binary (needs root: namespaces)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const via of ['in-process', 'daemon'] as const) {
    describe(via, () => {
      for (const bad of CASES) {
        it(`${bad.name}: code ${bad.code}, nothing left behind`, async () => {
          const f = ferryFixture('fye');
          const c: Ctx = { f, pod: podNetns('fye-pod'), socket: via === 'daemon' ? (await startDaemon(f)).socket : undefined };
          await bad.setup?.(c);
          const before = snapshot(c);
          if (bad.setup === undefined) expect(before).toMatchObject({ hostVeths: [], ipRecords: [], endpoints: [], pod: ['lo'] });

          const r = await runFrontend(f, { socket: c.socket, env: (bad.env ?? addEnv)(c), stdin: bad.stdin?.(c) ?? conf(c) });
          expectError(r, bad);
          expect(snapshot(c)).toEqual(before);
        });
      }
    });
  }
});
