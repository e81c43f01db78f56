// A `ferry daemon` child process inside a node namespace (nsenter, run
// through tsx: no build needed), with its pino JSON log lines collected so
// tests can wait for them.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [key: string]: unknown;
}

export class DaemonProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();

  constructor(nodeNs: string, args: string[]) {
    this.child = spawn('nsenter', [`--net=/var/run/netns/${nodeNs}`, process.execPath, '--import', 'tsx', 'engine/cli/ferry.ts', 'daemon', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.stderr.push(line);
        }
      }
      for (const w of this.#waiters) w();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    void this.exited.then(() => {
      for (const w of this.#waiters) w();
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first line (at index `from` or later) that `match` accepts. */
  async waitFor(match: (l: LogLine) => boolean, timeoutMs = 15_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found) return found;
      if (!this.alive) throw new Error(`daemon exited before the awaited log line; stderr: ${this.stderr.join('')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such log line within ${timeoutMs} ms; last lines:\n${this.lines.slice(-5).map((l) => JSON.stringify(l)).join('\n')}\n${this.stderr.join('')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const self = this;
        function done() {
          clearTimeout(timer);
          self.#waiters.delete(done);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  /** The next sync line after the ones seen so far. */
  nextSync(timeoutMs?: number): Promise<LogLine> {
    const seen = this.lines.filter(isSync).length;
    return this.waitFor((l) => isSync(l) && (l.sync as number) > seen, timeoutMs);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }
}

export const isSync = (l: LogLine): boolean => typeof l.sync === 'number';
