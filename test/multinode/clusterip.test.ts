// A ClusterIP whose backends are spread over three nodes, used from a pod,
// in both node-network modes. Every node's daemon programs its own eBPF
// dataplane from the same manifests; the client's node DNATs at its pod's
// host veth, the backend's node routes the reply back, and the client's
// node reverse-NATs it where it comes in: at the uplink (direct) or the
// vxlan device (vxlan), where from_uplink sits. Every connection must
// succeed with the backend seeing the client's own address, and the
// capture on the client node's underlay port shows connections reaching
// the backends on both other nodes (DNATed before leaving, so the pod
// addresses are on the wire — inside the tunnel in vxlan mode).
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareClients } from '../support/ferry.js';
import { isRoot } from '../support/netns.js';
import { newProber } from '../support/probing.js';
import { captureOnUnderlay, startCluster, type TestNode, type TestPod } from './cluster.js';

const VIP = '10.96.0.10';
const PORT = 8080;
const CONNECTIONS = 30; // three backends: each is picked at least once but for odds of 2 in 100 000

const service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default' },
  spec: { type: 'ClusterIP', clusterIP: VIP, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: PORT }] },
};
const slice = (backends: TestPod[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: PORT, protocol: 'TCP' }],
  endpoints: backends.map((b) => ({ addresses: [b.ip], conditions: { ready: true }, nodeName: b.node.name })),
});

describe.skipIf(!isRoot)('a ClusterIP with backends on every node (needs root: namespaces, BPF)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['direct', 'vxlan'] as const) {
    it(`${mode}: a pod's connections to it reach backends on the other nodes and come back reverse-NATed`, { timeout: 120_000 }, async () => {
      const c = await startCluster(mode);
      const [n1] = c.nodes as [TestNode];
      const client = c.addPod(n1);
      const backends = c.nodes.map((n) => c.addPod(n));
      const prober = newProber();
      for (const b of backends) await prober.serveTcp(b.ns, b.ip, PORT);
      const synced = c.nodes.map((n) => n.daemon.nextSync(10_000));
      c.writeManifests([1, 2, 3], [service, slice(backends)]);
      for (const s of await Promise.all(synced)) expect(s).toMatchObject({ services: 1, backends: 3 });

      const frames = await captureOnUnderlay(c, n1.port, async () => {
        for (let i = 0; i < CONNECTIONS; i++) {
          const r = await prober.tcpExchange(client.ns, VIP, 80, `hello ${i}`, 5000);
          expect(r.reply, `connection ${i} to ${VIP}:80`).toMatch(new RegExp(`^pong hello ${i} \\(you are ${client.ip.replace(/\./g, '\\.')}:\\d+\\)$`));
        }
      });
      const reached = new Set(
        frames
          .map((f) => (mode === 'vxlan' ? f.vxlan?.inner : f))
          .filter((p) => p != null && p.src === client.ip && p.proto === 6 && p.dport === PORT)
          .map((p) => p!.dst),
      );
      expect([...reached].sort(), 'remote backends the connections crossed the underlay to').toEqual(backends.filter((b) => b.node !== n1).map((b) => b.ip).sort());
    });
  }
});
