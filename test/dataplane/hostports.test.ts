// engine/dataplane/hostports.ts on the real maps of build/bpf/lb.o (BPF_NOEXIST
// is the kernel's): hostPort frontends written as a one-backend Service in
// the hostPort id ranges, claims that collide, and removal that takes only
// what is still its own. The datapath side is in hostport-e2e.test.ts.
import { describe, expect, it } from 'vitest';
import { backendSlots, isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import { addHostPort, checkHostPort, HostPortConflictError, removeHostPort, type HostPort } from '../../engine/dataplane/hostports.js';
import {
  backendId,
  HOSTPORT_BACKEND_IDS,
  HOSTPORT_REV_NAT,
  hostPortBackendId,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  revNatIndex,
  SERVICE_BACKEND_IDS_MIN,
  SVC_FLAGS,
} from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb } from './lb-fixture.js';

const WEB: HostPort = { address: '192.0.2.1', port: 8080, proto: 'tcp', podAddress: '10.244.0.5', podPort: 80 };
const DNS: HostPort = { address: '192.0.2.1', port: 53, proto: 'udp', podAddress: '10.244.0.5', podPort: 53 };

/** Entries of each map; of the backends map (an array), its used slots. */
const sizes = (lb: LbFixture) => ({ services: [...lb.services.keys()].length, backends: backendSlots(lb.backends).length, revNat: [...lb.revNat.keys()].length });

describe.skipIf(!isRoot)('hostPorts in the load balancer’s maps (needs root: BPF maps)', () => {
  it('writes a frontend with one backend, flagged external and local, in the hostPort ranges', async () => {
    const lb = await loadLb();
    const entry = addHostPort(lb, WEB);
    expect(entry.revNatIndex).toBeGreaterThanOrEqual(HOSTPORT_REV_NAT.min);
    const head = lb.services.lookup(lb4Key.encode({ address: WEB.address, port: WEB.port, proto: 'tcp', slot: 0, scope: 'external' }))!;
    expect(lb4Service.decode(head)).toEqual({ backendId: 0, count: 1, revNatIndex: entry.revNatIndex, flags: SVC_FLAGS.external | SVC_FLAGS.local, affinityTimeout: 0 });
    const slot = lb.services.lookup(lb4Key.encode({ address: WEB.address, port: WEB.port, proto: 'tcp', slot: 1, scope: 'external' }))!;
    expect(lb4Service.decode(slot).backendId).toBe(hostPortBackendId(entry.revNatIndex));
    expect(lb4Backend.decode(lb.backends.lookup(backendId.encode(hostPortBackendId(entry.revNatIndex)))!)).toEqual({ address: WEB.podAddress, port: 80, proto: 'tcp', flags: 0 });
    expect(lb4ReverseNat.decode(lb.revNat.lookup(revNatIndex.encode(entry.revNatIndex))!)).toEqual({ address: WEB.address, port: WEB.port });
    expect(checkHostPort(lb, entry)).toEqual([]);
    // Another protocol on the same port is another frontend.
    expect(addHostPort(lb, { ...WEB, proto: 'udp' }).revNatIndex).not.toBe(entry.revNatIndex);
  });

  it('refuses a frontend another pod or a Service holds, naming the holder and leaving nothing behind', async () => {
    const lb = await loadLb();
    addHostPort(lb, WEB);
    const before = sizes(lb);
    expect(() => addHostPort(lb, { ...WEB, podAddress: '10.244.0.6' })).toThrow(
      new HostPortConflictError({ ...WEB, podAddress: '10.244.0.6' }, { kind: 'hostPort', podAddress: WEB.podAddress, podPort: 80 }),
    );
    lb.addService({ address: DNS.address, port: DNS.port, proto: 'udp', revNatIndex: 7, backends: [{ id: SERVICE_BACKEND_IDS_MIN, address: '10.244.0.9', port: 53 }], flags: SVC_FLAGS.external });
    const withService = sizes(lb);
    expect(() => addHostPort(lb, DNS)).toThrow('hostPort 192.0.2.1:53/udp: already a Service frontend (rev-NAT index 7)');
    expect(sizes(lb)).toEqual(withService);
    expect(withService.services).toBe(before.services + 2);
  });

  it('removes only what is still its own: found by slot 0 without its index, and never an index claimed since', async () => {
    const lb = await loadLb();
    const empty = sizes(lb);
    const entry = addHostPort(lb, WEB);
    removeHostPort(lb, WEB); // as recorded before the maps were written: no revNatIndex
    expect(sizes(lb)).toEqual(empty);
    // The backends map is an array: the hostPort's slot is left all zero, not deleted.
    expect(isEmptyBackend(lb.backends.lookup(backendId.encode(hostPortBackendId(entry.revNatIndex)))!)).toBe(true);
    expect(checkHostPort(lb, entry)).toEqual([`hostPort 192.0.2.1:8080/tcp → 10.244.0.5:80 is not in the services map`]);

    // The same index claimed meanwhile by another pod's frontend: a repeated DEL leaves it.
    const other: HostPort = { ...DNS, podAddress: '10.244.0.7' };
    lb.revNat.update(revNatIndex.encode(entry.revNatIndex), lb4ReverseNat.encode({ address: other.address, port: other.port }), 'noexist');
    lb.backends.update(backendId.encode(hostPortBackendId(entry.revNatIndex)), lb4Backend.encode({ address: other.podAddress, port: other.podPort, proto: 'udp', flags: 0 }));
    removeHostPort(lb, entry);
    expect(sizes(lb)).toEqual({ ...empty, backends: empty.backends + 1, revNat: empty.revNat + 1 });
  });

  it('hostPort backend ids are the lowest, one per hostPort rev-NAT index, below every Service\'s and inside the backends map', async () => {
    const lb = await loadLb();
    const span = HOSTPORT_REV_NAT.max - HOSTPORT_REV_NAT.min + 1;
    expect(HOSTPORT_BACKEND_IDS).toEqual({ min: 1, max: span });
    expect([HOSTPORT_REV_NAT.min, HOSTPORT_REV_NAT.max].map(hostPortBackendId)).toEqual([1, span]);
    expect(SERVICE_BACKEND_IDS_MIN).toBe(span + 1);
    expect(HOSTPORT_BACKEND_IDS.max).toBeLessThan(lb.backends.maxEntries);
    // The highest index's backend fits the array: written and removed like any.
    const top = { ...WEB, port: 9090 };
    lb.revNat.update(revNatIndex.encode(HOSTPORT_REV_NAT.max), lb4ReverseNat.encode({ address: top.address, port: top.port }), 'noexist');
    lb.backends.update(backendId.encode(span), lb4Backend.encode({ address: top.podAddress, port: top.podPort, proto: 'tcp', flags: 0 }));
    removeHostPort(lb, { ...top, revNatIndex: HOSTPORT_REV_NAT.max });
    expect(isEmptyBackend(lb.backends.lookup(backendId.encode(span))!)).toBe(true);
  });
});
