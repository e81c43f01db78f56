// The outer side of runner.ts: starts a runner inside a node netns and a
// private mount namespace, sends it batches of cnitool calls and reads back
// their timings.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface, type Interface } from 'node:readline';
import type { Batch, BatchResult, CniCommand } from './protocol.js';

const RUNNER = fileURLToPath(new URL('./runner.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** libcni's result cache (libcni.CacheDir), hard-coded in cnitool. */
const LIBCNI_CACHE_DIR = '/var/lib/cni';
/** Variables cnitool or a plugin reads; none may be inherited from the caller. */
const CNITOOL_ENV = ['NETCONFPATH', 'CNI_PATH', 'CNI_IFNAME', 'CNI_ARGS', 'CAP_ARGS', 'FERRY_CNI_SOCKET'];

export interface RunnerOptions {
  cnitool: string;
  /** The node netns (by name) cnitool and its plugins run in. */
  nodeNetns: string;
  /** Bind-mounted over /var/lib/cni for the runner and its children. */
  cacheDir: string;
  confDir: string;
  pluginPaths: string[];
  env?: Record<string, string>;
}

export class CnitoolRunner {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>();
  private stderr = '';
  private exited: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: Interface,
    private readonly what: string,
  ) {}

  static async start(o: RunnerOptions): Promise<CnitoolRunner> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('CNI_') && !CNITOOL_ENV.includes(k)) env[k] = v;
    }
    Object.assign(env, o.env, { NETCONFPATH: o.confDir, CNI_PATH: o.pluginPaths.join(':'), CNI_IFNAME: 'eth0' });
    // nsenter and unshare exec their command, sh execs node: the runner's pid is this child's.
    const argv = [
      `--net=/var/run/netns/${o.nodeNetns}`, '--',
      'unshare', '--mount', '--propagation', 'private', '--',
      'sh', '-c', `mkdir -p ${LIBCNI_CACHE_DIR} && mount --bind "$0" ${LIBCNI_CACHE_DIR} && exec "$@"`,
      o.cacheDir, process.execPath, '--import', 'tsx', RUNNER, o.cnitool,
    ];
    const child = spawn('nsenter', argv, { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout! });
    const runner = new CnitoolRunner(child, lines, `cnitool runner in netns ${o.nodeNetns}`);
    child.stderr!.on('data', (b: Buffer) => (runner.stderr = (runner.stderr + b.toString('utf8')).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) => {
        runner.exited = `exited (${code ?? signal})`;
        reject(new Error(`${runner.what} ${runner.exited} before it was ready:\n${runner.stderr.trim()}`));
      };
      child.once('exit', onExit);
      child.once('error', reject);
      lines.once('line', (first) => {
        child.off('exit', onExit);
        if ((JSON.parse(first) as { ready?: boolean }).ready) resolve();
        else reject(new Error(`${runner.what}: unexpected first line ${first}`));
      });
    });
    lines.on('line', (line) => {
      const result = JSON.parse(line) as BatchResult;
      runner.pending.get(result.id)?.resolve(result);
      runner.pending.delete(result.id);
    });
    child.once('exit', (code, signal) => {
      runner.exited = `exited (${code ?? signal})`;
      const err = new Error(`${runner.what} ${runner.exited}:\n${runner.stderr.trim()}`);
      for (const p of runner.pending.values()) p.reject(err);
      runner.pending.clear();
    });
    return runner;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts one cnitool call per netns path at once; resolves when all have exited. */
  run(command: CniCommand, network: string, netns: string[]): Promise<BatchResult> {
    if (this.exited) return Promise.reject(new Error(`${this.what} ${this.exited}:\n${this.stderr.trim()}`));
    const batch: Batch = { id: this.nextId++, command, network, netns };
    return new Promise((resolve, reject) => {
      this.pending.set(batch.id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify(batch)}\n`);
    });
  }

  /** Synchronous, for cleanup paths. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /** Closes its stdin and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    this.lines.close();
    await gone;
  }
}
