// Fixtures for driving ferry's CNI plugin end to end, through the clients a
// node really has: libcni's cnitool, and the frontend binary
// (build/cni/ferry, plugin/frontend/ferry-cni.c) executed as a runtime
// executes it. Each fixture owns a "node" netns (the plugin and every
// client run inside it through nsenter, never in the host's), a temp dir
// holding every piece of state (IPAM records, endpoint records, libcni's
// cache, the log), and optionally a ferry daemon — all removed after the
// test, even when it fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { cnitool, ensureCnitool, referencePluginDir, type CnitoolArgs, type CnitoolOutput } from './cnitool.js';
import { ipJson, makeNetns, run } from './netns.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The CNI plugin binary `make` builds: forwards to the daemon, or execs dist/plugin/main.js. */
export const FRONTEND = join(REPO_ROOT, 'build/cni/ferry');
/** The `ferry` command (dist/), whose `daemon` subcommand serves the frontend. */
export const CLI = join(REPO_ROOT, 'dist/engine/cli/ferry.js');
const PLUGIN_MAIN = join(REPO_ROOT, 'dist/plugin/main.js');

/** Throws with what to do when `make` has not built the frontend and dist/. */
export function requireBuild(): void {
  for (const path of [FRONTEND, CLI, PLUGIN_MAIN]) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run \`make\` first (it builds the CNI frontend and dist/)`);
  }
}

/** Builds cnitool (once) and checks the build; for beforeAll. */
export function prepareClients(): void {
  requireBuild();
  ensureCnitool();
}

export interface FerryFixture {
  dir: string;
  /** NETCONFPATH for cnitool. */
  confDir: string;
  /** libcni's result cache (bind-mounted over /var/lib/cni per cnitool call). */
  cacheDir: string;
  /** ferry's ipam.dataDir: records live in `${ipamDir}/${network}`. */
  ipamDir: string;
  /** ferry's dataDir: endpoint records live in `${stateDir}/endpoints/${network}`. */
  stateDir: string;
  logFile: string;
  /** The "node" netns: plugin, daemon and clients run in it. */
  node: string;
  /** The network's name, unique per fixture. */
  network: string;
  /** A unique 10.x.y.0/24 prefix "10.x.y" and its ULA twin "fdXX:YYYY::". */
  v4: string;
  v6: string;
  /** A socket path nothing listens on: pins the frontend to in-process mode whatever the host runs. */
  noDaemon: string;
}

const fixtures: FerryFixture[] = [];
const daemons: ChildProcess[] = [];

afterEach(async () => {
  // Daemons first: they run in the fixtures' namespaces and write to their dirs.
  await Promise.all(daemons.splice(0).map((d) => stopProcess(d)));
  for (const f of fixtures.splice(0)) rmSync(f.dir, { recursive: true, force: true });
});
// A worker that dies mid-test must not leave a daemon behind.
process.once('exit', () => {
  for (const d of daemons) d.kill('SIGKILL');
});

export function ferryFixture(prefix = 'fy'): FerryFixture {
  const dir = mkdtempSync(join(tmpdir(), `ferry-${prefix}-`));
  const a = randomInt(1, 255);
  const b = randomInt(0, 256);
  const f: FerryFixture = {
    dir,
    confDir: join(dir, 'net.d'),
    cacheDir: join(dir, 'cache'),
    ipamDir: join(dir, 'ipam'),
    stateDir: join(dir, 'state'),
    logFile: join(dir, 'cni.log'),
    node: makeNetns(`${prefix}-node`),
    network: `${prefix}-${randomBytes(4).toString('hex')}`,
    v4: `10.${a}.${b}`,
    // Written as ferry prints it (canonical): a zero group would be elided (fd00:1a::), so never 0.
    v6: `fd00:${a.toString(16)}:${(b + 1).toString(16)}::`,
    noDaemon: join(dir, 'no-daemon.sock'),
  };
  for (const d of [f.confDir, f.cacheDir]) mkdirSync(d);
  fixtures.push(f);
  return f;
}

/** A fresh pod netns (deleted after the test); returns its name. */
export function podNetns(prefix = 'fy-pod'): string {
  return makeNetns(prefix);
}

export const netnsPath = (name: string) => `/var/run/netns/${name}`;

export type Family = 'v4' | 'v6' | 'dual';

export interface PluginOptions {
  mode?: 'routed' | 'bridge';
  family?: Family;
  /** Replaces the generated ipam.ranges. */
  ranges?: unknown[][];
  /** Merged over the plugin entry (after the defaults). */
  extra?: Record<string, unknown>;
}

/** Bridge names are per fixture too (IFNAMSIZ: 15). */
export function bridgeName(f: FerryFixture): string {
  return `fbr${createHash('sha256').update(f.network).digest('hex').slice(0, 8)}`;
}

/** ferry's entry in a conflist (no cniVersion or name: the list carries them). */
export function ferryPlugin(f: FerryFixture, o: PluginOptions = {}): Record<string, unknown> {
  const family = o.family ?? 'dual';
  const ranges = o.ranges ?? [
    ...(family !== 'v6' ? [[{ subnet: `${f.v4}.0/24` }]] : []),
    ...(family !== 'v4' ? [[{ subnet: `${f.v6}/64` }]] : []),
  ];
  const bridge =
    o.mode === 'bridge' ? { mode: 'bridge', bridge: bridgeName(f), isGateway: true, isDefaultGateway: true } : { mode: o.mode ?? 'routed' };
  return {
    type: 'ferry',
    ...bridge,
    logFile: f.logFile,
    logLevel: 'debug',
    dataDir: f.stateDir,
    ipam: { type: 'ferry', ranges, dataDir: f.ipamDir },
    ...o.extra,
  };
}

/** A whole single-plugin config (the .conf form, and stdin for direct calls). */
export function ferryConf(f: FerryFixture, cniVersion: string, o: PluginOptions = {}): Record<string, unknown> {
  return { cniVersion, name: f.network, ...ferryPlugin(f, o) };
}

export function writeConflist(f: FerryFixture, cniVersion: string, plugins: Record<string, unknown>[]): void {
  writeFileSync(join(f.confDir, '10-ferry.conflist'), JSON.stringify({ cniVersion, name: f.network, plugins }, null, 2));
}

export function writeConf(f: FerryFixture, conf: Record<string, unknown>): void {
  writeFileSync(join(f.confDir, '10-ferry.conf'), JSON.stringify(conf, null, 2));
}

/** The container id cnitool derives from the netns path (cnitool.go: "cnitool-" + 20 hex of sha512). */
export function cnitoolContainerId(netnsPathOrName: string): string {
  const path = netnsPathOrName.startsWith('/') ? netnsPathOrName : netnsPath(netnsPathOrName);
  return `cnitool-${createHash('sha512').update(path).digest('hex').slice(0, 20)}`;
}

export interface CnitoolCall extends Partial<Omit<CnitoolArgs, 'command'>> {
  /** A daemon's socket; default: the fixture's noDaemon path (in-process mode). */
  socket?: string;
}

/** cnitool inside the node netns, with ferry's build dir and the reference plugins on CNI_PATH. */
export function ferryCnitool(f: FerryFixture, command: CnitoolArgs['command'], pod: string, c: CnitoolCall = {}): CnitoolOutput {
  const { socket, env, ...rest } = c;
  return cnitool({
    command,
    network: f.network,
    netnsPath: netnsPath(pod),
    confDir: f.confDir,
    pluginPaths: [join(REPO_ROOT, 'build/cni'), referencePluginDir()],
    cacheDir: f.cacheDir,
    nodeNetns: f.node,
    env: { FERRY_CNI_SOCKET: socket ?? f.noDaemon, ...env },
    ...rest,
  });
}

export interface FrontendCall {
  /** CNI_* variables (and anything else) exactly as given; nothing is inherited. */
  env: Record<string, string | undefined>;
  /** An object is JSON-encoded; a string goes as it is. */
  stdin: string | object;
  /** A daemon's socket; default: the fixture's noDaemon path (in-process mode). */
  socket?: string;
  timeoutMs?: number;
}

export interface FrontendOutput {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json?: any;
}

/** Executes build/cni/ferry in the node netns the way a runtime does: env, stdin, stdout, exit code. */
export function runFrontend(f: FerryFixture, call: FrontendCall): Promise<FrontendOutput> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', FERRY_CNI_SOCKET: call.socket ?? f.noDaemon };
  for (const [k, v] of Object.entries(call.env)) if (v !== undefined) env[k] = v;
  const stdin = typeof call.stdin === 'string' ? call.stdin : JSON.stringify(call.stdin);
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath(f.node)}`, '--', FRONTEND], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), call.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const res: FrontendOutput = { status, stdout, stderr: Buffer.concat(err).toString('utf8') + (signal ? `\n(killed by ${signal})` : '') };
      if (stdout.trim() !== '') {
        try {
          res.json = JSON.parse(stdout);
        } catch {
          // left unparsed; the caller's assertion shows stdout
        }
      }
      resolve(res);
    });
    child.stdin.on('error', () => undefined); // the frontend may exit before reading everything
    child.stdin.end(stdin);
  });
}

/** The CNI_* environment of an attachment verb. */
export function cniEnv(command: string, containerId: string, pod: string, ifname = 'eth0', extra: Record<string, string | undefined> = {}) {
  return { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netnsPath(pod), CNI_IFNAME: ifname, CNI_PATH: '/usr/lib/cni', ...extra };
}

// --- what is left on the node ---------------------------------------------------

export interface Leftovers {
  /** veths named like ferry's host ends (fy + 13 hex) in the node netns. */
  hostVeths: string[];
  /** IP-named files in the network's IPAM directory. */
  ipRecords: string[];
  /** Endpoint record files. */
  endpoints: string[];
}

export function hostVeths(f: FerryFixture): string[] {
  return ipJson<Array<{ ifname: string }>>(f.node, ['link', 'show', 'type', 'veth'])
    .map((l) => l.ifname)
    .filter((n) => /^fy[0-9a-f]{13}$/.test(n));
}

export function ipRecords(f: FerryFixture): string[] {
  return listDir(join(f.ipamDir, f.network)).filter((n) => isIP(n) !== 0);
}

export function endpointFiles(f: FerryFixture): string[] {
  return listDir(join(f.stateDir, 'endpoints', f.network)).filter((n) => n.endsWith('.json'));
}

export function endpointRecord(f: FerryFixture, containerId: string, ifname = 'eth0'): any {
  return JSON.parse(readFileSync(join(f.stateDir, 'endpoints', f.network, `${containerId}_${ifname}.json`), 'utf8'));
}

export function leftovers(f: FerryFixture): Leftovers {
  return { hostVeths: hostVeths(f), ipRecords: ipRecords(f), endpoints: endpointFiles(f) };
}

export function expectNothingLeft(f: FerryFixture, context = ''): void {
  expect(leftovers(f), `${context} leaves nothing behind`).toEqual({ hostVeths: [], ipRecords: [], endpoints: [] });
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** The pod interface's addresses of global scope, "ADDR/PREFIX". */
export function podAddrs(pod: string, ifname = 'eth0'): string[] {
  return ipJson<any[]>(pod, ['addr', 'show', 'dev', ifname]).flatMap((l) =>
    (l.addr_info ?? []).filter((a: any) => a.scope === 'global').map((a: any) => `${a.local}/${a.prefixlen}`),
  );
}

export function linkExists(ns: string, dev: string): boolean {
  return spawnSync('ip', ['-n', ns, 'link', 'show', 'dev', dev], { stdio: 'ignore' }).status === 0;
}

// --- the daemon ---------------------------------------------------------------

export interface Daemon {
  socket: string;
  pid: number;
  /** Stops it now (SIGTERM, then SIGKILL); teardown does the same for any still running. */
  stop(): Promise<void>;
}

/**
 * Starts `ferry daemon` inside the node netns with its socket in the
 * fixture's dir, and waits until the socket exists. Killed in teardown.
 */
export async function startDaemon(f: FerryFixture, timeoutMs = 15_000): Promise<Daemon> {
  const socket = join(f.dir, 'run', 'cni.sock');
  // nsenter execs node (no fork), so the child's pid is the daemon's.
  const child = spawn('nsenter', [`--net=${netnsPath(f.node)}`, '--', process.execPath, CLI, 'daemon', '--cni-socket', socket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemons.push(child);
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`ferry daemon exited (${child.exitCode ?? child.signalCode}) before listening:\n${output}`);
    }
    if (Date.now() > deadline) throw new Error(`ferry daemon did not create ${socket} within ${timeoutMs} ms:\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    socket,
    pid: child.pid!,
    stop: async () => {
      const i = daemons.indexOf(child);
      if (i >= 0) daemons.splice(i, 1);
      await stopProcess(child);
    },
  };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Whether a process is alive (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The node's own addresses (NODE_V4, NODE_V6), for node↔pod traffic. */
export const NODE_V4 = '192.0.2.1';
export const NODE_V6 = '2001:db8::1';

/**
 * Gives the node netns addresses of its own, as a real node's uplink would:
 * 192.0.2.1/32 and 2001:db8::1/128 on one end of a veth pair inside it (this
 * kernel has no dummy driver; a veth with both ends up has carrier).
 */
export function addNodeAddresses(f: FerryFixture): void {
  const ip = (...args: string[]) => run('ip', ['-n', f.node, ...args]);
  ip('link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1');
  ip('link', 'set', 'lo', 'up');
  ip('link', 'set', 'uplink1', 'up');
  ip('link', 'set', 'uplink0', 'up');
  ip('addr', 'add', `${NODE_V4}/32`, 'dev', 'uplink0');
  ip('addr', 'add', `${NODE_V6}/128`, 'dev', 'uplink0', 'nodad');
}

/** `nsenter --net=NODE CMD ARGS` output. */
export function inNode(f: FerryFixture, cmd: string, args: string[]): string {
  return run('nsenter', [`--net=${netnsPath(f.node)}`, cmd, ...args]);
}
