// The daemon's end-to-end fixtures: a `ferry daemon` child process inside a
// node namespace (nsenter, run through tsx: no build needed), with its pino
// JSON log lines collected so tests can wait for them; a node namespace
// whose pods are attached by ferry's CNI to the dataplane the daemon pins;
// HTTP GETs from inside the node namespace, where the daemon's servers are.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { Netns } from '../../engine/netns/netns.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { makeNetns, run } from '../support/netns.js';

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

/** Something to undo after the test (run in reverse order). */
export type Defer = (cleanup: () => unknown) => void;

export interface Pod {
  ns: string;
  netns: Netns;
  ip: string;
  /** Its IPv6 address, from a dual-stack fixture (NodeFixtureOptions.dualStack). */
  ip6?: string;
  /** Its veth's end in the node namespace. */
  hostVeth: string;
}

export interface NodeFixture {
  /** The node namespace's name; the daemon runs there. */
  ns: string;
  netns: Netns;
  pinRoot: string;
  /** A temp dir for sockets, manifests, logs and the CNI's state. */
  dir: string;
  /** A pod namespace attached by CNI ADD (ferry routed mode, hooked to `pinRoot`'s dataplane). */
  addPod(label: string, k8s?: PodName): Promise<Pod>;
  /** CNI DEL of the pod addPod(label) made. */
  delPod(label: string, pod: Pod): Promise<void>;
}

/** A pod's Kubernetes name, passed in CNI_ARGS as kubelet does. */
export interface PodName {
  namespace: string;
  name: string;
}

export interface NodeFixtureOptions {
  /** false: the CNI config names no dataplane, pods are routed by the stack alone. */
  ebpf?: boolean;
  /** Pods get an IPv6 address from fd00:244::/64 too. */
  dualStack?: boolean;
}

export function nodeFixture(prefix: string, defer: Defer, options: NodeFixtureOptions = {}): NodeFixture {
  const pinRoot = makePinDir(prefix);
  defer(() => removePinDir(pinRoot));
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const ns = makeNetns(`${prefix}-node`);
  const netns = Netns.open(ns);
  defer(() => netns.close());
  run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  const handlers = createHandlers({ nodeNetns: netns });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: prefix,
    type: 'ferry',
    logFile: join(dir, 'cni.log'),
    dataDir: join(dir, 'state'),
    ...(options.ebpf !== false && { ebpf: { pinRoot } }),
    ipam: { type: 'ferry', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }], ...(options.dualStack ? [[{ subnet: 'fd00:244::/64' }]] : [])] },
  });
  const cni = async (command: 'ADD' | 'DEL', label: string, podNetns: Netns, k8s?: PodName): Promise<string> => {
    const env = {
      CNI_COMMAND: command,
      CNI_CONTAINERID: `${prefix}-${label}`,
      CNI_NETNS: podNetns.path,
      CNI_IFNAME: 'eth0',
      ...(k8s !== undefined && { CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${k8s.namespace};K8S_POD_NAME=${k8s.name}` }),
    };
    const out = await runCni({ env, stdin: conf }, handlers);
    expect(out.exitCode, out.stdout).toBe(0);
    return out.stdout;
  };
  return {
    ns,
    netns,
    pinRoot,
    dir,
    addPod: async (label, k8s) => {
      const podNs = makeNetns(`${prefix}-${label}`);
      const podNetns = Netns.open(podNs);
      defer(() => podNetns.close());
      const result = JSON.parse(await cni('ADD', label, podNetns, k8s)) as { interfaces: Array<{ name: string }>; ips: Array<{ address: string }> };
      const [ip, ip6] = result.ips.map((i) => i.address.split('/')[0]!);
      return { ns: podNs, netns: podNetns, ip: ip!, ...(ip6 !== undefined && { ip6 }), hostVeth: result.interfaces[0]!.name };
    },
    delPod: async (label, pod) => void (await cni('DEL', label, pod.netns)),
  };
}

export interface HttpAnswer {
  status: number;
  body: string;
  json?: any;
}

/** GET `url` from inside the namespace `ns` (a node process there: the test's own threads stay put). Rejects when nothing answers. */
export async function httpGetIn(ns: string, url: string): Promise<HttpAnswer> {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => console.log(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), body: await r.text() })), (e) => { console.error(String(e.cause?.code ?? e.message)); process.exit(3); })`;
  const { stdout } = await promisify(execFile)('nsenter', [`--net=/var/run/netns/${ns}`, process.execPath, '-e', script]);
  const answer = JSON.parse(stdout) as { status: number; type: string | null; body: string };
  return { status: answer.status, body: answer.body, ...(answer.type?.startsWith('application/json') && { json: JSON.parse(answer.body) }) };
}

/** Polls `get` until `done` accepts its answer (generous timeout: the daemon shares 2 cores with the suite). */
export async function pollUntil<T>(what: string, get: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | Error | undefined;
  for (;;) {
    try {
      last = await get();
      if (done(last)) return last;
    } catch (e) {
      last = e as Error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
