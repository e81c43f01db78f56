// Typed errors for BPF: every failure keeps the kernel's errno, names the
// syscall and the object (program, map, interface, path), and carries the
// verifier log when a program was rejected. Callers branch on the classes.
import { constants } from 'node:os';

import type { NativeError } from '../native/binding.js';

// ENOTSUPP is kernel-internal (no libc name) but leaks out of bpf(2).
const ENOTSUPP = 524;
const { EOPNOTSUPP } = constants.errno;

export interface BpfErrorFields {
  errno: number;
  code: string;
  syscall: string;
  object?: string;
  detail?: string;
  verifierLog?: string;
}

/** A BPF syscall or libbpf call failed. */
export class BpfError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  /** The program, map, interface or path the call was about. */
  readonly object?: string;
  /** libbpf's messages or other explanation, when there are any. */
  readonly detail?: string;
  /** The kernel verifier's log, when loading a program failed verification. */
  readonly verifierLog?: string;

  constructor(message: string, fields: BpfErrorFields, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.errno = fields.errno;
    this.code = fields.code;
    this.syscall = fields.syscall;
    if (fields.object !== undefined) this.object = fields.object;
    if (fields.detail !== undefined) this.detail = fields.detail;
    if (fields.verifierLog !== undefined) this.verifierLog = fields.verifierLog;
  }
}

/** The running kernel lacks a feature (tcx, a map or program type, ...). */
export class NotSupportedError extends BpfError {}

/** update(..., 'exist') on a key that is not in the map. */
export class KeyNotFoundError extends BpfError {}

/** update(..., 'noexist') on a key that is already in the map. */
export class KeyExistsError extends BpfError {}

function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).errno === 'number' && 'syscall' in e;
}

// The verifier's reason is its last line before the "processed N insns"
// summary; putting it in the message makes a log line useful on its own.
function verifierReason(log: string): string | undefined {
  const lines = log.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('processed '));
  return lines.at(-1);
}

/**
 * Turns an addon error into the matching BpfError subclass; anything else
 * (a TypeError from argument checks) is returned unchanged.
 */
export function toBpfError(e: unknown): unknown {
  if (!isNativeError(e)) return e;
  // The addon reports a verifier rejection as the BPF_PROG_LOAD command with
  // the log as detail; other load failures carry libbpf's messages instead.
  const verifierLog = e.syscall === 'BPF_PROG_LOAD' && e.detail ? e.detail : undefined;
  const fields: BpfErrorFields = {
    errno: e.errno,
    code: e.code,
    syscall: e.syscall,
    ...(e.object !== undefined && { object: e.object }),
    ...(e.detail !== undefined && verifierLog === undefined && { detail: e.detail }),
    ...(verifierLog !== undefined && { verifierLog }),
  };
  const reason = verifierLog !== undefined ? verifierReason(verifierLog) : undefined;
  const message = reason !== undefined ? `${e.message} (${reason})` : e.message;
  const Class = e.errno === EOPNOTSUPP || e.errno === ENOTSUPP ? NotSupportedError : BpfError;
  return new Class(message, fields, { cause: e });
}

/** Runs a native call, rethrowing its errors as BpfErrors. */
export function wrapNative<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw toBpfError(e);
  }
}

/** Awaits a native promise, rethrowing its errors as BpfErrors. */
export async function wrapNativeAsync<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw toBpfError(e);
  }
}

/** A BpfError made in TypeScript (closed objects, missing names). */
export function bpfError(
  Class: typeof BpfError,
  code: keyof typeof constants.errno,
  syscall: string,
  object: string,
  why: string,
): BpfError {
  return new Class(`${syscall} ${object}: ${why}`, { errno: constants.errno[code], code, syscall, object });
}
