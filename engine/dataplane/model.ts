// The service model the dataplane is programmed from: Kubernetes Services and
// their endpoints (as EndpointSlices carry them), reduced to the fields a
// node's load balancer acts on. parseService / parseEndpoints check an input
// document, fill in Kubernetes' defaults and return the typed form; a bad
// document fails with a ModelError naming the object and every bad field.
//
// The schemas are zod 4's (the `zod/v4` entry of the zod package): it checks
// a cluster's worth of endpoints several times faster than zod 3, which a
// daemon's first sync of 100k endpoints feels.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { z } from 'zod/v4';
import { flat } from './flat-string.js';

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type TrafficPolicy = 'Cluster' | 'Local';
/** How a Service's new flows pick a backend: at random, or by Maglev consistent hashing of the 5-tuple. */
export type LoadBalancing = 'random' | 'maglev';

/** The annotation that selects LoadBalancing (Kubernetes has no field for it), e.g. `ferry.dev/lb-algorithm: maglev`. */
export const LB_ALGORITHM_ANNOTATION = 'ferry.dev/lb-algorithm';

export interface ServicePort {
  /** Required (and unique) when a Service has more than one port. */
  name?: string;
  protocol: Protocol;
  port: number;
  /** A number, or the name of a port on each endpoint (an IANA_SVC_NAME). */
  targetPort: number | string;
  nodePort?: number;
}

export interface Service {
  namespace: string;
  name: string;
  type: ServiceType;
  /** Canonical IPv4 / IPv6 text; empty for headless and ExternalName services. */
  clusterIPs: string[];
  externalIPs: string[];
  /** status.loadBalancer.ingress[].ip */
  loadBalancerIPs: string[];
  ports: ServicePort[];
  sessionAffinity: 'None' | 'ClientIP';
  /** sessionAffinityConfig.clientIP.timeoutSeconds; only meaningful with ClientIP. */
  affinityTimeoutSeconds: number;
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  /** spec.healthCheckNodePort: where the node answers load balancers' health checks (LoadBalancer, policy Local). */
  healthCheckNodePort?: number;
  /** clusterIP: None — DNS only, no load balancing. */
  headless: boolean;
  /**
   * From the field `loadBalancing` or the annotation LB_ALGORITHM_ANNOTATION
   * (the field wins); absent means 'random'. Set only when 'maglev'.
   */
  loadBalancing?: LoadBalancing;
}

export interface EndpointPort {
  /** The Service port's name, as in an EndpointSlice, or a container port's name. */
  name?: string;
  port: number;
  protocol: Protocol;
}

/** One endpoint of an EndpointSlice, with the slice's ports. */
export interface Endpoint {
  /** Fungible addresses of one endpoint; like kube-proxy, only the first is used. */
  addresses: string[];
  ports: EndpointPort[];
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName?: string;
  zone?: string;
}

/** Endpoints of each Service, keyed by serviceKey(). */
export type EndpointsByService = ReadonlyMap<string, readonly Endpoint[]>;

export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10_800;
/** Kubernetes' upper bound for sessionAffinityConfig.clientIP.timeoutSeconds. */
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86_400;

/** `namespace/name`, the key of endpointsByService. */
export function serviceKey(s: { namespace: string; name: string }): string {
  return flat(`${s.namespace}/${s.name}`);
}

export interface ModelIssue {
  /** Path inside the object: `ports[1].targetPort`. */
  field: string;
  message: string;
}

/** A Service or endpoint list that is not valid; names the object and each bad field. */
export class ModelError extends Error {
  readonly kind: 'Service' | 'Endpoints';
  readonly namespace: string;
  readonly objectName: string;
  readonly issues: readonly ModelIssue[];

  constructor(kind: 'Service' | 'Endpoints', namespace: string, name: string, issues: readonly ModelIssue[]) {
    const text = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
    super(`${kind} ${namespace || '?'}/${name || '?'}: ${text}`);
    this.name = 'ModelError';
    this.kind = kind;
    this.namespace = namespace;
    this.objectName = name;
    this.issues = issues;
  }
}

// --- value forms -------------------------------------------------------------

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
// IANA_SVC_NAME: ≤15 chars, lowercase alphanumerics and '-', a letter somewhere,
// no leading, trailing or doubled '-'.
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9]|-(?=[a-z0-9]))*$/;

/**
 * Canonical text of an IPv4 (dotted quad) or IPv6 address, or undefined.
 * Text already canonical comes back as the very string given, so the model
 * shares it with the object it came from rather than holding a copy.
 */
export function canonicalIp(text: string): string | undefined {
  // The common case, cheaply: inet_pton(AF_INET) takes only canonical dotted quads.
  if (isIP(text) === 4) return text;
  let canonical: string | undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) canonical = ipaddr.IPv4.parse(text).toString();
  else if (text.includes(':') && ipaddr.IPv6.isValid(text)) canonical = ipaddr.IPv6.parse(text).toString();
  return canonical === text ? text : canonical;
}

export function isIPv4(address: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(address);
}

const label = (re: RegExp, what: string) =>
  z
    .string()
    .max(63, 'must be at most 63 characters')
    .regex(re, `must be a ${what}`);

const ip = z.string().transform((text, ctx) => {
  const canonical = canonicalIp(text);
  if (canonical === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not an IPv4 or IPv6 address` });
    return z.NEVER;
  }
  return canonical;
});
const portNumber = z.number().int().min(1).max(65535);
const protocol = z.enum(['TCP', 'UDP', 'SCTP']).default('TCP');
const portName = z.string().max(15, 'must be at most 15 characters').regex(IANA_SVC_NAME, 'must be lowercase alphanumerics and single inner hyphens');
const policy = z.enum(['Cluster', 'Local']).default('Cluster');

// --- Service -----------------------------------------------------------------

const servicePortSchema = z.object({
  name: label(DNS1123_LABEL, 'DNS-1123 label').optional(),
  protocol,
  port: portNumber,
  targetPort: z
    .union([
      portNumber,
      portName.refine((n) => /[a-z]/.test(n), 'a named port must contain a letter'),
    ])
    .optional(),
  nodePort: portNumber.optional(),
});

const serviceSchema = z
  .object({
    namespace: label(DNS1123_LABEL, 'DNS-1123 label'),
    name: label(DNS1035_LABEL, 'DNS-1035 label (lowercase, starting with a letter)'),
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).default('ClusterIP'),
    // "None" marks a headless Service, as spec.clusterIP does.
    clusterIPs: z.array(z.union([z.literal('None'), ip])).max(2).default([]),
    externalIPs: z.array(ip).default([]),
    loadBalancerIPs: z.array(ip).default([]),
    ports: z.array(servicePortSchema).default([]),
    sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
    affinityTimeoutSeconds: z.number().int().min(1).max(MAX_AFFINITY_TIMEOUT_SECONDS).default(DEFAULT_AFFINITY_TIMEOUT_SECONDS),
    externalTrafficPolicy: policy,
    internalTrafficPolicy: policy,
    healthCheckNodePort: portNumber.optional(),
    headless: z.boolean().optional(),
    loadBalancing: z.enum(['random', 'maglev']).optional(),
    annotations: z
      .record(z.string(), z.string())
      .optional()
      .superRefine((a, ctx) => {
        const value = a?.[LB_ALGORITHM_ANNOTATION];
        if (value !== undefined && value !== 'random' && value !== 'maglev') {
          ctx.addIssue({ code: 'custom', path: [LB_ALGORITHM_ANNOTATION], message: `must be "random" or "maglev", not "${value}"` });
        }
      }),
  })
  .superRefine((s, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const none = s.clusterIPs.indexOf('None');
    if (none >= 0 && s.clusterIPs.length > 1) issue(['clusterIPs'], '"None" must be the only entry');
    if (s.headless === true && s.clusterIPs.some((c) => c !== 'None')) issue(['clusterIPs'], 'a headless Service has no cluster IPs');
    const families = s.clusterIPs.filter((c) => c !== 'None').map((c) => (isIPv4(c) ? 4 : 6));
    if (families.length === 2 && families[0] === families[1]) issue(['clusterIPs'], 'two cluster IPs must be of different families');
    if (s.type === 'ExternalName' && s.clusterIPs.some((c) => c !== 'None')) issue(['clusterIPs'], 'an ExternalName Service has no cluster IPs');
    const headless = s.headless ?? none >= 0;
    if (s.type !== 'ExternalName' && !headless && s.ports.length === 0) issue(['ports'], 'required unless the Service is headless');
    const names = new Set<string>();
    const pairs = new Set<string>();
    s.ports.forEach((p, i) => {
      if (s.ports.length > 1 && p.name === undefined) issue(['ports', i, 'name'], 'required when a Service has more than one port');
      if (p.name !== undefined) {
        if (names.has(p.name)) issue(['ports', i, 'name'], `duplicate port name "${p.name}"`);
        names.add(p.name);
      }
      const pair = `${p.port}/${p.protocol}`;
      if (pairs.has(pair)) issue(['ports', i], `duplicate port ${pair}`);
      pairs.add(pair);
      if (p.nodePort !== undefined && s.type !== 'NodePort' && s.type !== 'LoadBalancer') {
        issue(['ports', i, 'nodePort'], `only NodePort and LoadBalancer Services have node ports, not ${s.type}`);
      }
    });
  });

/** A Service as written, before defaults: every field the model fills in is optional. */
export type ServiceInput = z.input<typeof serviceSchema>;

/** Checks a Service, fills in Kubernetes' defaults; throws a ModelError naming each bad field. */
export function parseService(input: unknown): Service {
  return serviceAsGiven(input) ?? parseServiceBySchema(input);
}

/** parseService() by the schema alone (serviceAsGiven() must agree with it: tests compare them). */
export function parseServiceBySchema(input: unknown): Service {
  const result = serviceSchema.safeParse(input, PARSE);
  if (!result.success) throw modelError('Service', input, result.error);
  const s = result.data;
  const headless = s.headless ?? s.clusterIPs.includes('None');
  const loadBalancing = s.loadBalancing ?? (s.annotations?.[LB_ALGORITHM_ANNOTATION] as LoadBalancing | undefined) ?? 'random';
  // Literals with optional members set afterwards, not spread in: V8 gives
  // objects built by spreading a shape of their own (a daemon keeps tens of
  // thousands of them).
  const service: Service = {
    namespace: s.namespace,
    name: s.name,
    type: s.type,
    // Arrays of their own length (slice(), map()): zod grows its arrays as push() does, with room for 17.
    clusterIPs: s.clusterIPs.filter((c) => c !== 'None').slice(),
    externalIPs: s.externalIPs.slice(),
    loadBalancerIPs: s.loadBalancerIPs.slice(),
    ports: s.ports.map((p) => {
      const port: ServicePort = { protocol: p.protocol, port: p.port, targetPort: p.targetPort ?? p.port };
      if (p.name !== undefined) port.name = p.name;
      if (p.nodePort !== undefined) port.nodePort = p.nodePort;
      return port;
    }),
    sessionAffinity: s.sessionAffinity,
    affinityTimeoutSeconds: s.affinityTimeoutSeconds,
    externalTrafficPolicy: s.externalTrafficPolicy,
    internalTrafficPolicy: s.internalTrafficPolicy,
    headless,
  };
  if (s.healthCheckNodePort !== undefined) service.healthCheckNodePort = s.healthCheckNodePort;
  if (loadBalancing === 'maglev') service.loadBalancing = loadBalancing;
  return service;
}

const SERVICE_TYPES: ReadonlySet<unknown> = new Set<ServiceType>(['ClusterIP', 'NodePort', 'LoadBalancer']);
const AFFINITIES: ReadonlySet<unknown> = new Set(['None', 'ClientIP']);
const POLICIES: ReadonlySet<unknown> = new Set<TrafficPolicy>(['Cluster', 'Local']);
const isLabel = (v: unknown, re: RegExp): v is string => typeof v === 'string' && v.length <= 63 && re.test(v);
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;

/** Canonical addresses of `list` (undefined: none given), or undefined when one is not an address. */
function addressesAsGiven(list: unknown, none = false): string[] | undefined {
  if (list === undefined) return [];
  if (!Array.isArray(list)) return undefined;
  const out = new Array<string>(list.length);
  for (let i = 0; i < list.length; i++) {
    const a: unknown = list[i];
    const address = none && a === 'None' ? a : typeof a === 'string' ? canonicalIp(a) : undefined;
    if (address === undefined) return undefined;
    out[i] = address;
  }
  return out;
}

/**
 * parseService() of a Service the schema takes as it is — a cluster's are
 * almost all such — checked and built by hand: the same checks (the
 * schema's refinements included) and the same result. Undefined for
 * anything else, which the schema then checks and reports on; also for
 * what this does not check itself (ExternalName, `headless`,
 * `loadBalancing`, annotations). zod's copies of 10k Services were a good
 * part of what a daemon allocated converting a cluster, and slow.
 */
function serviceAsGiven(input: unknown): Service | undefined {
  if (!isRecord(input)) return undefined;
  const { namespace, name, type = 'ClusterIP', sessionAffinity = 'None', affinityTimeoutSeconds = DEFAULT_AFFINITY_TIMEOUT_SECONDS } = input;
  const { externalTrafficPolicy = 'Cluster', internalTrafficPolicy = 'Cluster', healthCheckNodePort } = input;
  if (input.headless !== undefined || input.loadBalancing !== undefined || input.annotations !== undefined) return undefined;
  if (!isLabel(namespace, DNS1123_LABEL) || !isLabel(name, DNS1035_LABEL) || !SERVICE_TYPES.has(type)) return undefined;
  if (!AFFINITIES.has(sessionAffinity) || !POLICIES.has(externalTrafficPolicy) || !POLICIES.has(internalTrafficPolicy)) return undefined;
  if (!Number.isInteger(affinityTimeoutSeconds) || (affinityTimeoutSeconds as number) < 1 || (affinityTimeoutSeconds as number) > MAX_AFFINITY_TIMEOUT_SECONDS) return undefined;
  if (healthCheckNodePort !== undefined && !isPort(healthCheckNodePort)) return undefined;
  const clusterIPs = addressesAsGiven(input.clusterIPs, true);
  const externalIPs = addressesAsGiven(input.externalIPs);
  const loadBalancerIPs = addressesAsGiven(input.loadBalancerIPs);
  if (clusterIPs === undefined || externalIPs === undefined || loadBalancerIPs === undefined || clusterIPs.length > 2) return undefined;
  // The schema's refinements.
  const none = clusterIPs.indexOf('None');
  if (none >= 0 && clusterIPs.length > 1) return undefined;
  if (clusterIPs.length === 2 && isIPv4(clusterIPs[0]!) === isIPv4(clusterIPs[1]!)) return undefined;
  const given = input.ports === undefined ? [] : input.ports;
  if (!Array.isArray(given) || (given.length === 0 && none < 0)) return undefined;
  const ports = new Array<ServicePort>(given.length);
  const names = new Set<string>();
  const pairs = new Set<string>();
  for (let i = 0; i < given.length; i++) {
    const p: unknown = given[i];
    if (!isRecord(p)) return undefined;
    const { name: portName, protocol = 'TCP', port, targetPort, nodePort } = p;
    if (portName !== undefined && !isLabel(portName, DNS1123_LABEL)) return undefined;
    if ((protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') || !isPort(port)) return undefined;
    if (targetPort !== undefined && !isPort(targetPort)) {
      if (typeof targetPort !== 'string' || targetPort.length > 15 || !IANA_SVC_NAME.test(targetPort) || !/[a-z]/.test(targetPort)) return undefined;
    }
    if (nodePort !== undefined && (!isPort(nodePort) || (type !== 'NodePort' && type !== 'LoadBalancer'))) return undefined;
    if (given.length > 1 && portName === undefined) return undefined;
    if (portName !== undefined) {
      if (names.has(portName)) return undefined;
      names.add(portName);
    }
    const pair = `${port}/${protocol}`;
    if (pairs.has(pair)) return undefined;
    pairs.add(pair);
    const out: ServicePort = { protocol, port, targetPort: (targetPort as number | string | undefined) ?? port };
    if (portName !== undefined) out.name = portName;
    if (nodePort !== undefined) out.nodePort = nodePort;
    ports[i] = out;
  }
  const service: Service = {
    namespace,
    name,
    type: type as ServiceType,
    clusterIPs: none >= 0 ? [] : clusterIPs,
    externalIPs,
    loadBalancerIPs,
    ports,
    sessionAffinity: sessionAffinity as Service['sessionAffinity'],
    affinityTimeoutSeconds: affinityTimeoutSeconds as number,
    externalTrafficPolicy: externalTrafficPolicy as TrafficPolicy,
    internalTrafficPolicy: internalTrafficPolicy as TrafficPolicy,
    headless: none >= 0,
  };
  if (healthCheckNodePort !== undefined) service.healthCheckNodePort = healthCheckNodePort;
  return service;
}

// --- Endpoints ---------------------------------------------------------------

const endpointSchema = z.object({
  addresses: z.array(ip).min(1),
  ports: z
    .array(z.object({ name: z.string().max(63).optional(), port: portNumber, protocol }))
    .default([]),
  // EndpointConditions: an unknown `ready` means ready, an unknown `serving` means
  // the same as ready, an unknown `terminating` means not terminating.
  ready: z.boolean().optional(),
  serving: z.boolean().optional(),
  terminating: z.boolean().default(false),
  nodeName: z.string().min(1).optional(),
  zone: z.string().min(1).optional(),
});

export type EndpointInput = z.input<typeof endpointSchema>;
const endpointsSchema = z.array(endpointSchema);

/**
 * Checks the endpoints of the Service `owner`, fills in the defaults of
 * EndpointConditions; throws a ModelError naming the Service and each bad field.
 */
export function parseEndpoints(owner: { namespace: string; name: string }, input: unknown): Endpoint[] {
  return endpointsAsGiven(input) ?? parseEndpointsBySchema(owner, input);
}

/** parseEndpoints() by the schema alone (endpointsAsGiven() must agree with it: tests compare them). */
export function parseEndpointsBySchema(owner: { namespace: string; name: string }, input: unknown): Endpoint[] {
  const result = endpointsSchema.safeParse(input, PARSE);
  if (!result.success) throw modelError('Endpoints', owner, result.error);
  const ports = sharedPorts();
  return result.data.map((e, i) => {
    const given = (input as Array<{ ports?: unknown }>)[i]!.ports;
    const endpoint: Endpoint = {
      addresses: e.addresses,
      ports: ports.get(given) ?? ports.add(given, e.ports),
      ready: e.ready ?? true,
      serving: e.serving ?? e.ready ?? true,
      terminating: e.terminating,
    };
    if (e.nodeName !== undefined) endpoint.nodeName = e.nodeName;
    if (e.zone !== undefined) endpoint.zone = e.zone;
    return endpoint;
  });
}

/** An endpoint's ports as checked: the protocol may still be missing (TCP). */
type CheckedPorts = ReadonlyArray<{ name?: string | undefined; port: number; protocol?: Protocol | undefined }>;

/**
 * The model's ports lists by the input list they came from: endpoints
 * given one ports list (an EndpointSlice's) share one list in the model
 * too. get(): the list made for `given` before; add(): makes it.
 */
function sharedPorts(): { get(given: unknown): EndpointPort[] | undefined; add(given: unknown, checked: CheckedPorts): EndpointPort[] } {
  const shared = new Map<unknown, EndpointPort[]>();
  return {
    get: (given) => (given !== undefined ? shared.get(given) : undefined),
    add: (given, checked) => {
      const ports = checked.map((p) => {
        const port: EndpointPort = { port: p.port, protocol: p.protocol ?? 'TCP' };
        if (p.name) port.name = p.name;
        return port;
      });
      if (given !== undefined) shared.set(given, ports);
      return ports;
    },
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const PROTOCOLS: ReadonlySet<unknown> = new Set<Protocol>(['TCP', 'UDP', 'SCTP']);
const optional = (v: unknown, type: 'boolean' | 'string') => v === undefined || typeof v === type;

/** Whether the schema takes `given` (an endpoint's ports) as they are. */
function portsAsGiven(given: unknown): given is CheckedPorts {
  if (!Array.isArray(given)) return false;
  for (const p of given) {
    if (!isRecord(p)) return false;
    if (p.name !== undefined && (typeof p.name !== 'string' || p.name.length > 63)) return false;
    if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) return false;
    if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol)) return false;
  }
  return true;
}

/**
 * parseEndpoints() of endpoints the schema takes as they are — a
 * cluster's EndpointSlices are almost all such — checked and built by
 * hand: the same checks, the same result. Undefined for anything else,
 * which the schema then checks and reports on. zod's copies of 100k
 * endpoints were most of what a daemon allocated converting a cluster's
 * slices, and V8 moved much of it to its old space.
 */
function endpointsAsGiven(input: unknown): Endpoint[] | undefined {
  if (!Array.isArray(input)) return undefined;
  const ports = sharedPorts();
  // Arrays of their final length (kept for as long as the slice is): one
  // grown by push() has room for 17 from its first element on.
  const out = new Array<Endpoint>(input.length);
  for (let i = 0; i < input.length; i++) {
    const e: unknown = input[i];
    if (!isRecord(e)) return undefined;
    const { addresses, ready, serving, terminating, nodeName, zone } = e;
    if (!Array.isArray(addresses) || addresses.length === 0) return undefined;
    const canonical = new Array<string>(addresses.length);
    for (let j = 0; j < addresses.length; j++) {
      const a: unknown = addresses[j];
      const address = typeof a === 'string' ? canonicalIp(a) : undefined;
      if (address === undefined) return undefined;
      canonical[j] = address;
    }
    if (!optional(ready, 'boolean') || !optional(serving, 'boolean') || !optional(terminating, 'boolean')) return undefined;
    if (!optional(nodeName, 'string') || nodeName === '' || !optional(zone, 'string') || zone === '') return undefined;
    const given = e.ports;
    let list = ports.get(given);
    if (list === undefined) {
      if (given !== undefined && !portsAsGiven(given)) return undefined;
      list = ports.add(given, given ?? []);
    }
    const endpoint: Endpoint = {
      addresses: canonical,
      ports: list,
      ready: (ready as boolean | undefined) ?? true,
      serving: (serving as boolean | undefined) ?? (ready as boolean | undefined) ?? true,
      terminating: (terminating as boolean | undefined) ?? false,
    };
    if (nodeName !== undefined) endpoint.nodeName = nodeName as string;
    if (zone !== undefined) endpoint.zone = zone as string;
    out[i] = endpoint;
  }
  return out;
}

// --- errors ------------------------------------------------------------------

function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out || '(top level)';
}

/** Parse options: a missing field is said to be "required" (zod's own words name the types). */
const PARSE = {
  error: (issue: { code?: string; input?: unknown }) => (issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined),
} satisfies z.core.ParseContext<z.core.$ZodIssue>;

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union') {
    // Name what each alternative wanted rather than zod's "Invalid input".
    const inner = issue.errors.flatMap((issues) => issues.map(issueMessage));
    return [...new Set(inner)].join(', or ');
  }
  return issue.message;
}

function modelError(kind: 'Service' | 'Endpoints', input: unknown, error: z.ZodError): ModelError {
  const field = (key: string): string => {
    const v = input !== null && typeof input === 'object' ? (input as Record<string, unknown>)[key] : undefined;
    return typeof v === 'string' ? v : '';
  };
  const issues = error.issues.map((i) => ({ field: formatPath(i.path as (string | number)[]), message: issueMessage(i) }));
  return new ModelError(kind, field('namespace'), field('name'), issues);
}
