// End to end: UDP datagrams bigger than the MTU through a ClusterIP, which
// the sender's stack fragments: the first fragment is DNATed like any
// packet, the later ones as it was (lib/frag4.h), and so the backend's
// answer, fragmented too, on the way back. See uplink-world.ts for the
// namespaces.
import { describe, expect, it } from 'vitest';
import { isRoot } from '../support/netns.js';
import { counters, endpointOf, peerOf, programServices, uplinkWorld } from './uplink-world.js';

const VIP = '10.96.0.41';

describe.skipIf(!isRoot)('fragmented UDP through a ClusterIP (needs root)', () => {
  it('a 4000-byte datagram reaches the backend pod, and its 4000-byte answer comes back from the VIP', async () => {
    const w = await uplinkWorld(['client', 'backend']);
    const [client, backend] = w.pods;
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'big', clusterIPs: [VIP], ports: [{ port: 53, targetPort: 9053, protocol: 'UDP' }] },
        endpoints: [endpointOf(backend!, 9053, 'UDP')],
      },
    ]);
    await w.prober.serveUdp(backend!.netns, backend!.ip, 9053);
    const big = 'x'.repeat(4000);
    for (let i = 0; i < 3; i++) {
      const reply = await w.prober.udpExchange(client!.netns, VIP, 53, `${big} ${i}`, 2000);
      expect(reply.startsWith(`pong ${big} ${i} `)).toBe(true);
      expect(peerOf(reply).address).toBe(client!.ip);
    }
    // Each way, each datagram: at least two later fragments at a 1500-byte MTU.
    expect(counters(w.dp).frag_translated).toBeGreaterThanOrEqual(12n);
  });
});
