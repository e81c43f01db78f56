// The plugin's log: pino, JSON lines, to a file (default
// /var/log/ferry/cni.log). Never stdout — stdout is the CNI protocol's — and
// stderr only when the file cannot be opened. Logging never fails a request.
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import { DEFAULT_LOG_FILE, type NetConf } from './config.js';

export type { Logger } from 'pino';

export type LogLevel = NetConf['logLevel'];
export interface LogSettings {
  logFile?: string;
  logLevel?: LogLevel;
}

// One stream per file for the life of the process: runCni may be called many
// times in one process (tests, a future daemon) and must not leak fds.
const streams = new Map<string, { stream: DestinationStream; error?: Error }>();

/**
 * A logger writing to `logFile` (its directory is created). Writes are
 * synchronous: the plugin exits right after answering, and an async writer
 * would lose the last lines. When the file cannot be opened (no root, read-only
 * /var/log) the logger writes to stderr, which the spec leaves to logs, and
 * says why in its first line.
 */
export function createLogger(settings: LogSettings = {}): Logger {
  const file = settings.logFile ?? DEFAULT_LOG_FILE;
  let entry = streams.get(file);
  if (!entry) {
    entry = open(file);
    streams.set(file, entry);
  }
  const logger = pino(
    {
      level: settings.logLevel ?? 'info',
      base: { pid: process.pid, plugin: 'ferry' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    entry.stream,
  );
  if (entry.error) logger.warn({ logFile: file, err: entry.error }, `cannot open log file ${JSON.stringify(file)}; logging to stderr`);
  return logger;
}

function open(file: string): { stream: DestinationStream; error?: Error } {
  try {
    makeDirs(dirname(file));
    const fd = openSync(file, 'a', 0o640);
    return { stream: quiet(pino.destination({ fd, sync: true })) };
  } catch (e) {
    return { stream: quiet(pino.destination({ fd: 2, sync: true })), error: e as Error };
  }
}

/**
 * `mkdir -p`, one level at a time. Not mkdirSync's `recursive`: on Node 20 it
 * spins forever when mkdir says ENOENT under an existing parent (/proc, some
 * FUSE mounts), and a CNI plugin must never hang on a log path.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** A write error later on (disk full) is dropped rather than crash the plugin mid-request. */
function quiet<T extends DestinationStream>(stream: T): T {
  (stream as unknown as NodeJS.EventEmitter).on?.('error', () => {});
  return stream;
}
