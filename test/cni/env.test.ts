// CNI_* variables per verb, and their forms.
import { describe, expect, it } from 'vitest';
import { parseCniArgs, parseEnv } from '../../plugin/cni/env.js';
import type { CniError } from '../../plugin/cni/errors.js';
import { env } from './fixtures.js';

function envError(vars: Record<string, string | undefined>): string {
  try {
    parseEnv(vars);
  } catch (e) {
    expect((e as CniError).code).toBe(4);
    return (e as CniError).msg;
  }
  throw new Error('parseEnv accepted it');
}

describe('parseEnv', () => {
  it('reads an ADD as kubelet sends it', () => {
    expect(parseEnv(env('ADD'))).toEqual({
      command: 'ADD',
      containerId: '8f1b2c3d4e5f',
      netns: '/var/run/netns/cni-1234',
      ifname: 'eth0',
      args: {
        IgnoreUnknown: '1',
        K8S_POD_NAMESPACE: 'default',
        K8S_POD_NAME: 'web-0',
        K8S_POD_INFRA_CONTAINER_ID: '8f1b2c3d4e5f',
        K8S_POD_UID: '0d3c',
      },
      k8s: { podNamespace: 'default', podName: 'web-0', podUid: '0d3c', infraContainerId: '8f1b2c3d4e5f' },
      path: ['/opt/cni/bin'],
    });
  });

  it('needs CNI_COMMAND, and a known one', () => {
    expect(envError({})).toBe('CNI_COMMAND: not set; expected one of ADD, DEL, CHECK, STATUS, GC, VERSION');
    expect(envError({ CNI_COMMAND: '' })).toMatch(/^CNI_COMMAND: not set/);
    expect(envError({ CNI_COMMAND: 'add' })).toBe('CNI_COMMAND "add": unknown command; expected one of ADD, DEL, CHECK, STATUS, GC, VERSION');
  });

  it('needs container id, netns and ifname for ADD and CHECK', () => {
    for (const cmd of ['ADD', 'CHECK']) {
      expect(envError(env(cmd, { CNI_CONTAINERID: undefined }))).toBe(`CNI_CONTAINERID: required for ${cmd} but not set`);
      expect(envError(env(cmd, { CNI_NETNS: '' }))).toBe(`CNI_NETNS: required for ${cmd} but not set`);
      expect(envError(env(cmd, { CNI_IFNAME: undefined }))).toBe(`CNI_IFNAME: required for ${cmd} but not set`);
      expect(envError({ CNI_COMMAND: cmd })).toBe(`CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME: required for ${cmd} but not set`);
    }
  });

  it('lets DEL go without a netns (it may be gone) but not without id and ifname', () => {
    expect(parseEnv(env('DEL', { CNI_NETNS: undefined })).netns).toBe('');
    expect(parseEnv(env('DEL', { CNI_NETNS: '' })).netns).toBe('');
    expect(envError({ CNI_COMMAND: 'DEL' })).toBe('CNI_CONTAINERID, CNI_IFNAME: required for DEL but not set');
  });

  it('needs nothing for STATUS, GC and VERSION, and ignores the attachment variables', () => {
    for (const cmd of ['STATUS', 'GC', 'VERSION']) {
      expect(parseEnv({ CNI_COMMAND: cmd })).toEqual({ command: cmd, containerId: '', netns: '', ifname: '', args: {}, k8s: {}, path: [] });
      const withJunk = parseEnv({ CNI_COMMAND: cmd, CNI_IFNAME: 'a/b', CNI_CONTAINERID: '-x', CNI_ARGS: 'garbage', CNI_PATH: '/a::/b:' });
      expect(withJunk).toMatchObject({ ifname: '', containerId: '', args: {}, path: ['/a', '/b'] });
    }
  });

  it('checks the container id', () => {
    expect(parseEnv(env('ADD', { CNI_CONTAINERID: 'a' })).containerId).toBe('a');
    expect(parseEnv(env('ADD', { CNI_CONTAINERID: 'A1_b.c-d' })).containerId).toBe('A1_b.c-d');
    expect(envError(env('ADD', { CNI_CONTAINERID: '-abc' }))).toBe('CNI_CONTAINERID "-abc": container id must start with a letter or digit');
    expect(envError(env('ADD', { CNI_CONTAINERID: 'abc/def' }))).toBe(
      `CNI_CONTAINERID "abc/def": container id may contain only letters, digits, '_', '.' and '-', found "/"`,
    );
    expect(envError(env('DEL', { CNI_CONTAINERID: 'é' }))).toMatch(/^CNI_CONTAINERID "é": container id must start/);
  });

  it('checks the interface name as the kernel would', () => {
    expect(parseEnv(env('ADD', { CNI_IFNAME: 'x'.repeat(15) })).ifname).toBe('x'.repeat(15));
    const cases: Array<[string, string]> = [
      ['eth/0', `CNI_IFNAME "eth/0": interface name must not contain '/'`],
      ['eth:0', `CNI_IFNAME "eth:0": interface name must not contain ':'`],
      ['eth%d', `CNI_IFNAME "eth%d": interface name must not contain '%'`],
      ['eth 0', 'CNI_IFNAME "eth 0": interface name must not contain whitespace'],
      ['eth\t0', 'CNI_IFNAME "eth\\t0": interface name must not contain whitespace'],
      ['eth\u00a00', 'CNI_IFNAME "eth\u00a00": interface name must not contain whitespace'],
      ['.', `CNI_IFNAME ".": interface name must not be "."`],
      ['..', `CNI_IFNAME "..": interface name must not be ".."`],
      ['x'.repeat(16), `CNI_IFNAME "${'x'.repeat(16)}": interface name must be at most 15 bytes, got 16`],
      ['ééééééééé', 'CNI_IFNAME "ééééééééé": interface name must be at most 15 bytes, got 18'],
    ];
    for (const [name, msg] of cases) expect(envError(env('ADD', { CNI_IFNAME: name }))).toBe(msg);
  });

  it('wants the netns as an absolute path', () => {
    expect(envError(env('ADD', { CNI_NETNS: 'cni-1234' }))).toBe(
      'CNI_NETNS "cni-1234": must be an absolute path to a network namespace, e.g. /var/run/netns/cni-1234',
    );
    expect(parseEnv(env('CHECK', { CNI_NETNS: '/proc/42/ns/net' })).netns).toBe('/proc/42/ns/net');
  });

  it('names every bad variable in one error', () => {
    expect(envError(env('ADD', { CNI_IFNAME: 'a/b', CNI_CONTAINERID: '_x', CNI_NETNS: undefined }))).toBe(
      `CNI_NETNS: required for ADD but not set; CNI_CONTAINERID "_x": container id must start with a letter or digit; CNI_IFNAME "a/b": interface name must not contain '/'`,
    );
  });
});

describe('CNI_ARGS', () => {
  const argsError = (text: string) => {
    try {
      parseCniArgs(text);
    } catch (e) {
      expect((e as CniError).code).toBe(4);
      return (e as CniError).msg;
    }
    throw new Error('accepted');
  };

  it('splits K=V;K2=V2', () => {
    expect(parseCniArgs('K8S_POD_NAME=a;K8S_POD_NAMESPACE=b')).toEqual({ K8S_POD_NAME: 'a', K8S_POD_NAMESPACE: 'b' });
    expect(parseCniArgs('K8S_POD_NAME=;')).toEqual({ K8S_POD_NAME: '' });
    expect(parseCniArgs('')).toEqual({});
  });

  it('refuses unknown keys unless IgnoreUnknown says otherwise', () => {
    expect(argsError('FOO=bar')).toBe('CNI_ARGS "FOO=bar": unknown keys "FOO" (set IgnoreUnknown=1 to allow them)');
    expect(argsError('IgnoreUnknown=0;FOO=bar')).toMatch(/unknown keys "FOO"/);
    for (const yes of ['1', 'true', 'True', 'TRUE']) expect(parseCniArgs(`IgnoreUnknown=${yes};FOO=bar`).FOO).toBe('bar');
    expect(argsError('IgnoreUnknown=yes')).toBe('CNI_ARGS "IgnoreUnknown=yes": IgnoreUnknown "yes" is not 1, 0, true or false');
  });

  it('refuses malformed pairs and repeated keys', () => {
    expect(argsError('K8S_POD_NAME')).toBe('CNI_ARGS "K8S_POD_NAME": pair "K8S_POD_NAME" is not KEY=VALUE');
    expect(argsError('K8S_POD_NAME=a=b')).toMatch(/pair "K8S_POD_NAME=a=b" is not KEY=VALUE/);
    expect(argsError('=a')).toMatch(/pair "=a" is not KEY=VALUE/);
    expect(argsError('a=1;;b=2')).toMatch(/pair "" is not KEY=VALUE/);
    expect(argsError('K8S_POD_NAME=a;K8S_POD_NAME=b')).toMatch(/key "K8S_POD_NAME" given twice/);
  });

  it('keeps __proto__ as a plain key', () => {
    const args = parseCniArgs('IgnoreUnknown=1;__proto__=x');
    expect(Object.getPrototypeOf(args)).toBe(Object.prototype);
    expect(Object.hasOwn(args, '__proto__')).toBe(true);
  });

  it('is checked for ADD, DEL and CHECK', () => {
    expect(envError(env('DEL', { CNI_ARGS: 'FOO=1' }))).toMatch(/^CNI_ARGS "FOO=1": unknown keys/);
  });
});
