// hostPorts and address families: ferry's dataplane serves IPv4 hostPorts
// only (its IPv6 maps are the daemon's Services'). A pod without an IPv4
// address is refused naming the pod; a dual-stack pod's mappings are served
// over IPv4, with a warning naming the pod and what IPv6 does not get.
import { describe, expect, it } from 'vitest';
import type { Handle } from '../../engine/handle.js';
import type { CniError } from '../../plugin/cni/errors.js';
import { hostPortsFor, type PortMapping } from '../../plugin/commands/hostports.js';

/** A node whose namespace has these addresses (what `ip addr show` would list). */
const node = (addresses: Array<{ address: string; scope: number }>) => ({ addr: { list: async ({ family }: { family?: 4 | 6 }) => addresses.filter((a) => (a.address.includes(':') ? 6 : 4) === family) } }) as unknown as Handle;
const NODE = node([
  { address: '192.0.2.1', scope: 0 },
  { address: '127.0.0.1', scope: 254 },
  { address: '2001:db8::1', scope: 0 },
]);
const POD = { containerId: '0123456789abcdef0123', k8s: { podNamespace: 'shop', podName: 'web-0' } };
const WEB: PortMapping = { hostPort: 8080, containerPort: 80, protocol: 'tcp' };

describe('hostPortsFor', () => {
  it('an IPv4 pod: a frontend at each global IPv4 node address, no warning', async () => {
    expect(await hostPortsFor(NODE, [WEB], ['10.244.0.5/32'], POD)).toEqual({
      hostPorts: [{ address: '192.0.2.1', port: 8080, proto: 'tcp', podAddress: '10.244.0.5', podPort: 80 }],
    });
  });

  it('a dual-stack pod: served over IPv4 only, with a warning naming the pod and its IPv6 address', async () => {
    const plan = await hostPortsFor(NODE, [WEB, { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1' }], ['10.244.0.5/32', 'fd00:244::5/128'], POD);
    expect(plan.hostPorts.map((h) => `${h.address}:${h.port}/${h.proto} → ${h.podAddress}:${h.podPort}`)).toEqual([
      '192.0.2.1:8080/tcp → 10.244.0.5:80',
      '192.0.2.1:5353/udp → 10.244.0.5:53',
    ]);
    expect(plan.warning).toBe(
      "hostPorts 8080/tcp, 5353/udp of pod shop/web-0 (container 0123456789ab) are served over IPv4 only (to 10.244.0.5): ferry's dataplane has no IPv6 hostPorts, so fd00:244::5 gets none",
    );
  });

  it('an IPv6-only pod is refused with code 2, naming the pod', async () => {
    let error: CniError | undefined;
    await hostPortsFor(NODE, [WEB], ['fd00:244::5/128'], POD).catch((e: CniError) => (error = e));
    expect(error?.code).toBe(2);
    expect(error?.msg).toBe(
      "runtimeConfig.portMappings of pod shop/web-0 (container 0123456789ab): ferry's dataplane serves IPv4 hostPorts only, and the pod has no IPv4 address (fd00:244::5)",
    );
  });

  it('no mappings: nothing, whatever the pod\'s addresses', async () => {
    expect(await hostPortsFor(NODE, [], ['fd00:244::5/128'], POD)).toEqual({ hostPorts: [] });
  });
});
