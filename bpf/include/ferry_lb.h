/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service load balancer's shared layout: every struct, enum and map that
 * user space reads or writes. engine/dataplane/layout.ts holds the matching
 * TypeScript codecs, and test/dataplane/layout.test.ts checks them against
 * this header as compiled into build/bpf/lb.o (its BTF), so the two cannot
 * drift apart silently.
 *
 * Rules that keep the layout checkable and stable:
 *  - every struct spells out its padding (no hidden holes: hash keys are
 *    compared byte for byte, and user space must be able to zero them);
 *  - every enum user space uses is the type of something clang describes in
 *    BTF (an enumerator used only as a constant never reaches BTF): struct
 *    members, with a fixed underlying type to keep them one byte, and
 *    enum lb_metric as lb_count()'s parameter (lib/metrics.h);
 *  - addresses and ports are in network byte order (__be*), everything else
 *    in host order;
 *  - map names fit the kernel's 15 characters.
 *
 * Include after vmlinux.h and <bpf/bpf_helpers.h>.
 */
#ifndef FERRY_LB_H
#define FERRY_LB_H

/*
 * L4 protocols the programs translate; the values are IPPROTO_*. Services
 * are TCP or UDP; ICMP appears in conntrack only: echo of masqueraded flows,
 * with the identifier as the port (ct4_key).
 */
enum lb_proto : __u8 {
	LB_PROTO_ICMP = 1,
	LB_PROTO_TCP = 6,
	LB_PROTO_UDP = 17,
};

/*
 * Which view of a service a slot entry belongs to. Every lookup finds
 * LB_SCOPE_EXTERNAL first. LB_SCOPE_INTERNAL exists only beside an external
 * frontend whose external entry has LB_SVC_F_LOCAL: its backends are every
 * endpoint, for traffic from pods (from_pod switches to it), while the
 * external entry holds this node's endpoints only, for traffic from outside.
 */
enum lb_scope : __u8 {
	LB_SCOPE_EXTERNAL = 0,
	LB_SCOPE_INTERNAL = 1,
};

/* A service's slot 0 flags (lb4_service.flags), a bit mask. */
enum lb_svc_flags : __u8 {
	/*
	 * A NodePort (keyed by a node address), external IP or load-balancer
	 * IP: from_uplink serves it to clients outside the node. A ClusterIP
	 * has no flag and is served to pods only.
	 */
	LB_SVC_F_EXTERNAL = 1 << 0,
	/*
	 * externalTrafficPolicy Local (external scope only): traffic from
	 * outside keeps the client's address (no SNAT) and goes to this node's
	 * endpoints only, dropped when there are none; from_pod uses the
	 * internal scope instead.
	 */
	LB_SVC_F_LOCAL = 1 << 1,
	/*
	 * New flows pick their backend by Maglev consistent hashing of the
	 * 5-tuple (ferry_lb4_maglv holds the scope's lookup table) instead of
	 * a random slot. Without a table (user space midway through writing
	 * it) the random choice serves.
	 */
	LB_SVC_F_MAGLEV = 1 << 2,
};

/*
 * Services map key. Slot 0 is the service itself (its lb4_service holds the
 * backend count); slot i, 1 <= i <= count, holds the service's i-th backend.
 *
 * hostPorts (the CNI portMappings capability) are frontends here too, each
 * with one backend, written by CNI ADD: user space keeps their rev-NAT
 * indices and backend ids in a range of their own (HOSTPORT_REV_NAT in
 * engine/dataplane/layout.ts) that the daemon's reconciler neither hands
 * out nor removes. The programs treat them as any external frontend with
 * LB_SVC_F_LOCAL: DNAT, the client's address kept.
 */
struct lb4_key {
	__be32 address;		/* service IP (ClusterIP) */
	__be16 dport;		/* service port */
	__u16 slot;		/* 0: the service; i >= 1: its i-th backend */
	enum lb_proto proto;
	enum lb_scope scope;
	__u8 pad[2];
};

/* Services map value; which fields count depends on the key's slot. */
struct lb4_service {
	__u32 backend_id;	/* slot >= 1: key into the backends map */
	__u16 count;		/* slot 0: number of backend slots (0: no endpoints) */
	__u16 rev_nat_index;	/* slot 0: key into the reverse NAT map */
	enum lb_svc_flags flags; /* slot 0: LB_SVC_F_* */
	__u8 pad[3];
	__u32 affinity_timeout;	/* slot 0: ClientIP session affinity, seconds; 0: none */
};

/*
 * Backends map value (ferry_lb4_be), at its backend id's index. The map is
 * an array: every slot exists, and an unused one is all zero, so a slot
 * whose address is 0.0.0.0 holds no backend (lb4_lookup_backend()).
 */
struct lb4_backend {
	__be32 address;
	__be16 port;
	enum lb_proto proto;
	__u8 flags;		/* reserved, 0 */
};

/*
 * ClientIP session affinity (kube-proxy's sessionAffinity: ClientIP): which
 * backend a client last got from a service's scope. Keyed by the frontend's
 * rev_nat_index and scope (the two scopes of a Local frontend have different
 * backends) and the client's address.
 */
struct lb4_affinity_key {
	__be32 client_addr;
	__u16 rev_nat_index;
	enum lb_scope scope;
	__u8 pad;
};

/*
 * Affinity value. The record holds while the programs' clock (lb_now()) has
 * not passed last_used + the service's affinity_timeout; each new flow that uses it
 * (as iptables' `recent --set` does for each new connection) refreshes
 * last_used. `slot` is where backend_id sat in the service: the record is
 * used only while that slot still names that backend, so a backend taken
 * out of the service (but still a backend of another one) is not reused.
 */
struct lb4_affinity {
	__u64 last_used;	/* ns, the programs' clock (lb_now()) */
	__u32 backend_id;
	__u16 slot;
	__u16 pad;
};

/*
 * Maglev lookup table of one frontend scope (LB_SVC_F_MAGLEV), computed by
 * user space (engine/dataplane/maglev.ts). A flow's entry is
 * jhash(5-tuple, seed) % size; its value is a backend id. `size` is a prime
 * <= LB_MAGLEV_MAX; entries past it are unused (zero).
 */
#define LB_MAGLEV_MAX		16381

struct lb4_maglev_key {
	__u16 rev_nat_index;
	enum lb_scope scope;
	__u8 pad;
};

struct lb4_maglev {
	__u32 size;		/* the table's size M, a prime; 0: no table */
	__u32 seed;		/* jhash initval for the 5-tuple */
	__u32 backend_ids[LB_MAGLEV_MAX];
};

/* Reverse NAT map value, keyed by a __u16 rev_nat_index: what replies say. */
struct lb4_reverse_nat {
	__be32 address;		/* service IP */
	__be16 port;		/* service port */
	__u16 pad;
};

/*
 * Which way a conntrack entry looks. A load-balanced flow has two entries:
 * CT_FORWARD keyed by the client's tuple (client -> service IP:port) and
 * CT_REVERSE keyed by the backend's reply tuple (backend -> client, or
 * backend -> node address:SNAT port for a flow with CT_F_SNAT). A
 * masqueraded flow (CT_F_MASQ) likewise: pod -> outside, and
 * outside -> node address:SNAT port.
 */
enum ct_dir : __u8 {
	CT_FORWARD = 0,
	CT_REVERSE = 1,
};

/*
 * A flow's state, the same in both of its entries. It only chooses the
 * entry's lifetime; it is no firewall (no sequence numbers are checked).
 */
enum ct_state : __u8 {
	CT_NEW = 0,		/* TCP: handshake not done; UDP: no reply yet */
	CT_ESTABLISHED = 1,	/* TCP: a segment without SYN seen; UDP: replied */
	CT_CLOSING = 2,		/* TCP: FIN or RST seen in either direction */
};

/* A conntrack entry's flags (ct_entry.flags), a bit mask, the same in both entries. */
enum ct_flags : __u8 {
	/*
	 * Source NAT (externalTrafficPolicy Cluster from outside; with
	 * CT_F_MASQ or CT_F_HAIRPIN below): the forward entry's nat_* is the
	 * address:port the client's source became, the reverse entry's nat_*
	 * the client's own address:port, which replies get back as their
	 * destination.
	 */
	CT_F_SNAT = 1 << 0,
	/*
	 * Send translated packets on with bpf_redirect_neigh() after a FIB
	 * lookup instead of handing them to the stack: replies of an external
	 * frontend carry a source the node owns (a NodePort's node address) or
	 * go to a client behind the uplink, and an SNATed request's source is
	 * the node's own address: the stack would drop either as martian.
	 */
	CT_F_REDIRECT = 1 << 1,
	/*
	 * Masquerade (with CT_F_SNAT): a pod's flow to outside the cluster,
	 * its source rewritten to the node's address and a port of its own as
	 * it leaves through the uplink. No service: backend_id and
	 * rev_nat_index are 0, and replies keep their source.
	 */
	CT_F_MASQ = 1 << 2,
	/*
	 * Hairpin (with CT_F_SNAT): the backend is the client pod itself. Its
	 * source is rewritten to LB_HAIRPIN_ADDR4 (so it neither sees a request
	 * from itself nor answers it inside itself), and packets both ways go
	 * straight back out of the pod's veth.
	 */
	CT_F_HAIRPIN = 1 << 3,
	/*
	 * Inbound (alone): a UDP flow from outside the cluster straight to a
	 * pod (no service), under the tuple the pod answers on (pod -> client,
	 * CT_FORWARD), so that to_uplink does not masquerade the answers
	 * (lib/masq4.h, lib/masq6.h). One entry, no twin: backend_id,
	 * rev_nat_index and nat_* are 0.
	 */
	CT_F_INBOUND = 1 << 4,
};

/*
 * Conntrack key: a packet's tuple as it is on the wire where the program
 * sees it. ICMP echo has no ports: the identifier stands in for the
 * source port of a request and the destination port of a reply, the
 * other port is 0, so a request and its reply key like a TCP/UDP
 * packet and its reply.
 */
struct ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	enum lb_proto proto;
	enum ct_dir dir;
	__u16 pad;
};

/*
 * Conntrack value. An entry is stale once the programs' clock (lb_now(),
 * lib/common.h: jiffies in ns) passes last_seen + lifetime_ns; user space
 * garbage-collects stale entries, reading that clock through bpf/clock.c.
 * A flow's packets refresh both of its entries, at least every
 * CT_REFRESH_NS (lib/ct.h) while it is active, so each can be judged on
 * its own.
 */
struct ct_entry {
	__u64 last_seen;	/* ns, the programs' clock (lb_now()) */
	__u64 lifetime_ns;	/* from the state: see CT_LIFETIME_* in lib/ct.h */
	__u32 backend_id;
	__u16 rev_nat_index;
	__u8 tcp_flags;		/* TCP flags seen in this entry's direction, ORed */
	enum ct_state state;
	__be32 nat_addr;	/* CT_F_SNAT: see enum ct_flags; otherwise 0 */
	__be16 nat_port;
	enum ct_flags flags;
	__u8 pad;
};

/*
 * Per-CPU counters, indexed by this enum. The first group are outcomes:
 * each packet from_pod, from_uplink or to_uplink sees is counted under
 * exactly one of them, so their sum is the number of packets. The events
 * after them are counted on top.
 * A drop's code is its metric negated (include/ferry_drop.h), so the drop
 * metrics must never be index 0.
 */
enum lb_metric {
	LB_METRIC_TRANSLATED = 0,	/* DNAT to a backend: new or tracked flow */
	LB_METRIC_REV_TRANSLATED,	/* a reply translated back: source to the service, destination to an SNATed client */
	LB_METRIC_MASQUERADED,		/* to_uplink: a pod's packet to outside the cluster, source rewritten to the node's */
	LB_METRIC_ICMP_TRANSLATED,	/* an ICMP or ICMPv6 error about a translated flow: outer and quoted headers rewritten */
	LB_METRIC_FRAG_TRANSLATED,	/* a later fragment of a translated datagram: its addresses rewritten as the first's */
	LB_METRIC_PASS_NOT_IP,		/* neither IPv4 nor IPv6 (ARP, ...) */
	LB_METRIC_PASS_MALFORMED,	/* truncated or invalid IPv4/IPv6/TCP/UDP/ICMP/ICMPv6 header, or ICMP(v6) error quote */
	LB_METRIC_PASS_FRAGMENT,	/* a non-first fragment of no translated datagram (none recorded: ferry_frag4); IPv6: a fragment header */
	LB_METRIC_PASS_OTHER_PROTO,	/* IPv4 but not TCP, UDP, ICMP echo or an ICMP error; IPv6 but not TCP, UDP or an ICMPv6 error right behind its header (ND, echo, extension headers) */
	LB_METRIC_PASS_NO_SERVICE,	/* to no service, and no tracked flow's (an ICMP(v6) error: about none) */
	LB_METRIC_PASS_NO_REV_NAT,	/* a tracked reply whose reverse NAT entry is gone */
	LB_METRIC_PASS_NOT_EXTERNAL,	/* from_uplink: to a frontend served to pods only (ClusterIP) */
	LB_METRIC_PASS_NO_MASQ,		/* to_uplink: not a pod's packet to outside the cluster, or a service flow's */
	LB_METRIC_REJECT_NO_BACKEND,	/* new flow to a service with no endpoints: answered with ICMP port unreachable */
	LB_METRIC_DROP_NO_BACKEND,	/* no backends, and not rejected: Local without a local endpoint, a tracked flow, no SYN ... */
	LB_METRIC_DROP_NO_SLOT,		/* the chosen slot or its backend is missing */
	LB_METRIC_DROP_CT_CREATE,	/* conntrack entries could not be written */
	LB_METRIC_DROP_NAT,		/* a rewrite or checksum helper failed */
	LB_METRIC_DROP_NO_SNAT_ADDR,	/* SNAT needed, but ferry_node_cfg has no address */
	LB_METRIC_DROP_NO_SNAT_PORT,	/* SNAT needed, but no free port was found */
	LB_METRIC_DROP_TTL,		/* a packet to redirect whose TTL (IPv6: hop limit) ran out */
	LB_METRIC_CT_CREATED,		/* event: a new flow's entries written */
	LB_METRIC_CT_RESELECTED,	/* event: a tracked flow's backend was gone */
	LB_METRIC_CT_RESTORED,		/* event: a flow's missing twin entry rewritten */
	LB_METRIC_FIB_REDIRECT,		/* event: a packet sent on by bpf_redirect_neigh() after a FIB lookup */
	LB_METRIC_FIB_MISS,		/* event: a packet of a CT_F_REDIRECT flow the FIB had no answer for: handed to the stack */
	LB_METRIC_HAIRPIN,		/* event: a packet of a hairpin flow sent straight back into its pod */
	LB_METRIC_PEER_REDIRECT,	/* event: a packet delivered into a pod of this node by bpf_redirect_peer() */
	LB_METRIC_MAX,
};

/* An IPv4 prefix: addr & mask == addr. mask 0 marks an unused entry. */
struct cidr4 {
	__be32 addr;
	__be32 mask;
};

/* An IPv6 prefix, as cidr4: addr & mask == addr; an all-zero mask marks an unused entry. */
struct cidr6 {
	struct in6_addr addr;
	struct in6_addr mask;
};

#define NODE_CLUSTER_CIDRS_MAX	4

/*
 * What user space tells the programs about the node: ferry_node_cfg's only
 * entry (key 0). All zero until written: then nothing is SNATed, new
 * Cluster-policy flows from outside are dropped (DROP_NO_SNAT_ADDR), and
 * nothing is masqueraded (no address is a pod's).
 */
struct node_cfg {
	__be32 snat_addr;	/* the node address SNATed and masqueraded flows leave with */
	__u16 snat_port_min;	/* their source ports, host order, inclusive (both families) */
	__u16 snat_port_max;
	/*
	 * The cluster's pod CIDRs: a packet from one of them leaving through
	 * the uplink to none of them is masqueraded (to_uplink).
	 */
	struct cidr4 cluster_cidrs[NODE_CLUSTER_CIDRS_MAX];
	/* The node's IPv6 address SNATed and masqueraded IPv6 flows leave with (::: none); ports as above. */
	struct in6_addr snat_addr6;
	/* The cluster's IPv6 pod CIDRs, as cluster_cidrs for IPv6 packets (lib/masq6.h). */
	struct cidr6 cluster_cidrs6[NODE_CLUSTER_CIDRS_MAX];
};

/*
 * A pod of this node (routed mode), by its IPv4 address (ferry_pod4): what
 * host routing (lib/route4.h) needs to hand a packet straight to the pod's
 * interface with bpf_redirect_peer(). CNI ADD writes it when it attaches
 * from_pod to the pod's host veth; CNI DEL and GC remove it. Its IPv6
 * addresses have the same value in ferry_pod6 (struct local_pod6_key).
 */
struct local_pod4_key {
	__be32 address;
};

struct local_pod4 {
	__u32 ifindex;		/* the pod's host-side veth, in the node's namespace */
	__u8 pod_mac[6];	/* the pod's interface: the destination of frames into the pod */
	__u8 host_mac[6];	/* the host veth's: their source, as the node's own frames have */
};

/*
 * The source hairpin flows (CT_F_HAIRPIN) are given, host order: routed
 * mode's link-local gateway, 169.254.1.1, the address pods know the node
 * by (plugin/network/routed.ts). A macro, so not in BTF: layout.ts's
 * HAIRPIN_ADDRESS mirrors it, and test/dataplane/hairpin.test.ts checks the
 * programs use that one.
 */
#define LB_HAIRPIN_ADDR4	0xa9fe0101

/* --- IPv6 --------------------------------------------------------------------
 *
 * IPv6 frontends, backends and flows have maps of their own, keyed by
 * 128-bit addresses, so that IPv4's keys stay small. What holds no address
 * is shared: a service slot's value (struct lb4_service), an affinity
 * record (struct lb4_affinity), Maglev tables (ferry_lb4_maglv), counters
 * and node_cfg. User space hands out backend ids and rev_nat_indices from
 * one space for both families, so an id names one backend and an index one
 * frontend, whichever family's map holds it.
 */

/* Services map key (ferry_lb6_svc); value: struct lb4_service, as lb4_key's. */
struct lb6_key {
	struct in6_addr address;	/* service IP */
	__be16 dport;
	__u16 slot;
	enum lb_proto proto;
	enum lb_scope scope;
	__u8 pad[2];
};

/* Backends map value (ferry_lb6_be), as lb4_backend: a slot whose address is :: holds none. */
struct lb6_backend {
	struct in6_addr address;
	__be16 port;
	enum lb_proto proto;
	__u8 flags;		/* reserved, 0 */
};

/* Reverse NAT map value (ferry_lb6_rnat), keyed by a __u16 rev_nat_index. */
struct lb6_reverse_nat {
	struct in6_addr address;
	__be16 port;
	__u16 pad;
};

/* ClientIP affinity key (ferry_lb6_aff); value: struct lb4_affinity. */
struct lb6_affinity_key {
	struct in6_addr client_addr;
	__u16 rev_nat_index;
	enum lb_scope scope;
	__u8 pad;
};

/*
 * Conntrack key (ferry_ct6): as ct4_key. ICMPv6 echo is not tracked (nor
 * masqueraded), so proto is TCP or UDP.
 */
struct ct6_key {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be16 sport;
	__be16 dport;
	enum lb_proto proto;
	enum ct_dir dir;
	__u16 pad;
};

/* Conntrack value: as ct_entry, with an IPv6 nat_addr. */
struct ct6_entry {
	__u64 last_seen;
	__u64 lifetime_ns;
	__u32 backend_id;
	__u16 rev_nat_index;
	__u8 tcp_flags;
	enum ct_state state;
	struct in6_addr nat_addr;
	__be16 nat_port;
	enum ct_flags flags;
	__u8 pad[5];
};

/*
 * The source IPv6 hairpin flows are given: routed mode's link-local
 * gateway, fe80::1 (plugin/network/routed.ts), as LB_HAIRPIN_ADDR4 for IPv4;
 * layout.ts's HAIRPIN_ADDRESS6 mirrors it. The first 32-bit word, network
 * order when stored; the others are 0, 0, 1.
 */
#define LB_HAIRPIN_ADDR6_W0	0xfe800000
#define LB_HAIRPIN_ADDR6_W3	0x00000001

/*
 * A pod of this node by its IPv6 address (ferry_pod6, lib/route6.h); value:
 * struct local_pod4, as ferry_pod4's (an interface and two MACs hold no
 * address).
 */
struct local_pod6_key {
	struct in6_addr address;
};

_Static_assert(sizeof(struct lb6_key) == 24, "lb6_key is 24 bytes");
_Static_assert(sizeof(struct lb6_backend) == 20, "lb6_backend is 20 bytes");
_Static_assert(sizeof(struct lb6_reverse_nat) == 20, "lb6_reverse_nat is 20 bytes");
_Static_assert(sizeof(struct lb6_affinity_key) == 20, "lb6_affinity_key is 20 bytes");
_Static_assert(sizeof(struct ct6_key) == 40, "ct6_key is 40 bytes");
_Static_assert(sizeof(struct ct6_entry) == 48, "ct6_entry is 48 bytes");
_Static_assert(sizeof(struct local_pod6_key) == 16, "local_pod6_key is 16 bytes");

/* The sizes layout.ts declares; BTF holds the rest (offsets), checked by a test. */
_Static_assert(sizeof(struct lb4_key) == 12, "lb4_key is 12 bytes");
_Static_assert(sizeof(struct lb4_service) == 16, "lb4_service is 16 bytes");
_Static_assert(sizeof(struct lb4_backend) == 8, "lb4_backend is 8 bytes");
_Static_assert(sizeof(struct lb4_reverse_nat) == 8, "lb4_reverse_nat is 8 bytes");
_Static_assert(sizeof(struct ct4_key) == 16, "ct4_key is 16 bytes");
_Static_assert(sizeof(struct ct_entry) == 32, "ct_entry is 32 bytes");
_Static_assert(sizeof(struct node_cfg) == 8 + 8 * NODE_CLUSTER_CIDRS_MAX + 16 + 32 * NODE_CLUSTER_CIDRS_MAX,
	       "node_cfg is 8 + 8 * NODE_CLUSTER_CIDRS_MAX + 16 + 32 * NODE_CLUSTER_CIDRS_MAX bytes");
_Static_assert(sizeof(struct lb4_affinity_key) == 8, "lb4_affinity_key is 8 bytes");
_Static_assert(sizeof(struct lb4_affinity) == 16, "lb4_affinity is 16 bytes");
_Static_assert(sizeof(struct lb4_maglev_key) == 4, "lb4_maglev_key is 4 bytes");
_Static_assert(sizeof(struct lb4_maglev) == 8 + 4 * LB_MAGLEV_MAX, "lb4_maglev is 8 + 4 * LB_MAGLEV_MAX bytes");
_Static_assert(sizeof(struct local_pod4_key) == 4, "local_pod4_key is 4 bytes");
_Static_assert(sizeof(struct local_pod4) == 16, "local_pod4 is 16 bytes");

/* --- maps, pinned by name under the loader's pin root ----------------------- */

#define LB4_SERVICES_MAX	65536
#define LB4_BACKENDS_MAX	65536
#define LB4_REV_NAT_MAX		65536
#define CT4_MAX			65536
#define LB4_AFFINITY_MAX	65536
#define LB4_MAGLEV_MAX_TABLES	1024
#define LOCAL_PODS4_MAX		16384
/* The cluster's nodes to_uplink knows (ferry_node4). */
#define CLUSTER_NODES4_MAX	16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_SERVICES_MAX);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb4_svc SEC(".maps");

/*
 * Backends by id: an array, whose lookup the verifier inlines (a hash
 * lookup is a helper call, which the established-flow path pays on every
 * packet). Ids run below max_entries; user space removes a backend by
 * writing its slot all zero (an array slot cannot be deleted). The lowest
 * ids, one per hostPort rev_nat_index, are hostPorts', the daemon's
 * Services' above them (HOSTPORT_BACKEND_IDS in engine/dataplane/layout.ts).
 * User space may load it with another max_entries (the daemon's
 * --map-capacity); ferry_lb6_be has the same ids and the same size.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB4_BACKENDS_MAX);
	__type(key, __u32);	/* backend id */
	__type(value, struct lb4_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb4_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_REV_NAT_MAX);
	__type(key, __u16);	/* rev_nat_index */
	__type(value, struct lb4_reverse_nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb4_rnat SEC(".maps");

/* LRU: a full table evicts the least recently used flow instead of failing. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT4_MAX);
	__type(key, struct ct4_key);
	__type(value, struct ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_METRIC_MAX);
	__type(key, __u32);	/* enum lb_metric */
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb_metric SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);	/* 0 */
	__type(value, struct node_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_node_cfg SEC(".maps");

/* LRU: a full table forgets the least recently used client, not a new one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB4_AFFINITY_MAX);
	__type(key, struct lb4_affinity_key);
	__type(value, struct lb4_affinity);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb4_aff SEC(".maps");

/*
 * One value (64 KiB) per Maglev frontend scope. Not preallocated: the
 * kernel allocates a table only when user space writes one, so the map
 * costs nothing for services without Maglev, and LB4_MAGLEV_MAX_TABLES
 * tables at most 64 MiB.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_MAGLEV_MAX_TABLES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lb4_maglev_key);
	__type(value, struct lb4_maglev);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb4_maglv SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LOCAL_PODS4_MAX);
	__type(key, struct local_pod4_key);
	__type(value, struct local_pod4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_pod4 SEC(".maps");

/*
 * Another node's address (the node network writes every node's InternalIP):
 * a set. to_uplink does not masquerade pods' packets to a node — the node
 * routes replies to pod addresses itself, and a pod's answer to another
 * node's SNATed NodePort flow must keep the pod's address to be
 * reverse-translated there. IPv4 only, no IPv6 twin: a pod's IPv6 flow to
 * another node's IPv6 address is masqueraded like one to outside the
 * cluster (that node sees this node's address), while its answers to a
 * flow the other node began keep the pod's, as any answers do (lib/masq6.h).
 */
struct cluster_node4_key {
	__be32 address;
};

struct cluster_node4 {
	__u8 pad[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLUSTER_NODES4_MAX);
	__type(key, struct cluster_node4_key);
	__type(value, struct cluster_node4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_node4 SEC(".maps");

/*
 * A fragmented datagram whose first fragment was translated (lib/frag4.h):
 * later fragments carry no L4 header, so no ports to find their flow by;
 * they are rewritten as the first was, found by what identifies a datagram
 * (RFC 791: source, destination, protocol, identification) as the first
 * fragment had them before translation.
 */
struct frag4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

struct frag4_entry {
	__u64 first_seen;	/* ns, the programs' clock: when the first fragment passed */
	__be32 saddr;		/* what the datagram's source became */
	__be32 daddr;		/* what its destination became */
	enum ct_flags flags;	/* its flow's: where the fragments go (lib/route4.h) */
	__u8 pad[7];
};

_Static_assert(sizeof(struct frag4_key) == 12, "frag4_key is 12 bytes");
_Static_assert(sizeof(struct frag4_entry) == 24, "frag4_entry is 24 bytes");

#define FRAG4_MAX		8192

/* LRU: datagrams whose last fragments never came make room by themselves. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FRAG4_MAX);
	__type(key, struct frag4_key);
	__type(value, struct frag4_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_frag4 SEC(".maps");

#define LB6_SERVICES_MAX	65536
#define LB6_BACKENDS_MAX	65536
#define LB6_REV_NAT_MAX		65536
#define CT6_MAX			65536
#define LB6_AFFINITY_MAX	65536
#define LOCAL_PODS6_MAX		16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB6_SERVICES_MAX);
	__type(key, struct lb6_key);
	__type(value, struct lb4_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb6_svc SEC(".maps");

/* IPv6 backends by id: an array, as ferry_lb4_be (ids are one space across the families). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB6_BACKENDS_MAX);
	__type(key, __u32);	/* backend id */
	__type(value, struct lb6_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb6_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB6_REV_NAT_MAX);
	__type(key, __u16);	/* rev_nat_index */
	__type(value, struct lb6_reverse_nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb6_rnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT6_MAX);
	__type(key, struct ct6_key);
	__type(value, struct ct6_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_ct6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB6_AFFINITY_MAX);
	__type(key, struct lb6_affinity_key);
	__type(value, struct lb4_affinity);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb6_aff SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LOCAL_PODS6_MAX);
	__type(key, struct local_pod6_key);
	__type(value, struct local_pod4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_pod6 SEC(".maps");

#endif /* FERRY_LB_H */
