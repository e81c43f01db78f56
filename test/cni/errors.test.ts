// CniError's wire form and the mapping of everything else a handler may throw.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, netlinkError } from '../../engine/netlink/errors.js';
import { CniCode, CniError, invalidEnv, quote, toCniError, unsupportedField } from '../../plugin/cni/errors.js';

describe('CniError', () => {
  it('serializes to the spec error object', () => {
    const e = new CniError(7, 'Invalid Configuration', 'Network 192.168.0.0/31 too small to allocate from.');
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      cniVersion: '1.1.0',
      code: 7,
      msg: 'Invalid Configuration',
      details: 'Network 192.168.0.0/31 too small to allocate from.',
    });
    expect(e.message).toBe('Invalid Configuration; Network 192.168.0.0/31 too small to allocate from.');
    e.cniVersion = '0.4.0';
    expect(e.toJSON().cniVersion).toBe('0.4.0');
    expect(Object.keys(new CniError(3, 'gone').toJSON())).toEqual(['cniVersion', 'code', 'msg']);
  });

  it('has the spec codes', () => {
    expect(CniCode).toMatchObject({
      IncompatibleVersion: 1,
      UnsupportedField: 2,
      UnknownContainer: 3,
      InvalidEnvironment: 4,
      IoFailure: 5,
      DecodingFailure: 6,
      InvalidNetworkConfig: 7,
      TryAgainLater: 11,
      PluginNotAvailable: 50,
      LimitedConnectivity: 51,
    });
  });

  it('names variable, key and value in the helpers', () => {
    expect(invalidEnv('CNI_IFNAME', 'eth/0', "interface name must not contain '/'").msg).toBe(`CNI_IFNAME "eth/0": interface name must not contain '/'`);
    expect(invalidEnv('CNI_NETNS', undefined, 'not set').msg).toBe('CNI_NETNS: not set');
    const u = unsupportedField('ipMasq', true, 'not yet');
    expect([u.code, u.msg]).toEqual([2, 'ipMasq true: not yet']);
  });

  it('quotes values safely and briefly', () => {
    expect(quote('a"b\nc')).toBe('"a\\"b\\nc"');
    expect(quote('x'.repeat(100))).toBe(`"${'x'.repeat(64)}…"`);
    expect(quote(5)).toBe('5');
    expect(quote(undefined)).toBe('undefined');
    expect(quote(10n)).toBe('10');
    expect(quote(Infinity)).toBe('Infinity');
    expect(quote(Symbol('s'))).toBe('Symbol(s)');
  });
});

describe('toCniError', () => {
  it('keeps a CniError', () => {
    const e = new CniError(3, 'no such container');
    expect(toCniError(e)).toBe(e);
  });

  it('maps errno errors to 5, transient ones to 11', () => {
    const eexist = toCniError(netlinkError('ip link add', 'veth0', 17));
    expect([eexist.code, eexist.msg]).toEqual([5, 'ip link add veth0: file already exists (EEXIST)']);
    expect(toCniError(new InvalidArgumentError('ip addr add', 'x', 'bad')).code).toBe(5);
    expect(toCniError(Object.assign(new Error('busy'), { code: 'EBUSY' })).code).toBe(11);
    expect(toCniError(Object.assign(new Error('again'), { code: 'EAGAIN', errno: -11 })).code).toBe(11);
    expect(toCniError(Object.assign(new Error('x'), { errno: 2 })).code).toBe(5);
  });

  it('maps everything else to 999 with the message only', () => {
    const e = new TypeError('cannot read properties of undefined');
    const c = toCniError(e);
    expect([c.code, c.msg]).toEqual([999, 'cannot read properties of undefined']);
    expect(toCniError(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' })).code).toBe(999);
    expect(toCniError('plain string').msg).toBe('plain string');
    expect(toCniError(undefined).msg).toBe('non-Error value thrown: undefined');
    expect(toCniError({ a: 1 }).msg).toBe('non-Error value thrown: {"a":1}');
  });

  it('strips stack frames folded into a message', () => {
    const e = new Error(`outer failed\n${new Error('inner').stack}`);
    expect(toCniError(e).msg).toBe('outer failed\nError: inner');
    expect(toCniError(e).msg).not.toMatch(/\n\s+at /);
  });
});
