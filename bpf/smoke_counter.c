// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Smoke test for ferry's BPF plumbing: counts the packets and bytes that pass
// an interface, per direction, in an array map pinned by name. It proves that
// an object loads, its map is pinned, a program attaches (tcx or cls_bpf) and
// the counters can be read back from TypeScript; it makes no decision.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

// tcx and cls_bpf (direct action) agree on what -1 means: tcx calls it
// TCX_NEXT (run the next program on the hook, then carry on as if none were
// there) and cls_bpf calls it TC_ACT_UNSPEC (fall through to the next
// filter, then the default). TC_ACT_OK (0) would also let the packet pass,
// but it would end the chain and hide the packet from programs after us.
// Our own name, because an older vmlinux.h has no enum tcx_action_base.
#define SMOKE_ACT_CONTINUE (-1)

// Array indices, one slot per direction. test/bpf/support.ts reads the map
// with the same indices and struct layout: a test checks the layout against
// this object's BTF and the indices by running each program once.
enum smoke_direction {
  SMOKE_INGRESS = 0,
  SMOKE_EGRESS = 1,
  SMOKE_DIRECTIONS,
};

struct smoke_count {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SMOKE_DIRECTIONS);
  __type(key, __u32);
  __type(value, struct smoke_count);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} smoke_counts SEC(".maps");

static __always_inline int count(const struct __sk_buff *skb, __u32 direction) {
  struct smoke_count *c = bpf_map_lookup_elem(&smoke_counts, &direction);
  // Never NULL for an index below max_entries, but the verifier cannot know.
  if (!c) return SMOKE_ACT_CONTINUE;
  // A plain ARRAY is shared by all CPUs: add atomically so no count is lost.
  __sync_fetch_and_add(&c->packets, 1);
  __sync_fetch_and_add(&c->bytes, skb->len);
  return SMOKE_ACT_CONTINUE;
}

// Two entry points rather than one guessing its direction from the skb:
// ingress_ifindex is also set on forwarded packets leaving an interface.
SEC("tc")
int smoke_ingress(struct __sk_buff *skb) { return count(skb, SMOKE_INGRESS); }

SEC("tc")
int smoke_egress(struct __sk_buff *skb) { return count(skb, SMOKE_EGRESS); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
