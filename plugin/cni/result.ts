// The CNI Result: one internal shape (spec 1.1.0's), read from a prevResult
// of any supported version and written in exactly the shape of the version
// the runtime asked for.
//
// What differs between versions (SPEC.md at each spec-v* tag):
//   0.3.0, 0.3.1, 0.4.0  ips[] carry `version: "4" | "6"`; interfaces {name, mac, sandbox};
//                        routes {dst, gw}
//   1.0.0                `version` is gone; otherwise the same fields
//   1.1.0                interfaces add mtu, socketPath, pciID; routes add
//                        mtu, advmss, priority, table, scope
// Fields a version lacks are dropped on the way out (libcni's Go types keep
// some of them for 1.0.0; the 1.0.0 spec does not have them).
import { z } from 'zod';
import { cidrProblem, ipProblem, resultFamily } from './addresses.js';
import { CniCode } from './errors.js';
import { issuesError, refineWith } from './issues.js';
import { isLegacyResultVersion, type CniVersion } from './versions.js';

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  /** The netns path for interfaces inside the container; absent for host interfaces. */
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IpConfig {
  /** CIDR: `10.1.0.5/16`. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface Route {
  /** CIDR. */
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  /** 0 global, 253 link, 254 host. */
  scope?: number;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** Version-less; the version is chosen when it is written (convertResult). */
export interface Result {
  interfaces: Interface[];
  ips: IpConfig[];
  routes: Route[];
  dns: Dns;
}

/** A result as it goes on stdout. */
export interface WireResult {
  cniVersion: CniVersion;
  interfaces?: Interface[];
  ips?: Array<IpConfig & { version?: '4' | '6' }>;
  routes?: Route[];
  dns?: Dns;
}

export function emptyResult(): Result {
  return { interfaces: [], ips: [], routes: [], dns: {} };
}

// Go's encoding/json writes nil slices and pointers as null in some plugins'
// output and reads null back as "absent"; ferry reads null the same way.
const opt = <T extends z.ZodTypeAny>(t: T) => t.nullish().transform((v) => v ?? undefined);
const uint = z.number().int().nonnegative();
const ip = z.string().superRefine(refineWith(ipProblem));
const cidr = z.string().superRefine(refineWith(cidrProblem));
// Go reads "" as a nil net.IP: no gateway.
const optIp = opt(z.string()).transform((v) => (v === '' ? undefined : v)).pipe(ip.optional());
const strings = opt(z.array(z.string()));

const interfaceSchema = z.object({
  name: z.string(),
  mac: opt(z.string()),
  mtu: opt(uint),
  sandbox: opt(z.string()),
  socketPath: opt(z.string()),
  pciID: opt(z.string()),
});

const ipSchema = z
  .object({
    // 0.x only; checked against the address, then dropped (written again from the address when needed).
    version: opt(z.enum(['4', '6'])),
    address: cidr,
    gateway: optIp,
    interface: opt(uint),
  })
  .superRefine((c, ctx) => {
    if (c.version !== undefined && cidrProblem(c.address) === undefined && c.version !== resultFamily(c.address)) {
      ctx.addIssue({ code: 'custom', path: ['version'], params: { value: c.version }, message: `does not match address ${JSON.stringify(c.address)}` });
    }
  });

const routeSchema = z.object({
  dst: cidr,
  gw: optIp,
  mtu: opt(uint),
  advmss: opt(uint),
  priority: opt(uint),
  table: opt(uint),
  scope: opt(uint.max(255)),
});

const dnsSchema = z.object({ nameservers: strings, domain: opt(z.string()), search: strings, options: strings });

const resultSchema = z
  .object({
    cniVersion: opt(z.string()),
    interfaces: opt(z.array(interfaceSchema)),
    ips: opt(z.array(ipSchema)),
    routes: opt(z.array(routeSchema)),
    dns: opt(dnsSchema),
  })
  .superRefine((r, ctx) => {
    const count = r.interfaces?.length ?? 0;
    r.ips?.forEach((c, i) => {
      if (c.interface !== undefined && c.interface >= count) {
        ctx.addIssue({
          code: 'custom',
          path: ['ips', i, 'interface'],
          params: { value: c.interface },
          message: `is not an index into interfaces (${count} entr${count === 1 ? 'y' : 'ies'})`,
        });
      }
    });
  });

/**
 * Reads a result of any supported version (0.3.0 … 1.1.0; the fields are a
 * superset, and a version's absent fields are simply absent) into the
 * internal shape. CniError 7 naming the path under `base` when it is not one.
 */
export function parseResult(raw: unknown, base: readonly (string | number)[] = ['prevResult']): Result {
  const parsed = resultSchema.safeParse(raw);
  if (!parsed.success) throw issuesError(CniCode.InvalidNetworkConfig, parsed.error, raw, base);
  const r = parsed.data;
  return {
    interfaces: (r.interfaces ?? []).map((i) => prune({ ...i })),
    ips: (r.ips ?? []).map(({ version: _version, ...c }) => prune(c)),
    routes: (r.routes ?? []).map((rt) => prune({ ...rt })),
    dns: prune({ ...(r.dns ?? {}) }),
  };
}

/** The result exactly as spec `toVersion` writes it, ready for JSON.stringify. */
export function convertResult(result: Result, toVersion: CniVersion): WireResult {
  const legacy = isLegacyResultVersion(toVersion);
  const v11 = toVersion === '1.1.0';
  const out: WireResult = { cniVersion: toVersion };

  const interfaces = result.interfaces.map((i) =>
    prune({
      name: i.name,
      mac: i.mac || undefined,
      mtu: v11 ? i.mtu : undefined,
      sandbox: i.sandbox || undefined,
      socketPath: v11 ? i.socketPath || undefined : undefined,
      pciID: v11 ? i.pciID || undefined : undefined,
    }),
  );
  // Key order as libcni writes them: version, interface, address, gateway.
  const ips = result.ips.map((c) =>
    prune({
      version: legacy ? resultFamily(c.address) : undefined,
      interface: c.interface,
      address: c.address,
      gateway: c.gateway || undefined,
    }),
  );
  const routes = result.routes.map((r) =>
    prune(
      v11
        ? { dst: r.dst, gw: r.gw || undefined, mtu: r.mtu, advmss: r.advmss, priority: r.priority, table: r.table, scope: r.scope }
        : { dst: r.dst, gw: r.gw || undefined },
    ),
  );
  const dns = prune({
    nameservers: nonEmpty(result.dns.nameservers),
    domain: result.dns.domain || undefined,
    search: nonEmpty(result.dns.search),
    options: nonEmpty(result.dns.options),
  });

  // Go's omitempty: empty lists and an empty dns are left out.
  if (interfaces.length) out.interfaces = interfaces;
  if (ips.length) out.ips = ips;
  if (routes.length) out.routes = routes;
  if (Object.keys(dns).length) out.dns = dns;
  return out;
}

function nonEmpty(list: string[] | undefined): string[] | undefined {
  return list && list.length ? [...list] : undefined;
}

/** Drops keys whose value is undefined, so JSON and toEqual see the same object. */
function prune<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
