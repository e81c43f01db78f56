// End to end: the checksums ferry's NAT writes in place (lib/nat4.h), checked
// by real receivers. Between veths nobody computes or checks a checksum: a
// local sender's packet carries CHECKSUM_PARTIAL (the field holds only the
// pseudo header's sum, the rest is left to the device) and the receiver
// trusts it. Here both ends of the node's uplink do checksums in software
// (ethtool: tx and rx checksumming off), so:
//  - a pod's partial checksum, DNATed to a backend beyond the uplink, is
//    finished by the node's stack from what the NAT left in the field, and
//    checked by the backend's;
//  - the backend's packets come back with whole checksums (CHECKSUM_NONE),
//    which the reverse NAT updates (RFC 1624) and the pod's stack checks.
// A wrong sum either way stalls the exchange; the receivers' InCsumErrors
// must stay 0. See uplink-world.ts for the namespaces.
import { describe, expect, it } from 'vitest';
import { inNetns, isRoot, run } from '../support/netns.js';
import { counters, endpointOf, peerOf, programServices, REMOTE_POD_IP, uplinkWorld } from './uplink-world.js';

const VIP = '10.96.0.40';
const REMOTE_NODE = 'node-b';

/** TCP and UDP InCsumErrors of the namespace, from /proc/net/snmp. */
function csumErrors(netnsPath: string): { tcp: number; udp: number } {
  const snmp = run('nsenter', [`--net=${netnsPath}`, 'cat', '/proc/net/snmp']).split('\n');
  const field = (proto: string) => {
    const [head, values] = snmp.filter((l) => l.startsWith(`${proto}:`)).map((l) => l.split(/\s+/));
    return Number(values![head!.indexOf('InCsumErrors')]);
  };
  return { tcp: field('Tcp'), udp: field('Udp') };
}

describe.skipIf(!isRoot)('checksums after NAT, computed and checked in software (needs root)', () => {
  it('a pod reaches a ClusterIP whose backend is beyond the uplink, TCP with 200 kB each way and UDP', async () => {
    const w = await uplinkWorld(['a']);
    const pod = w.pods[0]!;
    inNetns(w.node.name, 'ethtool', ['-K', 'uplink', 'tx', 'off', 'rx', 'off']);
    inNetns(w.outside.name, 'ethtool', ['-K', 'eth0', 'tx', 'off', 'rx', 'off']);
    expect(inNetns(w.node.name, 'ethtool', ['-k', 'uplink'])).toMatch(/^tx-checksumming: off/m);

    const backend = { addresses: [REMOTE_POD_IP], nodeName: REMOTE_NODE };
    programServices(w.dp, [
      {
        service: { namespace: 'default', name: 'far', clusterIPs: [VIP], ports: [{ name: 'tcp', port: 80, targetPort: 9000 }, { name: 'udp', port: 53, targetPort: 9001, protocol: 'UDP' }] },
        endpoints: [{ ...endpointOf(pod, 9000), ...backend, ports: [{ name: 'tcp', port: 9000, protocol: 'TCP' }, { name: 'udp', port: 9001, protocol: 'UDP' }] }],
      },
    ]);
    await w.prober.serveTcp(w.outside, REMOTE_POD_IP, 9000);
    await w.prober.serveUdp(w.outside, REMOTE_POD_IP, 9001);
    const before = { pod: csumErrors(pod.netns.path), outside: csumErrors(w.outside.path) };

    const long = 'x'.repeat(200_000);
    const r = await w.prober.tcpExchange(pod.netns, VIP, 80, long, 5000);
    expect(r.reply.startsWith(`pong ${long} `)).toBe(true);
    expect(peerOf(r.reply).address).toBe(pod.ip);
    for (let i = 0; i < 3; i++) {
      expect(peerOf(await w.prober.udpExchange(pod.netns, VIP, 53, `ping ${i}`, 2000)).address).toBe(pod.ip);
    }

    expect({ pod: csumErrors(pod.netns.path), outside: csumErrors(w.outside.path) }).toEqual(before);
    const c = counters(w.dp);
    expect(c.translated).toBeGreaterThan(0n);
    expect(c.rev_translated).toBeGreaterThan(0n);
  });
});
