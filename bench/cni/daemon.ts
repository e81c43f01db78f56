// ferry's node daemon for the bench: `ferry daemon --cni-socket PATH`, run
// inside the node netns (it serves CNI calls in the namespace it runs in),
// its own log (pino, stdout) kept in a file.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, closeSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FERRY_CLI = `${REPO_ROOT}dist/engine/cli/ferry.js`;

export interface DaemonOptions {
  nodeNetns: string;
  socket: string;
  /** Where the daemon's stdout and stderr go. */
  logFile: string;
  readyTimeoutMs?: number;
}

export class FerryDaemon {
  private exited: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly socket: string,
    readonly logFile: string,
  ) {
    child.once('exit', (code, signal) => (this.exited = `exited (${code ?? signal})`));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts the daemon and waits until its socket accepts a connection. */
  static async start(o: DaemonOptions): Promise<FerryDaemon> {
    const out = openSync(o.logFile, 'a');
    let child: ChildProcess;
    try {
      // nsenter execs node: the daemon's pid is the child's.
      child = spawn('nsenter', [`--net=/var/run/netns/${o.nodeNetns}`, '--', process.execPath, FERRY_CLI, 'daemon', '--cni-socket', o.socket], {
        cwd: REPO_ROOT,
        stdio: ['ignore', out, out],
      });
    } finally {
      closeSync(out);
    }
    const daemon = new FerryDaemon(child, o.socket, o.logFile);
    const deadline = Date.now() + (o.readyTimeoutMs ?? 15_000);
    while (!(existsSync(o.socket) && (await accepts(o.socket)))) {
      if (daemon.exited || Date.now() > deadline) {
        const why = daemon.exited ?? `did not listen on ${o.socket} within ${o.readyTimeoutMs ?? 15_000} ms`;
        daemon.kill();
        throw new Error(`ferry daemon in netns ${o.nodeNetns} ${why}; its log (${o.logFile}):\n${tail(o.logFile)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return daemon;
  }

  /** SIGTERM (the daemon closes its socket and handle), SIGKILL after a grace period. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), graceMs);
    await gone;
    clearTimeout(timer);
  }

  /** Synchronous, for cleanup paths. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** True when a connection to the unix socket succeeds (closed at once, before any frame). */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
