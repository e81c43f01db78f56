// The CNI spec versions ferry speaks, and which verbs each of them has.
// A runtime picks the version (the config's cniVersion); ferry answers in it.
/** Every version ferry accepts in a config and can write a result in, oldest first. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The newest spec ferry implements; used where no version is known yet (early errors). */
export const CURRENT_VERSION: CniVersion = '1.1.0';

export const VERBS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'] as const;
export type Verb = (typeof VERBS)[number];

/**
 * The first spec version each verb exists in. ADD, DEL and VERSION are as old
 * as CNI; CHECK came with 0.4.0; GC and STATUS with 1.1.0. libcni's skel
 * refuses CHECK/GC/STATUS below these with code 1, and so does ferry.
 */
export const VERB_SINCE: Readonly<Record<Verb, string>> = {
  ADD: '0.1.0',
  DEL: '0.1.0',
  VERSION: '0.1.0',
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function isVerb(v: unknown): v is Verb {
  return typeof v === 'string' && (VERBS as readonly string[]).includes(v);
}

/**
 * `MAJOR.MINOR.PATCH` → numbers, or undefined when `v` is not that shape.
 * Stricter than libcni (which also takes "1" and "1.0"): the spec says SemVer,
 * and a config carrying "1.0" would not match any result type there either.
 */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/**
 * <0, 0, >0 as `a` is older than, equal to, newer than `b`. Callers pass
 * versions already checked (supported ones, VERB_SINCE), so a malformed one is
 * a bug in ferry and throws a TypeError rather than a CNI error.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) throw new TypeError(`compareVersions: ${JSON.stringify(pa ? b : a)} is not MAJOR.MINOR.PATCH`);
  return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2];
}

/** Whether `verb` exists in spec `version` (e.g. CHECK does not in 0.3.1). */
export function versionHasVerb(version: string, verb: Verb): boolean {
  return compareVersions(version, VERB_SINCE[verb]) >= 0;
}

/** The 0.x result shape (ips carry `version`); 1.x dropped it. */
export function isLegacyResultVersion(version: CniVersion): boolean {
  return version.startsWith('0.');
}

/** What VERSION prints: the version asked about, and every version ferry supports. */
export interface VersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

export function versionInfo(cniVersion: string = CURRENT_VERSION): VersionInfo {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}
