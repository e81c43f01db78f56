// End to end: a pod reaching itself through its own Service. Its request
// arrives from the node's side (HAIRPIN_ADDRESS, as kube-proxy masquerades
// hairpin traffic), not from itself, and the answer comes back from the
// VIP: a TCP exchange completes, and a UDP datagram to a port it does not
// listen on is refused. See uplink-world.ts for the namespaces.
import { describe, expect, it } from 'vitest';
import { HAIRPIN_ADDRESS } from '../../engine/dataplane/layout.js';
import { isRoot } from '../support/netns.js';
import { counters, endpointOf, peerOf, programServices, uplinkWorld } from './uplink-world.js';

const VIP = '10.96.0.10';

describe.skipIf(!isRoot)('hairpin: a pod reaching itself through its Service (needs root)', () => {
  it('TCP to its own ClusterIP: the pod sees the request from the node’s side, the client its answer from the VIP', async () => {
    const w = await uplinkWorld(['self', 'other']);
    const [self, other] = w.pods;
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'self', type: 'ClusterIP', clusterIPs: [VIP], ports: [{ port: 80, targetPort: 8080 }] },
        endpoints: [endpointOf(self!, 8080)],
      },
    ]);
    await w.prober.serveTcp(self!.netns, self!.ip, 8080);
    for (let i = 0; i < 3; i++) {
      const r = await w.prober.tcpExchange(self!.netns, VIP, 80, `me ${i}`, 3000);
      expect(r.reply).toMatch(new RegExp(`^pong me ${i} `));
      expect(peerOf(r.reply).address).toBe(HAIRPIN_ADDRESS);
    }
    // Another pod through the same Service: no hairpin, its own address.
    expect(peerOf((await w.prober.tcpExchange(other!.netns, VIP, 80, 'you', 3000)).reply).address).toBe(other!.ip);
    expect(counters(w.dp).hairpin).toBeGreaterThanOrEqual(6n);
  });

  it('UDP to its own Service on a port it does not listen on: its own port unreachable refuses it (ECONNREFUSED)', async () => {
    const w = await uplinkWorld(['self']);
    const self = w.pods[0]!;
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'dns', type: 'ClusterIP', clusterIPs: [VIP], ports: [{ port: 53, targetPort: 5353, protocol: 'UDP' }] },
        endpoints: [endpointOf(self, 5353, 'UDP')],
      },
    ]);
    await expect(w.prober.udpExchange(self.netns, VIP, 53, 'me?', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(counters(w.dp)).toMatchObject({ icmp_translated: 1n, hairpin: 2n });
  });
});
