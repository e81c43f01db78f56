// Test harness around libcni's reference `cnitool`, the oracle a container
// runtime would be: it loads a network configuration the way libcni does,
// runs the plugin chain (ADD/CHECK/DEL with prevResult, capability args and
// its result cache) and prints the final result.
//
// Debian 12 ships libcni 1.1.2 (golang-github-appc-cni-dev: spec versions
// 0.1.0 … 1.0.0); its cnitool knows `add`, `check` and `del` only (no GC or
// STATUS, which came with spec 1.1.0). test/support/cnitool.sh builds it.
//
// cnitool reads NETCONFPATH, CNI_PATH, CNI_IFNAME (default eth0), CNI_ARGS
// ("K=V;K2=V2") and CAP_ARGS (JSON). The container ID is derived from the
// netns path (cnitool-<sha512 prefix>), so ADD and DEL must name the same
// path. Its result cache is libcni's hard-coded /var/lib/cni (no env or flag
// changes it): `cacheDir` runs cnitool in a private mount namespace with that
// directory bind-mounted over /var/lib/cni.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./cnitool.sh', import.meta.url));
const DEFAULT_CACHE = `${REPO_ROOT}build/cnitool`;
/** libcni's result cache directory (libcni.CacheDir); not configurable in cnitool. */
export const LIBCNI_CACHE_DIR = '/var/lib/cni';

let built: string | undefined;

/**
 * Builds cnitool (once per process; the script itself is cached on disk and
 * locked against concurrent workers) and returns the binary's path.
 */
export function ensureCnitool(cacheDir: string = DEFAULT_CACHE): string {
  if (built !== undefined) return built;
  const r = spawnSync('bash', [SCRIPT, cacheDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`cannot run ${SCRIPT}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${SCRIPT} failed (exit ${r.status ?? r.signal}):\n${r.stderr.trim()}`);
  }
  const path = r.stdout.trim().split('\n').pop() ?? '';
  if (!path || !existsSync(path)) throw new Error(`${SCRIPT} printed no usable path:\n${r.stdout}${r.stderr}`);
  built = path;
  return path;
}

/** Where Debian's containernetworking-plugins installs the reference plugins. */
export function referencePluginDir(): string {
  for (const dir of ['/usr/lib/cni', '/opt/cni/bin']) {
    if (existsSync(`${dir}/bridge`)) return dir;
  }
  return '/usr/lib/cni';
}

export interface CnitoolArgs {
  command: 'add' | 'del' | 'check';
  /** The network's `name` in a .conflist/.conf/.json file of confDir. */
  network: string;
  /** The pod's netns path, e.g. /var/run/netns/NAME. */
  netnsPath: string;
  /** NETCONFPATH. */
  confDir: string;
  /** CNI_PATH. */
  pluginPaths: string[];
  /** CAP_ARGS, e.g. { portMappings: [...] }. */
  capabilityArgs?: object;
  /** CNI_ARGS, "K=V;K2=V2". */
  args?: string;
  /** CNI_IFNAME (cnitool defaults to eth0). */
  ifname?: string;
  /** libcni's result cache, bind-mounted over /var/lib/cni for this call. */
  cacheDir?: string;
  /**
   * Runs cnitool (and so every plugin it execs) inside this named netns
   * (/var/run/netns/NAME) with nsenter, network namespace only. Plugins such
   * as the reference bridge act on the namespace they run in: use a "node"
   * netns so nothing lands in the host's.
   */
  nodeNetns?: string;
  /** Extra environment for cnitool and the plugins. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface CnitoolOutput {
  status: number;
  stdout: string;
  stderr: string;
  /** The JSON result cnitool printed (ADD), when it printed one. */
  result?: any;
}

const CNITOOL_ENV = ['NETCONFPATH', 'CNI_PATH', 'CNI_IFNAME', 'CNI_ARGS', 'CAP_ARGS'];

/** Runs `cnitool COMMAND NETWORK NETNS` with the environment it reads. */
export function cnitool(a: CnitoolArgs): CnitoolOutput {
  const bin = ensureCnitool();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Nothing inherited may leak into the call: cnitool reads these, plugins read CNI_*.
    if (!k.startsWith('CNI_') && !CNITOOL_ENV.includes(k)) env[k] = v;
  }
  Object.assign(env, a.env);
  env.NETCONFPATH = a.confDir;
  env.CNI_PATH = a.pluginPaths.join(':');
  if (a.ifname !== undefined) env.CNI_IFNAME = a.ifname;
  if (a.args !== undefined) env.CNI_ARGS = a.args;
  if (a.capabilityArgs !== undefined) env.CAP_ARGS = JSON.stringify(a.capabilityArgs);

  let argv = [bin, a.command, a.network, a.netnsPath];
  if (a.cacheDir !== undefined) {
    // A private mount namespace (unshare's default propagation), so the bind
    // mount is gone when cnitool exits. /var/lib/cni must exist as a mount
    // point: created (empty) on the host when missing.
    argv = [
      'unshare', '--mount', '--propagation', 'private', '--',
      'sh', '-c', `mkdir -p ${LIBCNI_CACHE_DIR} && mount --bind "$0" ${LIBCNI_CACHE_DIR} && exec "$@"`,
      a.cacheDir, ...argv,
    ];
  }
  if (a.nodeNetns !== undefined) argv = ['nsenter', `--net=/var/run/netns/${a.nodeNetns}`, '--', ...argv];

  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: a.timeoutMs ?? 60_000,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (r.error && !timedOut) throw new Error(`cannot run ${argv.join(' ')}: ${r.error.message}`);
  const out: CnitoolOutput = {
    status: r.status ?? -1,
    stdout: r.stdout ?? '',
    stderr: r.status === null ? `${r.stderr ?? ''}\n(${timedOut ? 'timed out, ' : ''}killed by ${r.signal})` : r.stderr,
  };
  const text = out.stdout.trim();
  if (text.startsWith('{')) {
    try {
      out.result = JSON.parse(text);
    } catch {
      // leave result unset; stdout has the raw text
    }
  }
  return out;
}
