// The CNI protocol around ferry's verbs: read the environment and the config,
// check the verb exists in the config's version, call the handler, and write
// the answer — a result, nothing, or the spec's error object — in that
// version. runCni never throws and never prints anything but one JSON
// document (or nothing) on stdout.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { checkSupported, parseNetConf, type NetConf } from './config.js';
import { parseEnv, type CniEnv } from './env.js';
import { CniCode, CniError, decodingFailure, incompatibleVersion, invalidConfig, quote, toCniError } from './errors.js';
import { decodeJson } from './json.js';
import { createLogger, type LogSettings } from './log.js';
import type { CniHandlers } from './request.js';
import { convertResult, parseResult, type Result } from './result.js';
import {
  CURRENT_VERSION,
  isSupportedVersion,
  parseVersion,
  VERB_SINCE,
  versionHasVerb,
  versionInfo,
  type VersionInfo,
} from './versions.js';

export interface CniInput {
  env: Record<string, string | undefined>;
  stdin: string;
}

export interface CniOutput {
  /** '' or one JSON document, newline-terminated. */
  stdout: string;
  /** 0 on success, 1 with an error object on stdout. */
  exitCode: 0 | 1;
}

export interface RunOptions {
  /** The base logger (tests pass a silent or capturing one); default: createLogger from the config's logFile/logLevel. */
  logger?: Logger;
}

/**
 * Runs one CNI invocation. Order of checks, each failing with its code:
 *   4  CNI_COMMAND and the variables its verb needs (env.ts)
 *   VERSION answers here, from stdin's cniVersion alone (empty stdin: 1.1.0)
 *   6  config not JSON / not an object; 1 cniVersion missing or unsupported;
 *   7  a known key of the wrong type or form (config.ts)
 *   1  the verb is not in the config's version (CHECK < 0.4.0, GC/STATUS < 1.1.0)
 *   2  a field ferry cannot honour — ADD, CHECK, STATUS only (checkSupported)
 *   7  CHECK without prevResult, GC without cni.dev/valid-attachments, a
 *      prevResult that is not a result (DEL: ignored instead, best effort)
 *   …  whatever the handler throws, through toCniError
 */
export async function runCni(input: CniInput, handlers: CniHandlers, options: RunOptions = {}): Promise<CniOutput> {
  const requestId = randomUUID().slice(0, 8);
  const peeked = peek(input.stdin);
  // The version errors are written in: the config's once known, else what stdin claims, else 1.1.0.
  let version: string = peeked.version;
  let log: Logger | undefined;
  const logger = (): Logger => (log ??= (options.logger ?? createLogger(peeked.log)).child(bindings(input.env, requestId)));
  const started = Date.now();
  try {
    const env = parseEnv(input.env);
    // VERSION is pure: no config, no log file.
    if (env.command === 'VERSION') return answer(versionAnswer(input.stdin));
    const conf = parseNetConf(input.stdin);
    version = conf.cniVersion;
    // peek() read logFile/logLevel from this same JSON, so logger() follows the config.
    log = logger().child({ network: conf.name });
    log.info({ cniVersion: conf.cniVersion, k8s: env.k8s }, `${env.command} request`);
    const out = await dispatch(env, conf, handlers, log, requestId);
    log.info({ ms: Date.now() - started }, `${env.command} done`);
    return out;
  } catch (e) {
    const err = toCniError(e);
    if (input.env.CNI_COMMAND !== 'VERSION') {
      try {
        logger().error({ err: e, code: err.code, ms: Date.now() - started }, `failed: ${err.message}`);
      } catch {
        // A log that cannot be written must not change the answer.
      }
    }
    return errorOutput(err, version);
  }
}

/** The spec's error object for `e` (mapped by toCniError) as runCni's output, exit code 1. */
export function errorOutput(e: unknown, cniVersion: string = CURRENT_VERSION): CniOutput {
  const err = toCniError(e);
  err.cniVersion = cniVersion;
  return { stdout: render(err.toJSON()), exitCode: 1 };
}

async function dispatch(env: CniEnv, conf: NetConf, handlers: CniHandlers, log: Logger, requestId: string): Promise<CniOutput> {
  const { command } = env;
  const v = conf.cniVersion;
  if (command === 'VERSION') return answer(versionInfo(v)); // answered before the config is read; here for the type
  if (!versionHasVerb(v, command)) {
    throw incompatibleVersion(`${command} is not part of CNI ${v}; it arrived in ${VERB_SINCE[command]}`);
  }
  const base = { cniVersion: v, conf, path: env.path, log, requestId };
  const attachment = { ...base, containerId: env.containerId, netns: env.netns, ifname: env.ifname, args: env.args, k8s: env.k8s };

  switch (command) {
    case 'ADD': {
      checkSupported(conf, env.k8s);
      const prevResult = conf.prevResult && parseResult(conf.prevResult);
      const result = await handlers.add({ ...attachment, command, prevResult });
      return answer(convertResult(ownResult(result), v));
    }
    case 'DEL': {
      let prevResult: Result | undefined;
      try {
        prevResult = conf.prevResult && parseResult(conf.prevResult);
      } catch (e) {
        // DEL is best effort (SPEC.md): clean up by container id and ifname without it.
        log.warn({ err: e }, 'ignoring a prevResult that is not a CNI result');
      }
      await handlers.del({ ...attachment, command, prevResult });
      return answer(undefined);
    }
    case 'CHECK': {
      checkSupported(conf, env.k8s);
      if (!conf.prevResult) throw invalidConfig('prevResult: required for CHECK (the runtime passes the result of the ADD)');
      await handlers.check({ ...attachment, command, prevResult: parseResult(conf.prevResult) });
      return answer(undefined);
    }
    case 'STATUS':
      checkSupported(conf);
      await handlers.status({ ...base, command });
      return answer(undefined);
    case 'GC':
      if (!conf.validAttachments) {
        throw invalidConfig('cni.dev/valid-attachments: required for GC (without it every attachment would look stale)');
      }
      await handlers.gc({ ...base, command, validAttachments: conf.validAttachments });
      return answer(undefined);
  }
}

/** The ADD handler's result, checked as strictly as a prevResult: a malformed one is a ferry bug (999), not the runtime's. */
function ownResult(result: unknown): Result {
  if (result === undefined || result === null) throw new CniError(CniCode.Internal, 'ferry built no result for ADD');
  try {
    return parseResult(result, ['result']);
  } catch (e) {
    throw new CniError(CniCode.Internal, `ferry built an invalid result: ${(e as CniError).msg}`);
  }
}

/**
 * VERSION's answer. The spec echoes the input's cniVersion; libcni sends
 * `{"cniVersion": …}`, some runtimes the whole config, a person running
 * ferry by hand nothing at all (then 1.1.0). An unsupported but well-formed
 * version is echoed too: the answer is what tells the runtime it is unsupported.
 */
function versionAnswer(stdin: string): VersionInfo {
  if (stdin.trim() === '') return versionInfo();
  const raw = decodeJson(stdin, 'VERSION input');
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw decodingFailure('VERSION input must be a JSON object');
  const v = (raw as Record<string, unknown>).cniVersion;
  if (v === undefined || v === '') return versionInfo();
  if (typeof v !== 'string') throw decodingFailure(`cniVersion: expected string, got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`);
  if (!parseVersion(v)) throw decodingFailure(`cniVersion ${quote(v)} is not a version (MAJOR.MINOR.PATCH)`);
  return versionInfo(v);
}

function answer(body: object | undefined): CniOutput {
  return { stdout: body === undefined ? '' : render(body), exitCode: 0 };
}

/** Indented like libcni's output (json.MarshalIndent with four spaces). */
function render(body: object): string {
  return `${JSON.stringify(body, null, 4)}\n`;
}

/**
 * Best-effort reading of stdin before it is validated: the version to write
 * early errors in, and where to log them. Anything odd falls back to defaults.
 */
function peek(stdin: string): { version: string; log: LogSettings } {
  const out: { version: string; log: LogSettings } = { version: CURRENT_VERSION, log: {} };
  let raw: unknown;
  try {
    raw = decodeJson(stdin, 'network config'); // scans first: garbage is refused before JSON.parse spends time on it
  } catch {
    return out;
  }
  if (raw === null || typeof raw !== 'object') return out;
  const { cniVersion, logFile, logLevel } = raw as Record<string, unknown>;
  if (isSupportedVersion(cniVersion)) out.version = cniVersion;
  if (typeof logFile === 'string' && logFile.startsWith('/') && !logFile.includes('\0')) out.log.logFile = logFile;
  if (logLevel === 'trace' || logLevel === 'debug' || logLevel === 'info' || logLevel === 'warn' || logLevel === 'error') out.log.logLevel = logLevel;
  return out;
}

/** The request's identity in every log line, from the raw environment (so a rejected request is logged as it came). */
function bindings(env: Record<string, string | undefined>, requestId: string): Record<string, string> {
  const b: Record<string, string> = { req: requestId };
  const add = (key: string, name: string) => {
    const v = env[name];
    if (v !== undefined && v !== '') b[key] = v.length > 256 ? `${v.slice(0, 256)}…` : v;
  };
  add('cmd', 'CNI_COMMAND');
  add('containerId', 'CNI_CONTAINERID');
  add('netns', 'CNI_NETNS');
  add('ifname', 'CNI_IFNAME');
  return b;
}
