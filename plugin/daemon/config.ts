// The node daemon's settings: a YAML (or JSON) file, overridden by flags,
// checked with zod. Names and defaults follow kube-proxy's
// KubeProxyConfiguration where ferry has the same setting (healthz and
// metrics bind addresses, minSyncPeriod, syncPeriod, configSyncPeriod,
// nodePortAddresses, clusterCIDR, masqueradeAll); the README maps each one.
// An error names the field, and where it came from: the file, or the flag.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import ipaddr from 'ipaddr.js';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_PIN_ROOT } from '../../engine/dataplane/paths.js';
import { parseClusterCidrs } from '../../engine/dataplane/uplink.js';
import { DEFAULT_VXLAN } from '../../engine/nodes/model.js';
import { DEFAULT_STATE_DIR } from '../commands/context.js';
import { DEFAULT_CNI_SOCKET } from './server.js';

/** kube-proxy's defaults where it has the setting; ferry's own otherwise. */
export const DEFAULTS = {
  cniSocket: DEFAULT_CNI_SOCKET,
  pinRoot: DEFAULT_PIN_ROOT,
  // The CNI config's dataDir default: where ADD keeps its endpoint records.
  cniDataDir: DEFAULT_STATE_DIR,
  healthzBindAddress: '0.0.0.0:10256',
  metricsBindAddress: '127.0.0.1:10249',
  // kube-proxy's is 1s; ferry's syncs write changes only, and are cheap.
  minSyncPeriod: '100ms',
  syncPeriod: '30s',
  configSyncPeriod: '15m',
  conntrackGCInterval: '30s',
  logLevel: 'info',
  vxlanVNI: DEFAULT_VXLAN.vni,
  vxlanPort: DEFAULT_VXLAN.port,
  vxlanDevice: DEFAULT_VXLAN.device,
  // lb.o's LB4_SERVICES_MAX and LB4_BACKENDS_MAX.
  mapCapacity: 65_536,
  // lb.o's LB6_SERVICES_MAX and LB6_BACKENDS_MAX: the IPv6 maps' own setting,
  // so that an IPv4-only node does not preallocate IPv6 maps as large. The
  // backends maps (arrays indexed by one id space) both get the larger of the two.
  mapCapacity6: 65_536,
} as const;

/** The flag that sets each field (masqueradeAll has none: only `false` is supported). */
export const FLAGS = {
  cniSocket: '--cni-socket',
  pinRoot: '--pin-root',
  cniDataDir: '--cni-data-dir',
  mapCapacity: '--map-capacity',
  mapCapacity6: '--map-capacity6',
  services: '--services',
  kubeconfig: '--kubeconfig',
  inCluster: '--in-cluster',
  nodeName: '--node-name',
  uplink: '--uplink',
  clusterCIDR: '--cluster-cidr',
  nodePortAddresses: '--nodeport-addresses',
  minSyncPeriod: '--min-sync-period',
  syncPeriod: '--sync-period',
  configSyncPeriod: '--config-sync-period',
  healthzBindAddress: '--healthz-bind-address',
  metricsBindAddress: '--metrics-bind-address',
  conntrackGCInterval: '--gc-interval',
  logLevel: '--log-level',
  nodeNetwork: '--node-network',
  vxlanVNI: '--vxlan-vni',
  vxlanPort: '--vxlan-port',
  vxlanDevice: '--vxlan-device',
} as const;

export type ConfigField = keyof DaemonConfig;

const UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration as kube-proxy's config takes it ("100ms", "1m30s", "0"), in milliseconds. */
export function parseDuration(text: string): number {
  if (text === '0') return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) throw new Error(`"${text}" is not a duration like 100ms, 30s or 1m30s`);
  let ms = 0;
  for (const [, n, , unit] of text.matchAll(/(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(n) * UNITS_MS[unit!]!;
  return ms;
}

/** `HOST:PORT` or `[V6]:PORT`; an empty host means 0.0.0.0. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`"${text}" is not HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

const checked = <T>(what: (v: string) => T) =>
  z.string().transform((text, ctx) => {
    try {
      return what(text);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
      return z.NEVER;
    }
  });

const duration = checked(parseDuration);
const positiveDuration = checked((text) => {
  const ms = parseDuration(text);
  if (ms <= 0) throw new Error('must be more than 0');
  return ms;
});
/** '' turns the server off (kube-proxy's convention). */
const listenAddress = checked((text) => {
  if (text !== '') parseListenAddress(text);
  return text === '' ? undefined : text;
});
const cidr = checked((text) => {
  if (!ipaddr.isValidCIDR(text)) throw new Error(`"${text}" is not a CIDR like 10.244.0.0/16`);
  return text;
});
const nonEmpty = z.string().min(1, 'must not be empty');
const absolutePath = z.string().refine((p) => isAbsolute(p), (p) => ({ message: `"${p}" is not an absolute path` }));

const schema = z
  .object({
    cniSocket: nonEmpty.default(DEFAULTS.cniSocket),
    pinRoot: nonEmpty.default(DEFAULTS.pinRoot),
    cniDataDir: absolutePath.default(DEFAULTS.cniDataDir),
    // Backend ids are indices of the backends maps, hostPorts' the lowest 4096: room for Services' above them.
    mapCapacity: z.number().int().min(8192).max(16_777_216).default(DEFAULTS.mapCapacity),
    mapCapacity6: z.number().int().min(1024).max(16_777_216).default(DEFAULTS.mapCapacity6),
    services: nonEmpty.optional(),
    kubeconfig: nonEmpty.optional(),
    inCluster: z.boolean().default(false),
    nodeName: nonEmpty.default(() => hostname()),
    uplink: nonEmpty.optional(),
    // Unset: attachUplink()'s default (DEFAULT_CLUSTER_CIDRS).
    clusterCIDR: checked(parseClusterCidrs).optional(),
    nodePortAddresses: z.array(cidr).default([]),
    masqueradeAll: z.literal(false, { errorMap: () => ({ message: 'true is not supported: ferry\'s dataplane masquerades no ClusterIP traffic' }) }).default(false),
    minSyncPeriod: duration.default(DEFAULTS.minSyncPeriod),
    syncPeriod: positiveDuration.default(DEFAULTS.syncPeriod),
    configSyncPeriod: duration.default(DEFAULTS.configSyncPeriod),
    healthzBindAddress: listenAddress.default(DEFAULTS.healthzBindAddress),
    metricsBindAddress: listenAddress.default(DEFAULTS.metricsBindAddress),
    conntrackGCInterval: positiveDuration.default(DEFAULTS.conntrackGCInterval),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.logLevel),
    // Unset: other nodes' pods are not routed by ferry (a single node, or another network provider).
    nodeNetwork: z.enum(['direct', 'vxlan']).optional(),
    vxlanVNI: z.number().int().min(0).max(0xffffff).default(DEFAULTS.vxlanVNI),
    vxlanPort: z.number().int().min(1).max(65535).default(DEFAULTS.vxlanPort),
    vxlanDevice: nonEmpty.max(15, 'an interface name has at most 15 characters').default(DEFAULTS.vxlanDevice),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: ConfigField, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
    if (c.kubeconfig !== undefined && c.inCluster) issue('inCluster', 'excludes kubeconfig');
    if (c.services !== undefined && (c.kubeconfig !== undefined || c.inCluster)) issue('services', 'the file source excludes the API server source (kubeconfig, inCluster)');
    if (c.nodeNetwork !== undefined && c.services === undefined && c.kubeconfig === undefined && !c.inCluster) issue('nodeNetwork', 'needs the Node objects: services, kubeconfig or inCluster');
  });

/** The settings as written (file or flags): durations and addresses as text. */
export type DaemonConfigInput = z.input<typeof schema>;
/** The settings checked, defaults filled in: durations in ms, a server turned off is undefined. */
export type DaemonConfig = z.output<typeof schema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * The settings of `file` (when given) with `flags` over them. Throws a
 * ConfigError naming each bad field as the flag or the file's key.
 */
export function loadDaemonConfig(file: string | undefined, flags: DaemonConfigInput = {}): DaemonConfig {
  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`config ${file}: ${(e as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`config ${file}: must be a mapping of settings, not ${Array.isArray(parsed) ? 'a list' : typeof parsed}`);
    }
    fromFile = (parsed ?? {}) as Record<string, unknown>;
  }
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const result = schema.safeParse({ ...fromFile, ...given });
  if (result.success) return result.data;
  const where = (field: string) => (field in given ? (FLAGS as Record<string, string>)[field] ?? field : `config ${file}: ${field}`);
  throw new ConfigError(
    result.error.issues
      .map((i) => {
        if (i.code === z.ZodIssueCode.unrecognized_keys) return `config ${file}: unknown setting${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}`;
        const [field, ...rest] = i.path.map(String);
        return `${where(field!)}${rest.map((p) => `[${p}]`).join('')}: ${i.message}`;
      })
      .join('; '),
  );
}
