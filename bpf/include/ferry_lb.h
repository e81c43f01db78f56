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

/* L4 protocols the load balancer translates; the values are IPPROTO_*. */
enum lb_proto : __u8 {
	LB_PROTO_TCP = 6,
	LB_PROTO_UDP = 17,
};

/*
 * Which view of a service a slot entry belongs to. from_pod looks up
 * LB_SCOPE_EXTERNAL only; LB_SCOPE_INTERNAL is reserved for services whose
 * internal traffic policy differs from the external one (a later slice).
 */
enum lb_scope : __u8 {
	LB_SCOPE_EXTERNAL = 0,
	LB_SCOPE_INTERNAL = 1,
};

/*
 * Services map key. Slot 0 is the service itself (its lb4_service holds the
 * backend count); slot i, 1 <= i <= count, holds the service's i-th backend.
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
	__u8 flags;		/* reserved, 0 */
	__u8 pad[3];
	__u32 affinity_timeout;	/* reserved: session affinity, seconds */
};

/* Backends map value, keyed by a __u32 backend id. */
struct lb4_backend {
	__be32 address;
	__be16 port;
	enum lb_proto proto;
	__u8 flags;		/* reserved, 0 */
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
 * CT_REVERSE keyed by the backend's reply tuple (backend -> client).
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

/* Conntrack key: a packet's tuple as it is on the wire where from_pod sees it. */
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
 * Conntrack value. An entry is stale once bpf_ktime_get_ns() (CLOCK_MONOTONIC)
 * passes last_seen + lifetime_ns; user space garbage-collects stale entries.
 * Every packet of a flow refreshes both of its entries, so each can be judged
 * on its own.
 */
struct ct_entry {
	__u64 last_seen;	/* ns, CLOCK_MONOTONIC */
	__u64 lifetime_ns;	/* from the state: see CT_LIFETIME_* in lib/ct4.h */
	__u32 backend_id;
	__u16 rev_nat_index;
	__u8 tcp_flags;		/* TCP flags seen in this entry's direction, ORed */
	enum ct_state state;
};

/*
 * Per-CPU counters, indexed by this enum. The first group are outcomes:
 * each packet from_pod sees is counted under exactly one of them, so their
 * sum is the number of packets. The events after them are counted on top.
 * A drop's code is its metric negated (include/ferry_drop.h), so the drop
 * metrics must never be index 0.
 */
enum lb_metric {
	LB_METRIC_TRANSLATED = 0,	/* DNAT to a backend: new or tracked flow */
	LB_METRIC_REV_TRANSLATED,	/* reply source rewritten to the service */
	LB_METRIC_PASS_NOT_IPV4,	/* not IPv4 (ARP, IPv6, ...) */
	LB_METRIC_PASS_MALFORMED,	/* truncated or invalid IPv4/TCP/UDP header */
	LB_METRIC_PASS_FRAGMENT,	/* a non-first fragment: no L4 header */
	LB_METRIC_PASS_OTHER_PROTO,	/* IPv4 but neither TCP nor UDP */
	LB_METRIC_PASS_NO_SERVICE,	/* TCP/UDP to no service, and no tracked reply */
	LB_METRIC_PASS_NO_REV_NAT,	/* a tracked reply whose reverse NAT entry is gone */
	LB_METRIC_DROP_NO_BACKEND,	/* new flow to a service with no backends */
	LB_METRIC_DROP_NO_SLOT,		/* the chosen slot or its backend is missing */
	LB_METRIC_DROP_CT_CREATE,	/* conntrack entries could not be written */
	LB_METRIC_DROP_NAT,		/* a rewrite or checksum helper failed */
	LB_METRIC_CT_CREATED,		/* event: a new flow's entries written */
	LB_METRIC_CT_RESELECTED,	/* event: a tracked flow's backend was gone */
	LB_METRIC_CT_RESTORED,		/* event: a flow's missing twin entry rewritten */
	LB_METRIC_MAX,
};

/* The sizes layout.ts declares; BTF holds the rest (offsets), checked by a test. */
_Static_assert(sizeof(struct lb4_key) == 12, "lb4_key is 12 bytes");
_Static_assert(sizeof(struct lb4_service) == 16, "lb4_service is 16 bytes");
_Static_assert(sizeof(struct lb4_backend) == 8, "lb4_backend is 8 bytes");
_Static_assert(sizeof(struct lb4_reverse_nat) == 8, "lb4_reverse_nat is 8 bytes");
_Static_assert(sizeof(struct ct4_key) == 16, "ct4_key is 16 bytes");
_Static_assert(sizeof(struct ct_entry) == 24, "ct_entry is 24 bytes");

/* --- maps, pinned by name under the loader's pin root ----------------------- */

#define LB4_SERVICES_MAX	65536
#define LB4_BACKENDS_MAX	65536
#define LB4_REV_NAT_MAX		65536
#define CT4_MAX			65536

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB4_SERVICES_MAX);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_lb4_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
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

#endif /* FERRY_LB_H */
