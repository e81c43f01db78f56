// ferry's network configuration: what arrives on stdin for one invocation —
// a single plugin config, or libcni's rendering of ferry's entry in a
// conflist (with `name`, `cniVersion`, and per request `runtimeConfig`,
// `prevResult`, `cni.dev/valid-attachments` injected).
//
// Keys ferry does not know are allowed and dropped (a conflist's plugins sit
// side by side, and runtimes add their own keys); a key ferry knows must have
// the right type and form, or the error is code 7 naming its path. A field
// ferry understands but cannot honour is code 2 (checkSupported).
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { cidrProblem, ipOrCidrProblem, ipProblem, macProblem } from './addresses.js';
import { ifnameProblem, type K8sArgs } from './env.js';
import { CniCode, decodingFailure, incompatibleVersion, invalidConfig, quote, unsupportedField } from './errors.js';
import { issuesError, refineWith } from './issues.js';
import { decodeJson } from './json.js';
import { isSupportedVersion, SUPPORTED_VERSIONS } from './versions.js';

export const DEFAULT_LOG_FILE = '/var/log/ferry/cni.log';
export const DEFAULT_BRIDGE = 'ferry0';

/** ipam.type values ferry accepts: its own, and host-local, whose config format ferry's IPAM reads. */
export const IPAM_TYPES: readonly string[] = ['ferry', 'host-local'];

/**
 * Capabilities (CONVENTIONS.md) ferry acts on. A config that declares any
 * other, or a runtimeConfig that carries one ferry parses but does not act
 * on, is refused with code 2 rather than silently ignored.
 */
export const HONOURED_CAPABILITIES: ReadonlySet<string> = new Set(['ips', 'mac', 'dns', 'portMappings', 'bandwidth']);

// --- value forms ---------------------------------------------------------------

const ip = z.string().superRefine(refineWith(ipProblem));
const cidr = z.string().superRefine(refineWith(cidrProblem));
const uint = z.number().int().nonnegative();
const port = z.number().int().min(1).max(65535);
const absPath = z.string().superRefine(
  refineWith((p: string) => (!p.startsWith('/') ? 'must be an absolute path' : p.includes('\0') ? 'must not contain NUL' : undefined)),
);
/** The spec's network name: starts alphanumeric, then alphanumerics, '_', '.', '-'; it names files, so no '/'. */
const networkName = z.string().superRefine(
  refineWith((n: string) =>
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(n) ? undefined : "must start with a letter or digit and contain only letters, digits, '_', '.' and '-'",
  ),
);
const linkName = z.string().superRefine(refineWith((n: string) => (n === '' ? 'must not be empty' : ifnameProblem(n))));

// --- sections ------------------------------------------------------------------

/** host-local's range: a subnet to allocate from, optionally narrowed, with its gateway. */
const rangeSchema = z.object({
  subnet: cidr,
  rangeStart: ip.optional(),
  rangeEnd: ip.optional(),
  gateway: ip.optional(),
});

const ipamSchema = z.object({
  type: z.string(),
  /** host-local's `ranges`: one inner list per address to allocate (e.g. one v4, one v6), each a pool of ranges. */
  ranges: z.array(z.array(rangeSchema).min(1)).min(1),
  routes: z.array(z.object({ dst: cidr, gw: ip.optional() })).optional(),
  dataDir: absPath.optional(),
});

const dnsSchema = z.object({
  nameservers: z.array(ip).optional(),
  domain: z.string().optional(),
  search: z.array(z.string()).optional(),
  options: z.array(z.string()).optional(),
});

const portMappingSchema = z.object({
  hostPort: port,
  containerPort: port,
  protocol: z
    .string()
    .transform((p) => p.toLowerCase())
    .pipe(z.enum(['tcp', 'udp', 'sctp']))
    .default('tcp'),
  // Runtimes send "" for "every address".
  hostIP: z
    .string()
    .transform((v) => (v === '' ? undefined : v))
    .pipe(ip.optional())
    .optional(),
});

/** Capability arguments, as CONVENTIONS.md defines them; other keys are dropped. */
const runtimeConfigSchema = z.object({
  ips: z.array(z.string().superRefine(refineWith(ipOrCidrProblem))).optional(),
  mac: z.string().superRefine(refineWith(macProblem)).optional(),
  /** The `dns` capability spells its lists servers/searches (not the result's nameservers/search). */
  dns: z
    .object({ servers: z.array(ip).optional(), searches: z.array(z.string()).optional(), options: z.array(z.string()).optional() })
    .optional(),
  portMappings: z.array(portMappingSchema).optional(),
  /** Bits per second and bits, as the bandwidth capability has them. */
  bandwidth: z
    .object({ ingressRate: uint.optional(), ingressBurst: uint.optional(), egressRate: uint.optional(), egressBurst: uint.optional() })
    .optional(),
});

const netConfSchema = z
  .object({
    cniVersion: z.enum(SUPPORTED_VERSIONS),
    name: networkName,
    type: z.literal('ferry'),
    /** routed: a /32 and /128 per pod via the host veth (Calico-style); bridge: pods on a Linux bridge. */
    mode: z.enum(['routed', 'bridge']).default('routed'),
    mtu: z.number().int().min(68).max(65535).optional(),
    /** Pods reach other nodes through ferry's VXLAN overlay: without `mtu`, pods get this device's MTU. */
    vxlanDevice: linkName.optional(),
    logFile: absPath.default(DEFAULT_LOG_FILE),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
    dataDir: absPath.optional(),
    bridge: linkName.default(DEFAULT_BRIDGE),
    isGateway: z.boolean().optional(),
    isDefaultGateway: z.boolean().optional(),
    hairpinMode: z.boolean().optional(),
    promiscMode: z.boolean().optional(),
    ipMasq: z.boolean().default(false),
    /** ferry's eBPF dataplane: where the daemon pins its programs and maps (routed mode attaches them to each pod). */
    ebpf: z.object({ pinRoot: absPath.optional() }).optional(),
    /** The host ends of pods' veths are named prefix + a suffix; 11 bytes leave 4 of IFNAMSIZ's 15 for it. */
    hostVethPrefix: linkName
      .superRefine(refineWith((p: string) => (Buffer.byteLength(p) > 11 ? 'must be at most 11 bytes, to leave room for a suffix' : undefined)))
      .optional(),
    ipam: ipamSchema,
    dns: dnsSchema.optional(),
    capabilities: z.record(z.boolean()).optional(),
    runtimeConfig: runtimeConfigSchema.optional(),
    /** Optional metadata from the runtime (CONVENTIONS.md "args"); ferry may ignore it. */
    args: z.record(z.unknown()).optional(),
    /** Raw: runCni parses it by the config's version (see result.ts). */
    prevResult: z.record(z.unknown()).optional(),
    'cni.dev/valid-attachments': z.array(z.object({ containerID: z.string(), ifname: z.string() })).optional(),
  })
  .transform(({ 'cni.dev/valid-attachments': validAttachments, ...rest }) => ({ ...rest, validAttachments }));

/** ferry's parsed network config, defaults filled in. */
export type NetConf = z.output<typeof netConfSchema>;
/** A still-valid attachment named by a GC request. */
export type Attachment = NonNullable<NetConf['validAttachments']>[number];

/**
 * Parses stdin's config. Errors, in the order they are checked:
 * 6 not JSON (with line/column) or not an object; 1 cniVersion absent
 * (libcni reads that as 0.1.0) or not supported; 7 a known key of the wrong
 * type or form, naming its path.
 */
export function parseNetConf(text: string): NetConf {
  const raw = decodeJson(text, 'network config');
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw decodingFailure(`network config must be a JSON object, got ${kindOf(raw)}`);
  }
  const version = (raw as Record<string, unknown>).cniVersion;
  const supported = `ferry supports ${SUPPORTED_VERSIONS.join(', ')}`;
  if (version === undefined) throw incompatibleVersion(`cniVersion is not set (CNI reads that as 0.1.0); ${supported}`);
  if (typeof version !== 'string') throw invalidConfig(`cniVersion: expected string, got ${kindOf(version)}`);
  if (!isSupportedVersion(version)) throw incompatibleVersion(`cniVersion ${quote(version)} is not supported; ${supported}`);

  const ipam = (raw as Record<string, unknown>).ipam as Record<string, unknown> | undefined;
  if (ipam && typeof ipam === 'object' && 'subnet' in ipam && !('ranges' in ipam)) {
    // host-local's older single-range form; ferry reads only `ranges`, and says how to write it.
    throw unsupportedField('ipam.subnet', ipam.subnet, 'ferry reads only the ranges form; write "ranges": [[{"subnet": …}]]');
  }

  const parsed = netConfSchema.safeParse(raw);
  if (!parsed.success) throw issuesError(CniCode.InvalidNetworkConfig, parsed.error, raw);
  return parsed.data;
}

/**
 * Code 2 for what ferry parses but cannot do. runCni applies it to ADD, CHECK
 * and STATUS only: a DEL (or GC) must still clean up after a config that
 * could never be added, or the runtime retries it forever. `k8s`: the
 * pod's CNI_ARGS, for messages about the pod's own requests (its hostPorts).
 */
export function checkSupported(conf: NetConf, k8s: K8sArgs = {}): void {
  if (conf.ipMasq) throw unsupportedField('ipMasq', true, "masquerading is not implemented yet (it waits on ferry's eBPF NAT)");
  if (!IPAM_TYPES.includes(conf.ipam.type)) {
    throw unsupportedField('ipam.type', conf.ipam.type, `ferry allocates addresses itself; use ${IPAM_TYPES.map((t) => quote(t)).join(' or ')}`);
  }
  for (const [cap, on] of Object.entries(conf.capabilities ?? {})) {
    if (on && !HONOURED_CAPABILITIES.has(cap)) unsupportedCapability(`capabilities.${cap}`, true);
  }
  for (const [key, value] of Object.entries(conf.runtimeConfig ?? {})) {
    if (value !== undefined && !HONOURED_CAPABILITIES.has(key)) unsupportedCapability(`runtimeConfig.${key}`, value);
  }
  checkPortMappings(conf, k8s);
}

/**
 * hostPorts are served by ferry's eBPF dataplane, which sees pods' traffic
 * in routed mode only, and translates IPv4 TCP and UDP (its IPv6 maps are
 * the daemon's Services' only).
 */
function checkPortMappings(conf: NetConf, k8s: K8sArgs): void {
  const pod = k8s.podName === undefined ? '' : ` (pod ${k8s.podNamespace ?? 'default'}/${k8s.podName})`;
  (conf.runtimeConfig?.portMappings ?? []).forEach((m, i) => {
    const key = `runtimeConfig.portMappings[${i}]`;
    if (conf.mode !== 'routed') throw unsupportedField('mode', conf.mode, `${key}: hostPorts are served by ferry's eBPF dataplane, in routed mode only`);
    if (m.protocol === 'sctp') throw unsupportedField(`${key}.protocol`, m.protocol, `ferry's dataplane serves TCP and UDP hostPorts${pod}`);
    if (m.hostIP !== undefined && !isIPv4(m.hostIP)) throw unsupportedField(`${key}.hostIP`, m.hostIP, `ferry's dataplane serves IPv4 hostPorts, not IPv6 ones${pod}`);
  });
}

function unsupportedCapability(key: string, value: unknown): never {
  throw unsupportedField(key, value, `ferry does not implement this capability (it implements ${[...HONOURED_CAPABILITIES].join(', ')})`);
}

/** zod's names for JSON types, so every message says "got string", "got array"… alike. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
