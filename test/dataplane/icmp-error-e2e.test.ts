// End to end: ICMP errors about translated flows reach the sender as about
// what it sent. A backend's port unreachable for a UDP ClusterIP flow, and
// the far host's for a masqueraded one, fail the client's connected socket
// at once (ECONNREFUSED: its stack matched the quote to the socket); a
// router's "fragmentation needed" for a masqueraded flow teaches the pod
// the path's MTU. See uplink-world.ts for the namespaces.
import { describe, expect, it } from 'vitest';
import { isRoot, ipJson } from '../support/netns.js';
import { counters, endpointOf, FAR_IP, FAR_MTU, programServices, uplinkWorld } from './uplink-world.js';

const VIP = '10.96.0.10';

/** The MTU the pod's route to `dst` has learnt (`ip route get`: a cached exception), if any. */
function learntMtu(podNetns: string, dst: string): number | undefined {
  const [route] = ipJson<Array<{ metrics?: Array<{ mtu?: number }> }>>(podNetns, ['route', 'get', dst]);
  return route?.metrics?.find((m) => m.mtu !== undefined)?.mtu;
}

describe.skipIf(!isRoot)('ICMP errors about translated flows, end to end (needs root)', () => {
  it('a backend’s port unreachable for a UDP ClusterIP flow reaches the client: ECONNREFUSED', async () => {
    const w = await uplinkWorld(['client', 'backend']);
    const [client, backend] = w.pods;
    // Nothing listens on the backend's 5353.
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'dns', type: 'ClusterIP', clusterIPs: [VIP], ports: [{ port: 53, targetPort: 5353, protocol: 'UDP' }] },
        endpoints: [endpointOf(backend!, 5353, 'UDP')],
      },
    ]);
    // ECONNREFUSED proves the error came back (a lost one would end in ETIMEDOUT); how fast is a bench's question.
    await expect(w.prober.udpExchange(client!.netns, VIP, 53, 'anyone?', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(counters(w.dp).icmp_translated).toBe(1n);
  });

  it('the far host’s port unreachable for a masqueraded UDP flow reaches the pod: ECONNREFUSED', async () => {
    const w = await uplinkWorld(['a']);
    await expect(w.prober.udpExchange(w.pods[0]!.netns, FAR_IP, 9999, 'anyone?', 3000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(counters(w.dp)).toMatchObject({ masqueraded: 1n, icmp_translated: 1n });
  });

  it('“fragmentation needed” from a router beyond the uplink reaches the pod: it learns the path’s MTU', async () => {
    const w = await uplinkWorld(['a']);
    const pod = w.pods[0]!;
    expect(learntMtu(pod.netns.name, FAR_IP)).toBeUndefined();
    // Too big for the far link, with DF (Linux's default for UDP): the outside cannot forward it.
    await expect(w.prober.udpExchange(pod.netns, FAR_IP, 9999, 'x'.repeat(1400), 1000)).rejects.toThrow();
    expect(learntMtu(pod.netns.name, FAR_IP)).toBe(FAR_MTU);
    expect(counters(w.dp).icmp_translated).toBe(1n);
  });
});
