// CNI errors: the spec's numeric codes and its error object. Every failure
// that reaches the runtime is one of these, printed as JSON on stdout.
import { CURRENT_VERSION } from './versions.js';

/** The spec's well-known codes (SPEC.md, "Error"); 100+ are free for plugins. */
export const CniCode = {
  IncompatibleVersion: 1,
  /** The message must contain the key and value of the field. */
  UnsupportedField: 2,
  /** The runtime need not clean up (call DEL) after this one. */
  UnknownContainer: 3,
  /** The message must contain the names of the invalid variables. */
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  /** libcni's ErrInvalidNetNS (not in the spec's table): CNI_NETNS is the plugin's own netns. */
  InvalidNetns: 8,
  TryAgainLater: 11,
  /** STATUS: cannot service ADD. */
  PluginNotAvailable: 50,
  /** STATUS: cannot service ADD, and existing containers may have lost connectivity. */
  LimitedConnectivity: 51,
  /** libcni's ErrInternal: an error ferry did not classify (see toCniError). */
  Internal: 999,
} as const;

/** The error object of the spec, exactly as it goes on stdout. */
export interface CniErrorObject {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  override readonly name = 'CniError';
  readonly code: number;
  /** Short, and names the object: `CNI_IFNAME "eth/0": interface name must not contain '/'`. */
  readonly msg: string;
  readonly details: string | undefined;
  /**
   * The protocol version in use. Errors are made deep down where it is not
   * known; runCni stamps it before printing. (A field, not a toJSON parameter:
   * JSON.stringify calls toJSON with the property key.)
   */
  cniVersion: string = CURRENT_VERSION;

  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    // libcni's Error() text: "msg; details".
    super(details ? `${msg}; ${details}` : msg, options);
    this.code = code;
    this.msg = msg;
    this.details = details || undefined;
  }

  toJSON(): CniErrorObject {
    const o: CniErrorObject = { cniVersion: this.cniVersion, code: this.code, msg: this.msg };
    if (this.details !== undefined) o.details = this.details;
    return o;
  }
}

/**
 * A value for an error message: JSON-quoted (so control characters and
 * quotes cannot break the line or the log), cut to `max` characters.
 */
export function quote(value: unknown, max = 64): string {
  if (typeof value === 'string') {
    return value.length > max ? `${JSON.stringify(value.slice(0, max)).slice(0, -1)}…"` : JSON.stringify(value);
  }
  // JSON has no Infinity (1e400 parses to it) and no bigint; say what the value is.
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export const incompatibleVersion = (msg: string, details?: string) => new CniError(CniCode.IncompatibleVersion, msg, details);
export const unknownContainer = (msg: string, details?: string) => new CniError(CniCode.UnknownContainer, msg, details);
export const ioFailure = (msg: string, details?: string, cause?: unknown) => new CniError(CniCode.IoFailure, msg, details, { cause });
export const decodingFailure = (msg: string, details?: string) => new CniError(CniCode.DecodingFailure, msg, details);
export const invalidConfig = (msg: string, details?: string) => new CniError(CniCode.InvalidNetworkConfig, msg, details);
export const tryAgainLater = (msg: string, details?: string) => new CniError(CniCode.TryAgainLater, msg, details);
export const pluginNotAvailable = (msg: string, details?: string) => new CniError(CniCode.PluginNotAvailable, msg, details);
export const limitedConnectivity = (msg: string, details?: string) => new CniError(CniCode.LimitedConnectivity, msg, details);

/** Code 2, naming key and value as the spec requires: `ipMasq true: …`. */
export function unsupportedField(key: string, value: unknown, reason: string): CniError {
  return new CniError(CniCode.UnsupportedField, `${key} ${quote(value)}: ${reason}`);
}

/** Code 4, naming the variable (and its value when set): `CNI_IFNAME "eth/0": …`. */
export function invalidEnv(variable: string, value: string | undefined, reason: string): CniError {
  return new CniError(CniCode.InvalidEnvironment, value === undefined ? `${variable}: ${reason}` : `${variable} ${quote(value)}: ${reason}`);
}

// errno codes after which the same request may well succeed: the kernel or a
// peer was busy, not wrong.
const TRANSIENT = new Set(['EAGAIN', 'EWOULDBLOCK', 'EBUSY', 'EINTR', 'ETIMEDOUT']);

/**
 * Turns anything a handler threw into a CniError. The mapping:
 * - a CniError stays as it is;
 * - an Error carrying an errno (`errno` number, or a `code` like `EEXIST`:
 *   Node's system errors and ferry's NetlinkError) is a failure of the
 *   system under the plugin: 11 (try again later) for EAGAIN, EWOULDBLOCK,
 *   EBUSY, EINTR, ETIMEDOUT; 5 (I/O failure) for every other errno;
 * - anything else is a bug or a case ferry did not foresee: 999, libcni's
 *   ErrInternal (codes under 100 are the spec's and each means something
 *   specific the runtime may act on, so none is borrowed for "unknown").
 * The message is the error's message only; the stack goes to the log, never
 * to stdout.
 */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  const msg = messageOf(e);
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const errno = (e as { errno?: unknown }).errno;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
      return new CniError(TRANSIENT.has(code) ? CniCode.TryAgainLater : CniCode.IoFailure, msg, undefined, { cause: e });
    }
    if (typeof errno === 'number') return new CniError(CniCode.IoFailure, msg, undefined, { cause: e });
  }
  return new CniError(CniCode.Internal, msg, undefined, { cause: e });
}

/** An error's message without stack frames (some libraries fold the stack into it). */
function messageOf(e: unknown): string {
  let text: string;
  if (e instanceof Error) text = e.message || e.name;
  else if (typeof e === 'string') text = e;
  else text = `non-Error value thrown: ${quote(e)}`;
  text = text
    .split('\n')
    .filter((line) => !/^\s*at\s/.test(line))
    .join('\n')
    .trim();
  if (text.length > 2000) text = `${text.slice(0, 2000)}…`;
  return text || 'unknown error';
}
