// Which versions ferry speaks and which verbs each has.
import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  isSupportedVersion,
  parseVersion,
  SUPPORTED_VERSIONS,
  versionHasVerb,
  versionInfo,
} from '../../plugin/cni/versions.js';

describe('versions', () => {
  it('supports 0.3.0 through 1.1.0 and nothing older or newer', () => {
    expect(SUPPORTED_VERSIONS).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    for (const v of ['0.1.0', '0.2.0', '1.2.0', '2.0.0', '1.1', '', ' 1.1.0', 1]) expect(isSupportedVersion(v)).toBe(false);
  });

  it('compares numerically, not as text', () => {
    expect(compareVersions('0.10.0', '0.9.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareVersions('0.3.1', '0.3.1')).toBe(0);
    expect(compareVersions('0.3.0', '0.3.1')).toBeLessThan(0);
    expect(() => compareVersions('1.x', '1.0.0')).toThrow(/1\.x/);
  });

  it('parses only MAJOR.MINOR.PATCH', () => {
    expect(parseVersion('1.1.0')).toEqual([1, 1, 0]);
    for (const v of ['1', '1.0', '1.0.0.0', '01.0.0', '1.0.0-rc1', 'v1.0.0', '1..0']) expect(parseVersion(v)).toBeUndefined();
  });

  it('has CHECK from 0.4.0 and GC/STATUS from 1.1.0', () => {
    const table = SUPPORTED_VERSIONS.map((v) => [v, ...(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const).map((c) => versionHasVerb(v, c))]);
    expect(table).toEqual([
      ['0.3.0', true, true, false, false, false, true],
      ['0.3.1', true, true, false, false, false, true],
      ['0.4.0', true, true, true, false, false, true],
      ['1.0.0', true, true, true, false, false, true],
      ['1.1.0', true, true, true, true, true, true],
    ]);
  });

  it('answers VERSION with the asked version and every supported one', () => {
    expect(versionInfo('0.4.0')).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    expect(versionInfo().cniVersion).toBe('1.1.0');
  });
});
