// The plugins the CNI bench runs side by side, each in its own node netns
// with its own pods, configuration directory, IPAM store and libcni cache:
// the reference bridge + host-local chain, ferry through its frontend
// binary (routed and bridge mode), and a no-op plugin that shows what
// cnitool itself costs (the floor).
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where `make` puts ferry's CNI binary (plugin/frontend/ferry-cni.c). */
export const FERRY_CNI_DIR = `${REPO_ROOT}build/cni`;

export type FerryMode = 'routed' | 'bridge';
export type ContenderKey = 'floor' | 'reference' | `ferry-${FerryMode}`;

export interface Contender {
  key: ContenderKey;
  label: string;
  network: string;
  /** Node netns name: cnitool, the plugins and ferry's daemon run there. */
  node: string;
  /** Pod netns names; cnitool derives each container id from the path. */
  pods: string[];
  dir: string;
  confDir: string;
  cacheDir: string;
  pluginPaths: string[];
  subnet: string;
  /** Extra environment for cnitool and the plugins. */
  env: Record<string, string>;
  ferry?: {
    mode: FerryMode;
    /** FERRY_CNI_SOCKET; nothing listens there until the daemon starts (in-process mode). */
    socket: string;
    /** The plugin's logFile: one JSON line per request, with `ms` on "ADD done" / "DEL done". */
    logFile: string;
    /** The daemon's own stdout/stderr. */
    daemonLog: string;
  };
}

export interface ContenderPlan {
  key: ContenderKey;
  /** Prefix for the contender's netns names (unique per run). */
  prefix: string;
  pods: number;
  /** The contender's temp directory (created here). */
  dir: string;
  referencePluginDir: string;
  /** The directory holding the no-op plugin, `noop`. */
  floorPluginDir: string;
}

const SHORT: Record<ContenderKey, string> = { floor: 'nop', reference: 'ref', 'ferry-routed': 'frt', 'ferry-bridge': 'fbr' };
const LABEL: Record<ContenderKey, string> = {
  floor: 'no-op plugin',
  reference: 'reference',
  'ferry-routed': 'ferry routed',
  'ferry-bridge': 'ferry bridge',
};

/** A random /24 in 10.0.0.0/8 (every contender has its own node netns; unique anyway). */
function subnet(): string {
  return `10.${randomInt(200, 250)}.${randomInt(0, 256)}.0/24`;
}

export function planContender(p: ContenderPlan): Contender {
  const short = SHORT[p.key];
  const c: Contender = {
    key: p.key,
    label: LABEL[p.key],
    network: `bench-${short}-${randomBytes(3).toString('hex')}`,
    node: `${p.prefix}-${short}-node`,
    pods: Array.from({ length: p.pods }, (_, i) => `${p.prefix}-${short}-p${String(i).padStart(2, '0')}`),
    dir: p.dir,
    confDir: join(p.dir, 'net.d'),
    cacheDir: join(p.dir, 'libcni-cache'),
    pluginPaths: [p.key === 'reference' ? p.referencePluginDir : p.key === 'floor' ? p.floorPluginDir : FERRY_CNI_DIR],
    subnet: subnet(),
    env: {},
  };
  for (const d of [c.confDir, c.cacheDir]) mkdirSync(d, { recursive: true });
  // Both chains route 0.0.0.0/0 through the pod's gateway, as a cluster does.
  const routes = [{ dst: '0.0.0.0/0' }];
  let plugin: Record<string, unknown>;
  if (p.key === 'floor') {
    plugin = { type: 'noop' };
  } else if (p.key === 'reference') {
    plugin = {
      type: 'bridge',
      bridge: `rbr${randomBytes(4).toString('hex')}`,
      isGateway: true,
      ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: c.subnet }]], routes, dataDir: join(p.dir, 'host-local') },
    };
  } else {
    const mode: FerryMode = p.key === 'ferry-routed' ? 'routed' : 'bridge';
    c.ferry = {
      mode,
      socket: join(p.dir, 'ferry.sock'),
      logFile: join(p.dir, 'cni.log'),
      daemonLog: join(p.dir, 'daemon.log'),
    };
    c.env.FERRY_CNI_SOCKET = c.ferry.socket;
    plugin = {
      type: 'ferry',
      mode,
      ...(mode === 'bridge' ? { bridge: `fbr${randomBytes(4).toString('hex')}`, isGateway: true } : {}),
      logFile: c.ferry.logFile,
      dataDir: join(p.dir, 'state'),
      ipam: { type: 'ferry', dataDir: join(p.dir, 'ipam'), ranges: [[{ subnet: c.subnet }]], routes },
    };
  }
  writeFileSync(join(c.confDir, '10-bench.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: c.network, plugins: [plugin] }, null, 2));
  return c;
}
