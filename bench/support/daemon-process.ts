// A ferry daemon (or another node process of the benches) run as a child
// inside a node netns: `nsenter --net=… node SCRIPT ARGS`, its pino JSON log
// lines (stdout) collected and timestamped on arrival so a bench can wait for
// them, and its resident memory and CPU time read from /proc. nsenter execs
// node, so the child's pid is the daemon's.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { netnsPath } from './netns.js';

export interface LogLine {
  msg: string;
  /** performance.now() in this process when the line arrived. */
  at: number;
  [key: string]: unknown;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

export class DaemonProcess {
  readonly lines: LogLine[] = [];
  readonly #output: string[] = [];
  readonly #child: ChildProcess;
  readonly #exited: Promise<unknown>;
  #waiters = new Set<() => void>();

  /** `argv`: the node script and its arguments; run with this node binary. */
  constructor(nodeNetns: string, argv: string[], nodeArgs: string[] = []) {
    this.#child = spawn('nsenter', [`--net=${netnsPath(nodeNetns)}`, '--', process.execPath, ...nodeArgs, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#exited = once(this.#child, 'exit');
    let buffered = '';
    this.#child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const at = performance.now();
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          this.lines.push({ ...(JSON.parse(line) as { msg: string }), at });
        } catch {
          this.#output.push(line);
        }
      }
      this.#wake();
    });
    this.#child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.#output.push(chunk));
    void this.#exited.then(() => this.#wake());
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The first line at index `from` or later that `match` accepts. */
  async waitFor(what: string, match: (l: LogLine) => boolean, timeoutMs: number, from = 0): Promise<LogLine> {
    const deadline = performance.now() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.lines.length; i++) if (match(this.lines[i]!)) return this.lines[i]!;
      if (!this.alive) throw new Error(`the daemon exited while waiting for ${what}:\n${this.tail()}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }

  /** Resident set size now (VmRSS), in MiB. */
  rssMiB(): number {
    return statusKiB(this.pid, 'VmRSS') / 1024;
  }

  /** Peak resident set size so far (VmHWM), in MiB. */
  peakRssMiB(): number {
    return statusKiB(this.pid, 'VmHWM') / 1024;
  }

  /** User + system CPU time so far, all threads, in ms (10 ms resolution). */
  cpuMs(): number {
    // Fields after the command name, which is in parentheses and may hold spaces.
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  }

  /** The last log lines and anything the daemon printed that was not JSON. */
  tail(n = 8): string {
    return [...this.lines.slice(-n).map((l) => JSON.stringify(l)), ...this.#output.slice(-n)].join('\n');
  }

  /** SIGKILL, synchronously: fit for a cleanup path. */
  kill(): void {
    if (this.alive) this.#child.kill('SIGKILL');
  }

  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    const timer = setTimeout(() => this.kill(), graceMs);
    this.#child.kill('SIGTERM');
    await this.#exited;
    clearTimeout(timer);
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

function statusKiB(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  if (line === undefined) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(line.split(/\s+/)[1]);
}
