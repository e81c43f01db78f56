// The service load balancer's map layout in TypeScript: the twin of
// bpf/include/ferry_lb.h. Codecs for every key and value user space writes or
// reads, the map and program names, and the C enums' values.
// test/dataplane/layout.test.ts compares all of it with the BTF of
// build/bpf/lb.o: struct sizes, member offsets and sizes, enumerators, and
// which struct each map uses. Change both sides together.
import ipaddr from 'ipaddr.js';
import { type CCodec, nameOf, type RawStruct, scalarCodec, structCodec, valueOf } from './cstruct.js';

export type { CCodec, Codec, FieldLayout } from './cstruct.js';

/** The object file, in build/bpf/. */
export const OBJECT_FILE = 'lb.o';

/** Programs in OBJECT_FILE, by role. */
export const PROGRAMS = {
  /** tcx ingress of a pod's host-side veth (routed mode): traffic leaving the pod. */
  fromPod: 'from_pod',
  /** tcx ingress of the node's uplink: traffic from outside the node (NodePort, external and LB IPs), replies of masqueraded flows. */
  fromUplink: 'from_uplink',
  /** tcx egress of the node's uplink: masquerades pods' traffic to outside the cluster. */
  toUplink: 'to_uplink',
} as const;

/** Maps in OBJECT_FILE, pinned by name under the loader's pin root. */
export const MAPS = {
  /** hash, lb4Key → lb4Service: slot 0 is the service, slot i ≥ 1 its i-th backend. */
  services: 'ferry_lb4_svc',
  /**
   * array, backendId → lb4Backend: a slot per id below max_entries; an
   * all-zero one (address 0.0.0.0) holds no backend (backend-slots.ts).
   */
  backends: 'ferry_lb4_be',
  /** hash, revNatIndex → lb4ReverseNat: what replies of a service say as their source. */
  revNat: 'ferry_lb4_rnat',
  /** LRU hash, ct4Key → ctEntry: two entries per load-balanced flow. */
  conntrack: 'ferry_ct4',
  /** per-CPU array, metricIndex → metricValue, indexed as LB_METRICS. */
  metrics: 'ferry_lb_metric',
  /** array of one, nodeConfigKey (0) → nodeConfig: what the programs know of the node. */
  nodeConfig: 'ferry_node_cfg',
  /** LRU hash, lb4AffinityKey → lb4Affinity: ClientIP session affinity, the backend each client last got. */
  affinity: 'ferry_lb4_aff',
  /** hash (not preallocated), lb4MaglevKey → lb4Maglev: a Maglev frontend scope's lookup table. */
  maglev: 'ferry_lb4_maglv',
  /** hash, localPod4Key → localPod4: this node's pods, where host routing delivers with bpf_redirect_peer. */
  localPods: 'ferry_pod4',
  /** hash, clusterNode4Key → clusterNode4 (a set): other nodes' addresses, which to_uplink does not masquerade to. */
  clusterNodes: 'ferry_node4',
  /** LRU hash, frag4Key → frag4Entry: what translated datagrams' first fragments became, for the later ones. */
  fragments: 'ferry_frag4',
  /** hash, lb6Key → lb4Service: IPv6 frontends, as services. */
  services6: 'ferry_lb6_svc',
  /** array, backendId → lb6Backend: IPv6 backends, as backends (address ::: none); ids are unique across both families. */
  backends6: 'ferry_lb6_be',
  /** hash, revNatIndex → lb6ReverseNat: IPv6 frontends' addresses; indices are unique across both families. */
  revNat6: 'ferry_lb6_rnat',
  /** LRU hash, ct6Key → ct6Entry: IPv6 flows, as conntrack. */
  conntrack6: 'ferry_ct6',
  /** LRU hash, lb6AffinityKey → lb4Affinity: IPv6 clients' ClientIP affinity. */
  affinity6: 'ferry_lb6_aff',
  /** hash, localPod6Key → localPod4: this node's pods by IPv6 address, as localPods. */
  localPods6: 'ferry_pod6',
} as const;

/** An address family: IPv6 frontends, backends and flows have maps of their own. */
export type Family = 4 | 6;

/** The family of an address in canonical text (model.ts): IPv6 text, and only it, has a colon. */
export function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

/** Both families, IPv4 first: the order maps of both are read, written and listed in. */
export const FAMILIES: readonly Family[] = Object.freeze([4, 6] as const);

/**
 * `10.96.0.10:80`, `[fd00::10]:80`: an address and port as text, IPv6 in
 * brackets (RFC 3986) so that the port stays readable.
 */
export function addressPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** A map's role in the dataplane: a key of MAPS. */
export type MapRole = keyof typeof MAPS;

/** One M per map role, e.g. the live maps of a loaded dataplane. */
export type MapSet<M> = { readonly [R in MapRole]: M };

// --- enums (enum lb_proto, lb_scope, lb_svc_flags, ct_dir, ct_state, ct_flags, lb_metric)

/** A service's protocol. */
export type Proto = 'tcp' | 'udp';
/** A conntrack entry's protocol: a service's, or ICMP (echo of masqueraded flows). */
export type CtProto = Proto | 'icmp';
export type Scope = 'external' | 'internal';
export type CtDir = 'forward' | 'reverse';
export type CtStateName = 'new' | 'established' | 'closing';

/** enum lb_proto as services use it: IPPROTO_* numbers. */
export const PROTO: Readonly<Record<Proto, number>> = Object.freeze({ tcp: 6, udp: 17 });

/** enum lb_proto, all of it: conntrack keys also hold ICMP. */
export const CT_PROTO: Readonly<Record<CtProto, number>> = Object.freeze({ icmp: 1, ...PROTO });

/**
 * enum lb_scope. Every lookup finds 'external' first; 'internal' exists beside
 * an external frontend with SVC_FLAGS.local, for traffic from pods.
 */
export const SCOPE: Readonly<Record<Scope, number>> = Object.freeze({ external: 0, internal: 1 });

export type SvcFlag = 'external' | 'local' | 'maglev';

/**
 * enum lb_svc_flags: bits of Lb4Service.flags (slot 0). 'external': a
 * NodePort, external IP or load-balancer IP, served to clients outside the
 * node by from_uplink. 'local': externalTrafficPolicy Local on the external
 * scope (from outside: this node's endpoints, the client's address kept; from
 * pods: the internal scope). 'maglev': new flows pick their backend from the
 * scope's Maglev table (MAPS.maglev) by the 5-tuple's hash, not at random.
 */
export const SVC_FLAGS: Readonly<Record<SvcFlag, number>> = Object.freeze({ external: 1, local: 2, maglev: 4 });

/** enum ct_dir: 'forward' entries are keyed by the client's tuple, 'reverse' by the backend's reply. */
export const CT_DIR: Readonly<Record<CtDir, number>> = Object.freeze({ forward: 0, reverse: 1 });

/** enum ct_state, the value of CtEntry.state. It picks the entry's lifetime. */
export const CT_STATE: Readonly<Record<CtStateName, number>> = Object.freeze({ new: 0, established: 1, closing: 2 });

export type CtFlag = 'snat' | 'redirect' | 'masq' | 'hairpin' | 'inbound';

/**
 * enum ct_flags: bits of CtEntry.flags. 'snat': the client's source was
 * rewritten (CtEntry.nat*: the forward entry's is the address:port it
 * became, the reverse entry's the client's own): a flow from outside to a
 * Cluster-policy frontend, a masqueraded or a hairpin flow. 'redirect': its
 * packets are forwarded by FIB lookup and bpf_redirect_neigh. 'masq': a
 * pod's flow to outside the cluster, masqueraded as it leaves through the
 * uplink (no service: backendId and revNatIndex 0). 'hairpin': a pod that
 * reached itself through a service, its source rewritten to HAIRPIN_ADDRESS.
 * 'inbound': a UDP flow from outside the cluster straight to a pod, one
 * entry under the pod's answers' tuple, which keeps them from being
 * masqueraded (no service, no twin).
 */
export const CT_FLAGS: Readonly<Record<CtFlag, number>> = Object.freeze({ snat: 1, redirect: 2, masq: 4, hairpin: 8, inbound: 16 });

/**
 * LB_HAIRPIN_ADDR4: the source hairpin flows are given, routed mode's
 * link-local gateway (plugin/network/routed.ts). A C macro, not in BTF:
 * test/dataplane/hairpin.test.ts checks the programs use this one.
 */
export const HAIRPIN_ADDRESS = '169.254.1.1';

/** LB_HAIRPIN_ADDR6_*: IPv6 hairpin flows' source, routed mode's IPv6 gateway. */
export const HAIRPIN_ADDRESS6 = 'fe80::1';

/** The unspecified address of a family: what an unset address field decodes to. */
export const ANY_ADDRESS: Readonly<Record<Family, string>> = Object.freeze({ 4: '0.0.0.0', 6: '::' });

/**
 * enum lb_metric: counter names by index into MAPS.metrics. The outcomes
 * (translated … drop_ttl) count each packet from_pod, from_uplink and
 * to_uplink see exactly once; the events (LB_EVENTS) are counted on top.
 */
export const LB_METRICS = Object.freeze([
  'translated',
  'rev_translated',
  'masqueraded',
  'icmp_translated',
  'frag_translated',
  'pass_not_ip',
  'pass_malformed',
  'pass_fragment',
  'pass_other_proto',
  'pass_no_service',
  'pass_no_rev_nat',
  'pass_not_external',
  'pass_no_masq',
  'reject_no_backend',
  'drop_no_backend',
  'drop_no_slot',
  'drop_ct_create',
  'drop_nat',
  'drop_no_snat_addr',
  'drop_no_snat_port',
  'drop_ttl',
  'ct_created',
  'ct_reselected',
  'ct_restored',
  'fib_redirect',
  'fib_miss',
  'hairpin',
  'peer_redirect',
] as const);
export type LbMetric = (typeof LB_METRICS)[number];

/** The metrics that are events, not outcomes: LB_METRICS from ct_created on. */
export const LB_EVENTS: ReadonlySet<LbMetric> = new Set(LB_METRICS.slice(LB_METRICS.indexOf('ct_created')));

/** The counter's index in MAPS.metrics. */
export function metricIndex(name: LbMetric): number {
  const index = LB_METRICS.indexOf(name);
  if (index < 0) throw new TypeError(`unknown metric '${String(name)}'`);
  return index;
}

/**
 * Every constant table above with the C enum it mirrors, for the layout test:
 * name `foo` in a table is enumerator `${prefix}FOO` in C. `sentinel` is a
 * C enumerator counting the others, not a value of its own.
 */
export const C_ENUMS: ReadonlyArray<{
  readonly cType: string;
  readonly prefix: string;
  readonly values: Readonly<Record<string, number>>;
  readonly sentinel?: string;
}> = Object.freeze([
  { cType: 'lb_proto', prefix: 'LB_PROTO_', values: CT_PROTO },
  { cType: 'lb_scope', prefix: 'LB_SCOPE_', values: SCOPE },
  { cType: 'lb_svc_flags', prefix: 'LB_SVC_F_', values: SVC_FLAGS },
  { cType: 'ct_dir', prefix: 'CT_', values: CT_DIR },
  { cType: 'ct_state', prefix: 'CT_', values: CT_STATE },
  { cType: 'ct_flags', prefix: 'CT_F_', values: CT_FLAGS },
  {
    cType: 'lb_metric',
    prefix: 'LB_METRIC_',
    values: Object.freeze(Object.fromEntries(LB_METRICS.map((name, index) => [name, index]))),
    sentinel: 'LB_METRIC_MAX',
  },
]);

// --- keys and values ------------------------------------------------------------

/** struct lb4_key: a service (slot 0) or one of its backend slots (1 … count). */
export interface Lb4Key {
  address: string;
  port: number;
  proto: Proto;
  slot: number;
  scope: 'external' | 'internal';
}

/** struct lb4_service: slot 0 uses count, revNatIndex and flags, slots ≥ 1 backendId. */
export interface Lb4Service {
  backendId: number;
  count: number;
  revNatIndex: number;
  /** Slot 0: SVC_FLAGS bits; slots ≥ 1: 0. */
  flags: number;
  /** Slot 0: ClientIP session affinity, seconds; 0: none. Slots ≥ 1: 0. */
  affinityTimeout: number;
}

/** struct lb4_backend. */
export interface Lb4Backend {
  address: string;
  port: number;
  proto: Proto;
  /** Reserved, 0. */
  flags: number;
}

/** struct lb4_reverse_nat: the service address replies carry as their source. */
export interface Lb4ReverseNat {
  address: string;
  port: number;
}

/**
 * struct ct4_key: a packet's tuple as the program sees it. ICMP echo: the
 * identifier is a request's sport and a reply's dport, the other port 0.
 */
export interface Ct4Key {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: CtProto;
  dir: 'forward' | 'reverse';
}

/**
 * struct ct_entry. Stale once the programs' clock (clock.ts, not
 * process.hrtime()) passes lastSeenNs + lifetimeNs: see ctStale(). It
 * moves a tick (1–10 ms) at a time; an active flow's entries are refreshed
 * at least once a second.
 */
export interface CtEntry {
  lastSeenNs: bigint;
  lifetimeNs: bigint;
  backendId: number;
  revNatIndex: number;
  /** TCP flags seen in this entry's direction, ORed (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10). */
  tcpFlags: number;
  /** A CT_STATE value. */
  state: number;
  /**
   * With CT_FLAGS.snat: the forward entry's is the node address and port the
   * client's source became, the reverse entry's the client's own. '0.0.0.0'
   * and 0 otherwise. Optional when encoding (meaning those), always decoded.
   */
  natAddress?: string;
  natPort?: number;
  /** CT_FLAGS bits, the same in both entries of a flow. Optional when encoding (0), always decoded. */
  flags?: number;
}

/** struct node_cfg: what the programs know of the node (MAPS.nodeConfig, key 0). */
export interface NodeConfig {
  /**
   * The node address flows from outside with externalTrafficPolicy Cluster
   * are SNATed to, and pods' flows to outside the cluster masqueraded to;
   * '0.0.0.0': none (they are dropped).
   */
  snatAddress: string;
  /** Their source ports, inclusive (both families). */
  snatPortMin: number;
  snatPortMax: number;
  /**
   * The cluster's pod CIDRs of both families, mixed, at most
   * NODE_CLUSTER_CIDRS_MAX of each, e.g. ['10.244.0.0/16',
   * 'fd00:10:244::/56']: traffic from them leaving through the uplink to
   * none of them is masqueraded. The IPv4 ones go to node_cfg.cluster_cidrs,
   * the IPv6 ones to cluster_cidrs6. Optional when encoding (none: nothing
   * is), always decoded (IPv4 first).
   */
  clusterCidrs?: readonly string[];
  /**
   * The IPv6 address flows from outside to IPv6 Cluster-policy frontends
   * are SNATed to, and pods' IPv6 flows to outside the cluster masqueraded
   * to; '::' (the default): none (they are dropped).
   */
  snatAddress6?: string;
}

/** struct lb4_key or lb6_key: the same members, the address 4 or 16 bytes. */
function lbKeyCodec(family: Family): CCodec<Lb4Key> {
  const cType = `lb${family}_key`;
  return structCodec<Lb4Key>(
    cType,
    [
      ['address', family === 4 ? 'ipv4' : 'ipv6'],
      ['dport', 'be16'],
      ['slot', 'u16'],
      ['proto', 'u8'],
      ['scope', 'u8'],
      ['pad', 'pad', 2],
    ],
    (v) => ({
      address: v.address,
      dport: v.port,
      slot: v.slot,
      proto: valueOf(PROTO, v.proto, `${cType}.proto`),
      scope: valueOf(SCOPE, v.scope, `${cType}.scope`),
    }),
    (r) => ({
      address: r.address as string,
      port: r.dport as number,
      proto: nameOf(PROTO, r.proto, `${cType}.proto`),
      slot: r.slot as number,
      scope: nameOf(SCOPE, r.scope, `${cType}.scope`),
    }),
  );
}

export const lb4Key: CCodec<Lb4Key> = lbKeyCodec(4);
/** struct lb6_key: an Lb4Key whose address is IPv6 text. */
export const lb6Key: CCodec<Lb4Key> = lbKeyCodec(6);

export const lb4Service: CCodec<Lb4Service> = structCodec<Lb4Service>(
  'lb4_service',
  [
    ['backend_id', 'u32'],
    ['count', 'u16'],
    ['rev_nat_index', 'u16'],
    ['flags', 'u8'],
    ['pad', 'pad', 3],
    ['affinity_timeout', 'u32'],
  ],
  (v): RawStruct => ({
    backend_id: v.backendId,
    count: v.count,
    rev_nat_index: v.revNatIndex,
    flags: v.flags,
    affinity_timeout: v.affinityTimeout,
  }),
  (r) => ({
    backendId: r.backend_id as number,
    count: r.count as number,
    revNatIndex: r.rev_nat_index as number,
    flags: r.flags as number,
    affinityTimeout: r.affinity_timeout as number,
  }),
);

/** Key of MAPS.backends (__u32). */
export const backendId: CCodec<number> = scalarCodec('__u32', 'u32');

function lbBackendCodec(family: Family): CCodec<Lb4Backend> {
  const cType = `lb${family}_backend`;
  return structCodec<Lb4Backend>(
    cType,
    [
      ['address', family === 4 ? 'ipv4' : 'ipv6'],
      ['port', 'be16'],
      ['proto', 'u8'],
      ['flags', 'u8'],
    ],
    (v) => ({ address: v.address, port: v.port, proto: valueOf(PROTO, v.proto, `${cType}.proto`), flags: v.flags }),
    (r) => ({
      address: r.address as string,
      port: r.port as number,
      proto: nameOf(PROTO, r.proto, `${cType}.proto`),
      flags: r.flags as number,
    }),
  );
}

export const lb4Backend: CCodec<Lb4Backend> = lbBackendCodec(4);
/** struct lb6_backend: an Lb4Backend whose address is IPv6 text. */
export const lb6Backend: CCodec<Lb4Backend> = lbBackendCodec(6);

/** Key of MAPS.revNat (__u16). */
export const revNatIndex: CCodec<number> = scalarCodec('__u16', 'u16');

function lbReverseNatCodec(family: Family): CCodec<Lb4ReverseNat> {
  return structCodec<Lb4ReverseNat>(
    `lb${family}_reverse_nat`,
    [
      ['address', family === 4 ? 'ipv4' : 'ipv6'],
      ['port', 'be16'],
      ['pad', 'pad', 2],
    ],
    (v) => ({ address: v.address, port: v.port }),
    (r) => ({ address: r.address as string, port: r.port as number }),
  );
}

export const lb4ReverseNat: CCodec<Lb4ReverseNat> = lbReverseNatCodec(4);
/** struct lb6_reverse_nat: an Lb4ReverseNat whose address is IPv6 text. */
export const lb6ReverseNat: CCodec<Lb4ReverseNat> = lbReverseNatCodec(6);

function ctKeyCodec(family: Family): CCodec<Ct4Key> {
  const cType = `ct${family}_key`;
  const address = family === 4 ? 'ipv4' : 'ipv6';
  return structCodec<Ct4Key>(
    cType,
    [
      ['saddr', address],
      ['daddr', address],
      ['sport', 'be16'],
      ['dport', 'be16'],
      ['proto', 'u8'],
      ['dir', 'u8'],
      ['pad', 'pad', 2],
    ],
    (v) => ({
      saddr: v.saddr,
      daddr: v.daddr,
      sport: v.sport,
      dport: v.dport,
      proto: valueOf(CT_PROTO, v.proto, `${cType}.proto`),
      dir: valueOf(CT_DIR, v.dir, `${cType}.dir`),
    }),
    (r) => ({
      saddr: r.saddr as string,
      daddr: r.daddr as string,
      sport: r.sport as number,
      dport: r.dport as number,
      proto: nameOf(CT_PROTO, r.proto, `${cType}.proto`),
      dir: nameOf(CT_DIR, r.dir, `${cType}.dir`),
    }),
  );
}

export const ct4Key: CCodec<Ct4Key> = ctKeyCodec(4);
/** struct ct6_key: a Ct4Key whose addresses are IPv6 text. */
export const ct6Key: CCodec<Ct4Key> = ctKeyCodec(6);

/** struct ct_entry or ct6_entry: the same members, nat_addr 4 or 16 bytes (then 5 bytes of tail padding). */
function ctEntryCodec(family: Family): CCodec<CtEntry> {
  return structCodec<CtEntry>(
    family === 4 ? 'ct_entry' : 'ct6_entry',
    [
      ['last_seen', 'u64'],
      ['lifetime_ns', 'u64'],
      ['backend_id', 'u32'],
      ['rev_nat_index', 'u16'],
      ['tcp_flags', 'u8'],
      ['state', 'u8'],
      ['nat_addr', family === 4 ? 'ipv4' : 'ipv6'],
      ['nat_port', 'be16'],
      ['flags', 'u8'],
      ['pad', 'pad', family === 4 ? 1 : 5],
    ],
    (v) => ({
      last_seen: v.lastSeenNs,
      lifetime_ns: v.lifetimeNs,
      backend_id: v.backendId,
      rev_nat_index: v.revNatIndex,
      tcp_flags: v.tcpFlags,
      state: v.state,
      nat_addr: v.natAddress ?? ANY_ADDRESS[family],
      nat_port: v.natPort ?? 0,
      flags: v.flags ?? 0,
    }),
    (r) => ({
      lastSeenNs: r.last_seen as bigint,
      lifetimeNs: r.lifetime_ns as bigint,
      backendId: r.backend_id as number,
      revNatIndex: r.rev_nat_index as number,
      tcpFlags: r.tcp_flags as number,
      state: r.state as number,
      natAddress: r.nat_addr as string,
      natPort: r.nat_port as number,
      flags: r.flags as number,
    }),
  );
}

export const ctEntry: CCodec<CtEntry> = ctEntryCodec(4);
/** struct ct6_entry: a CtEntry whose natAddress is IPv6 text ('::' unset). */
export const ct6Entry: CCodec<CtEntry> = ctEntryCodec(6);

/** Key of MAPS.metrics (__u32, an LB_METRICS index). */
export const metricKey: CCodec<number> = scalarCodec('__u32', 'u32');

/** One CPU's slot of a MAPS.metrics value (__u64); BpfMap.perCpuValues() splits a lookup. */
export const metricValue: CCodec<bigint> = scalarCodec('__u64', 'u64');

/** Key of MAPS.nodeConfig (__u32, always 0). */
export const nodeConfigKey: CCodec<number> = scalarCodec('__u32', 'u32');

/** NODE_CLUSTER_CIDRS_MAX: how many cluster CIDRs of each family struct node_cfg holds. */
export const NODE_CLUSTER_CIDRS_MAX = 4;

/**
 * struct cidr4 and struct cidr6: a prefix as address and netmask ('0.0.0.0'
 * or '::' marks an unused entry).
 */
export interface Cidr4 {
  address: string;
  mask: string;
}

function cidrCodec(family: Family): CCodec<Cidr4> {
  const kind = family === 4 ? 'ipv4' : 'ipv6';
  return structCodec<Cidr4>(
    `cidr${family}`,
    [
      ['addr', kind],
      ['mask', kind],
    ],
    (v) => ({ addr: v.address, mask: v.mask }),
    (r) => ({ address: r.addr as string, mask: r.mask as string }),
  );
}

export const cidr4: CCodec<Cidr4> = cidrCodec(4);
export const cidr6: CCodec<Cidr4> = cidrCodec(6);

const CIDR_EXAMPLE = '10.244.0.0/16 or fd00:10:244::/56';

/**
 * '10.244.0.0/16' or 'fd00:10:244::/56' → its family and struct cidr4 or
 * cidr6; throws naming the CIDR and `where` (given its family, when it has
 * one) unless it is a network address and prefix (IPv4 in four-part
 * decimal, IPv6 without a zone).
 */
function encodeCidr(text: string, whereOf: (family?: Family) => string): { family: Family; cidr: Cidr4 } {
  const refuse = () => new TypeError(`${whereOf()} must be an IPv4 or IPv6 CIDR such as ${CIDR_EXAMPLE}, got ${String(text)}`);
  if (typeof text !== 'string' || text.includes('%')) throw refuse();
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    parsed = ipaddr.parseCIDR(text);
  } catch {
    throw refuse();
  }
  const [address, prefixLen] = parsed;
  const v4 = address.kind() === 'ipv4';
  if (v4 && !ipaddr.IPv4.isValidFourPartDecimal(text.split('/')[0]!)) throw refuse();
  const where = whereOf(v4 ? 4 : 6);
  // Mask 0 marks an unused entry; a /0 cluster would masquerade nothing, as no CIDR does.
  if (prefixLen === 0) throw new RangeError(`${where}: ${text} takes in every address; leave the CIDRs out to masquerade nothing`);
  const network = (v4 ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text)).toString();
  if (network !== address.toString()) throw new RangeError(`${where}: ${text} has host bits set (the network is ${network}/${prefixLen})`);
  const mask = (v4 ? ipaddr.IPv4.subnetMaskFromPrefixLength(prefixLen) : ipaddr.IPv6.subnetMaskFromPrefixLength(prefixLen)).toString();
  return { family: v4 ? 4 : 6, cidr: { address: network, mask } };
}

function decodeCidr(c: Cidr4): string {
  return `${c.address}/${ipaddr.parse(c.mask).prefixLengthFromSubnetMask()}`;
}

// node_cfg's cluster CIDR arrays are laid out by structCodec as bytes (it
// has no arrays) and filled with cidr4 and cidr6 entries by hand.
const nodeConfigHead = structCodec<Omit<NodeConfig, 'clusterCidrs'>>(
  'node_cfg',
  [
    ['snat_addr', 'ipv4'],
    ['snat_port_min', 'u16'],
    ['snat_port_max', 'u16'],
    ['cluster_cidrs', 'pad', NODE_CLUSTER_CIDRS_MAX * cidr4.size],
    ['snat_addr6', 'ipv6'],
    ['cluster_cidrs6', 'pad', NODE_CLUSTER_CIDRS_MAX * cidr6.size],
  ],
  (v) => ({ snat_addr: v.snatAddress, snat_port_min: v.snatPortMin, snat_port_max: v.snatPortMax, snat_addr6: v.snatAddress6 ?? ANY_ADDRESS[6] }),
  (r) => ({
    snatAddress: r.snat_addr as string,
    snatPortMin: r.snat_port_min as number,
    snatPortMax: r.snat_port_max as number,
    snatAddress6: r.snat_addr6 as string,
  }),
);

/** Each family's array in node_cfg: its member name, offset and entry codec. */
const CLUSTER_CIDRS: Readonly<Record<Family, { member: string; offset: number; codec: CCodec<Cidr4> }>> = Object.freeze({
  4: { member: 'cluster_cidrs', offset: nodeConfigHead.fields.find((f) => f.name === 'cluster_cidrs')!.offset, codec: cidr4 },
  6: { member: 'cluster_cidrs6', offset: nodeConfigHead.fields.find((f) => f.name === 'cluster_cidrs6')!.offset, codec: cidr6 },
});

/**
 * Splits cluster CIDRs of both families, mixed, into node_cfg's two
 * arrays, in their order. Throws naming the CIDR that is not one, has
 * host bits set, or is one too many of its family.
 */
export function clusterCidrsByFamily(cidrs: readonly string[]): Record<Family, Cidr4[]> {
  const out: Record<Family, Cidr4[]> = { 4: [], 6: [] };
  cidrs.forEach((text, i) => {
    const whereOf = (family?: Family) => (family === undefined ? `node_cfg cluster CIDR ${i}` : `node_cfg.${CLUSTER_CIDRS[family].member}[${out[family].length}]`);
    const { family, cidr } = encodeCidr(text, whereOf);
    const { member } = CLUSTER_CIDRS[family];
    if (out[family].length === NODE_CLUSTER_CIDRS_MAX) {
      throw new RangeError(`node_cfg.${member}: ${text} is one IPv${family} cluster CIDR too many: at most ${NODE_CLUSTER_CIDRS_MAX} of each family`);
    }
    out[family].push(cidr);
  });
  return out;
}

export const nodeConfig: CCodec<NodeConfig> = Object.freeze({
  cType: nodeConfigHead.cType,
  size: nodeConfigHead.size,
  fields: nodeConfigHead.fields,
  encode(value: NodeConfig): Buffer {
    const byFamily = clusterCidrsByFamily(value.clusterCidrs ?? []);
    const buf = nodeConfigHead.encode(value);
    for (const family of [4, 6] as const) {
      const { offset, codec } = CLUSTER_CIDRS[family];
      byFamily[family].forEach((c, i) => codec.encode(c).copy(buf, offset + i * codec.size));
    }
    return buf;
  },
  encodeInto(value: NodeConfig, buf: Buffer, offset: number): void {
    buf.set(nodeConfig.encode(value), offset);
  },
  decode(bytes: Buffer): NodeConfig {
    const head = nodeConfigHead.decode(bytes);
    const clusterCidrs: string[] = [];
    for (const family of [4, 6] as const) {
      const { offset, codec } = CLUSTER_CIDRS[family];
      for (let i = 0; i < NODE_CLUSTER_CIDRS_MAX; i++) {
        const c = codec.decode(bytes.subarray(offset + i * codec.size, offset + (i + 1) * codec.size));
        if (c.mask !== ANY_ADDRESS[family]) clusterCidrs.push(decodeCidr(c));
      }
    }
    return { ...head, clusterCidrs };
  },
});

/** struct lb4_affinity_key: a client of one frontend scope (rev-NAT index and scope). */
export interface Lb4AffinityKey {
  clientAddress: string;
  revNatIndex: number;
  scope: Scope;
}

/**
 * struct lb4_affinity: the backend a client last got. Holds while
 * the programs' clock (clock.ts) has not passed lastUsedNs + the service's affinityTimeout
 * seconds. slot: the service slot backendId was chosen from (0: by Maglev).
 */
export interface Lb4Affinity {
  lastUsedNs: bigint;
  backendId: number;
  slot: number;
}

/** struct lb4_maglev_key: one frontend scope. */
export interface Lb4MaglevKey {
  revNatIndex: number;
  scope: Scope;
}

/** LB_MAGLEV_MAX: the largest Maglev table (a prime); struct lb4_maglev has room for this many entries. */
export const MAGLEV_MAX = 16381;

/** struct lb4_maglev: a Maglev lookup table of `backendIds.length` (a prime ≤ MAGLEV_MAX) entries. */
export interface Lb4Maglev {
  /** jhash initval for the 5-tuple (the datapath's side of the seed). */
  seed: number;
  backendIds: readonly number[] | Uint32Array;
}

function lbAffinityKeyCodec(family: Family): CCodec<Lb4AffinityKey> {
  const cType = `lb${family}_affinity_key`;
  return structCodec<Lb4AffinityKey>(
    cType,
    [
      ['client_addr', family === 4 ? 'ipv4' : 'ipv6'],
      ['rev_nat_index', 'u16'],
      ['scope', 'u8'],
      ['pad', 'pad', 1],
    ],
    (v) => ({ client_addr: v.clientAddress, rev_nat_index: v.revNatIndex, scope: valueOf(SCOPE, v.scope, `${cType}.scope`) }),
    (r) => ({
      clientAddress: r.client_addr as string,
      revNatIndex: r.rev_nat_index as number,
      scope: nameOf(SCOPE, r.scope, `${cType}.scope`),
    }),
  );
}

export const lb4AffinityKey: CCodec<Lb4AffinityKey> = lbAffinityKeyCodec(4);
/** struct lb6_affinity_key: an Lb4AffinityKey whose client address is IPv6 text. */
export const lb6AffinityKey: CCodec<Lb4AffinityKey> = lbAffinityKeyCodec(6);

export const lb4Affinity: CCodec<Lb4Affinity> = structCodec<Lb4Affinity>(
  'lb4_affinity',
  [
    ['last_used', 'u64'],
    ['backend_id', 'u32'],
    ['slot', 'u16'],
    ['pad', 'pad', 2],
  ],
  (v) => ({ last_used: v.lastUsedNs, backend_id: v.backendId, slot: v.slot }),
  (r) => ({ lastUsedNs: r.last_used as bigint, backendId: r.backend_id as number, slot: r.slot as number }),
);

export const lb4MaglevKey: CCodec<Lb4MaglevKey> = structCodec<Lb4MaglevKey>(
  'lb4_maglev_key',
  [
    ['rev_nat_index', 'u16'],
    ['scope', 'u8'],
    ['pad', 'pad', 1],
  ],
  (v) => ({ rev_nat_index: v.revNatIndex, scope: valueOf(SCOPE, v.scope, 'lb4_maglev_key.scope') }),
  (r) => ({ revNatIndex: r.rev_nat_index as number, scope: nameOf(SCOPE, r.scope, 'lb4_maglev_key.scope') }),
);

const MAGLEV_HEADER = 8;
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * struct lb4_maglev: { __u32 size; __u32 seed; __u32 backend_ids[MAGLEV_MAX] },
 * host order. Written by hand: structCodec has no arrays.
 */
export const lb4Maglev: CCodec<Lb4Maglev> = Object.freeze({
  cType: 'lb4_maglev',
  size: MAGLEV_HEADER + 4 * MAGLEV_MAX,
  fields: Object.freeze([
    Object.freeze({ name: 'size', offset: 0, size: 4 }),
    Object.freeze({ name: 'seed', offset: 4, size: 4 }),
    Object.freeze({ name: 'backend_ids', offset: MAGLEV_HEADER, size: 4 * MAGLEV_MAX }),
  ]),
  encode(value: Lb4Maglev): Buffer {
    const m = value.backendIds.length;
    if (m > MAGLEV_MAX) throw new RangeError(`lb4_maglev.size: ${m} entries, at most ${MAGLEV_MAX}`);
    if (!Number.isInteger(value.seed) || value.seed < 0 || value.seed > 0xffff_ffff) throw new RangeError(`lb4_maglev.seed: ${value.seed} is no u32`);
    const buf = Buffer.alloc(MAGLEV_HEADER + 4 * MAGLEV_MAX);
    const write = (n: number, offset: number) => (LE ? buf.writeUInt32LE(n, offset) : buf.writeUInt32BE(n, offset));
    write(m, 0);
    write(value.seed, 4);
    for (let i = 0; i < m; i++) write(value.backendIds[i]!, MAGLEV_HEADER + 4 * i);
    return buf;
  },
  encodeInto(value: Lb4Maglev, buf: Buffer, offset: number): void {
    buf.set(lb4Maglev.encode(value), offset);
  },
  decode(bytes: Buffer): Lb4Maglev {
    if (bytes.length !== MAGLEV_HEADER + 4 * MAGLEV_MAX) throw new RangeError(`struct lb4_maglev: ${bytes.length} bytes, expected ${MAGLEV_HEADER + 4 * MAGLEV_MAX} bytes`);
    const read = (offset: number) => (LE ? bytes.readUInt32LE(offset) : bytes.readUInt32BE(offset));
    const m = Math.min(read(0), MAGLEV_MAX);
    const backendIds = new Uint32Array(m);
    for (let i = 0; i < m; i++) backendIds[i] = read(MAGLEV_HEADER + 4 * i);
    return { seed: read(4), backendIds };
  },
});

/** struct local_pod4_key: a pod's IPv4 address. */
export interface LocalPod4Key {
  address: string;
}

/**
 * struct local_pod4: what host routing needs to deliver into a pod of this
 * node with bpf_redirect_peer(): its host veth and the two MACs of the frame
 * it writes (host veth → pod).
 */
export interface LocalPod4 {
  /** The pod's host-side veth, in the node's namespace. */
  ifindex: number;
  /** The pod's interface. */
  podMac: string;
  /** The host veth's. */
  hostMac: string;
}

export const localPod4Key: CCodec<LocalPod4Key> = structCodec<LocalPod4Key>(
  'local_pod4_key',
  [['address', 'ipv4']],
  (v) => ({ address: v.address }),
  (r) => ({ address: r.address as string }),
);

/** struct local_pod6_key: a pod's IPv6 address (ferry_pod6's value is localPod4). */
export const localPod6Key: CCodec<LocalPod4Key> = structCodec<LocalPod4Key>(
  'local_pod6_key',
  [['address', 'ipv6']],
  (v) => ({ address: v.address }),
  (r) => ({ address: r.address as string }),
);

export const localPod4: CCodec<LocalPod4> = structCodec<LocalPod4>(
  'local_pod4',
  [
    ['ifindex', 'u32'],
    ['pod_mac', 'mac'],
    ['host_mac', 'mac'],
  ],
  (v) => ({ ifindex: v.ifindex, pod_mac: v.podMac, host_mac: v.hostMac }),
  (r) => ({ ifindex: r.ifindex as number, podMac: r.pod_mac as string, hostMac: r.host_mac as string }),
);

/** struct cluster_node4_key: a node's address. */
export interface ClusterNode4Key {
  address: string;
}

export const clusterNode4Key: CCodec<ClusterNode4Key> = structCodec<ClusterNode4Key>(
  'cluster_node4_key',
  [['address', 'ipv4']],
  (v) => ({ address: v.address }),
  (r) => ({ address: r.address as string }),
);

/** struct cluster_node4: nothing (ferry_node4 is a set). */
export const clusterNode4: CCodec<Record<string, never>> = structCodec<Record<string, never>>(
  'cluster_node4',
  [['pad', 'pad', 4]],
  () => ({}),
  () => ({}),
);

/** struct frag4_key: a fragmented datagram as it came (RFC 791's identity of a datagram). */
export interface Frag4Key {
  saddr: string;
  daddr: string;
  /** The IP header's identification. */
  id: number;
  proto: CtProto;
}

/** struct frag4_entry: what the datagram's first fragment was translated to. */
export interface Frag4Entry {
  firstSeenNs: bigint;
  saddr: string;
  daddr: string;
  /** CT_FLAGS bits of the datagram's flow. */
  flags: number;
}

export const frag4Key: CCodec<Frag4Key> = structCodec<Frag4Key>(
  'frag4_key',
  [
    ['saddr', 'ipv4'],
    ['daddr', 'ipv4'],
    ['id', 'be16'],
    ['proto', 'u8'],
    ['pad', 'pad', 1],
  ],
  (v) => ({ saddr: v.saddr, daddr: v.daddr, id: v.id, proto: valueOf(CT_PROTO, v.proto, 'frag4_key.proto') }),
  (r) => ({ saddr: r.saddr as string, daddr: r.daddr as string, id: r.id as number, proto: nameOf(CT_PROTO, r.proto, 'frag4_key.proto') }),
);

export const frag4Entry: CCodec<Frag4Entry> = structCodec<Frag4Entry>(
  'frag4_entry',
  [
    ['first_seen', 'u64'],
    ['saddr', 'ipv4'],
    ['daddr', 'ipv4'],
    ['flags', 'u8'],
    ['pad', 'pad', 7],
  ],
  (v) => ({ first_seen: v.firstSeenNs, saddr: v.saddr, daddr: v.daddr, flags: v.flags }),
  (r) => ({ firstSeenNs: r.first_seen as bigint, saddr: r.saddr as string, daddr: r.daddr as string, flags: r.flags as number }),
);

/**
 * The rev-NAT indices of hostPort frontends (CNI portMappings, written by
 * CNI ADD into MAPS.services, .backends and .revNat beside the Services):
 * the daemon's Reconciler hands out indices below `min` only, and leaves
 * entries in this range alone. A hostPort frontend with index r has the one
 * backend hostPortBackendId(r), in the range HOSTPORT_BACKEND_IDS.
 */
export const HOSTPORT_REV_NAT: Readonly<{ min: number; max: number }> = Object.freeze({ min: 0xf000, max: 0xffff });

/**
 * The backend ids of hostPort frontends, one per HOSTPORT_REV_NAT index:
 * the lowest ones (0 is no backend), so that they fit a backends map of any
 * capacity the daemon allows. The Reconciler's are above `max`
 * (SERVICE_BACKEND_IDS_MIN) and below the maps' capacity.
 */
export const HOSTPORT_BACKEND_IDS: Readonly<{ min: number; max: number }> = Object.freeze({ min: 1, max: HOSTPORT_REV_NAT.max - HOSTPORT_REV_NAT.min + 1 });

/** The lowest backend id of a Service's backend (the Reconciler's): the one after hostPorts'. */
export const SERVICE_BACKEND_IDS_MIN = HOSTPORT_BACKEND_IDS.max + 1;

/**
 * LB4_BACKENDS_MAX and LB6_BACKENDS_MAX: the capacity lb.o declares for
 * the backends maps (arrays indexed by backend id), which the loader may
 * change (LoadOptions.maxEntries). Backend ids are below the capacity of
 * the maps as loaded (BpfMap.maxEntries); this is what a map that does not
 * say (an in-memory one) is taken to hold. test/dataplane/layout.test.ts
 * checks it against lb.o.
 */
export const BACKENDS_MAX = 65_536;

/** The backend id of the hostPort frontend with rev-NAT index `r` (in HOSTPORT_REV_NAT). */
export function hostPortBackendId(r: number): number {
  return HOSTPORT_BACKEND_IDS.min + (r - HOSTPORT_REV_NAT.min);
}

/** Whether a rev-NAT index is a hostPort frontend's. */
export function isHostPortRevNat(r: number): boolean {
  return r >= HOSTPORT_REV_NAT.min && r <= HOSTPORT_REV_NAT.max;
}

/** Whether a backend id is a hostPort frontend's. */
export function isHostPortBackend(id: number): boolean {
  return id >= HOSTPORT_BACKEND_IDS.min && id <= HOSTPORT_BACKEND_IDS.max;
}

/** Whether an affinity record has expired at `nowNs` for a service with `timeoutSeconds` (as the datapath judges it). */
export function affinityExpired(entry: Pick<Lb4Affinity, 'lastUsedNs'>, timeoutSeconds: number, nowNs: bigint): boolean {
  return nowNs - entry.lastUsedNs > BigInt(timeoutSeconds) * 1_000_000_000n;
}

/** The key and value codec of each map, checked against the map definitions' BTF. */
export const MAP_CODECS = Object.freeze({
  services: { key: lb4Key, value: lb4Service },
  backends: { key: backendId, value: lb4Backend },
  revNat: { key: revNatIndex, value: lb4ReverseNat },
  conntrack: { key: ct4Key, value: ctEntry },
  metrics: { key: metricKey, value: metricValue },
  nodeConfig: { key: nodeConfigKey, value: nodeConfig },
  affinity: { key: lb4AffinityKey, value: lb4Affinity },
  maglev: { key: lb4MaglevKey, value: lb4Maglev },
  localPods: { key: localPod4Key, value: localPod4 },
  clusterNodes: { key: clusterNode4Key, value: clusterNode4 },
  fragments: { key: frag4Key, value: frag4Entry },
  services6: { key: lb6Key, value: lb4Service },
  backends6: { key: backendId, value: lb6Backend },
  revNat6: { key: revNatIndex, value: lb6ReverseNat },
  conntrack6: { key: ct6Key, value: ct6Entry },
  affinity6: { key: lb6AffinityKey, value: lb4Affinity },
  localPods6: { key: localPod6Key, value: localPod4 },
} as const) satisfies Readonly<Record<keyof typeof MAPS, { key: CCodec<unknown>; value: CCodec<unknown> }>>;

/** Whether a conntrack entry is past its lifetime at `nowNs` (the programs' clock: clock.ts). */
export function ctStale(entry: Pick<CtEntry, 'lastSeenNs' | 'lifetimeNs'>, nowNs: bigint): boolean {
  return nowNs > entry.lastSeenNs + entry.lifetimeNs;
}
