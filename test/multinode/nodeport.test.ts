// A NodePort reached from outside the cluster — a client namespace on the
// underlay — at node-1, in both node-network modes:
//  - externalTrafficPolicy Cluster, backends on node-2 and node-3 only:
//    node-1 DNATs and SNATs to its own address, forwards to the other
//    nodes (over the underlay, or through the tunnel), and undoes both on
//    the replies; both backends answer, over TCP and UDP, and see node-1 as
//    the client (the backends' nodes do not masquerade their answers to
//    node-1: it is a node of the cluster);
//  - externalTrafficPolicy Local, a backend on node-1 and one on node-2:
//    only node-1's own backend answers, and it sees the client's address.
// The servers name themselves in their answers: which backend answered.
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareClients } from '../support/ferry.js';
import { isRoot, makeNetns, run } from '../support/netns.js';
import { newProber, openNetns } from '../support/probing.js';
import { startCluster, type TestCluster, type TestNode, type TestPod } from './cluster.js';

const PORT = 8080;
const NODE_PORT = 30080;
const UDP_PORT = 5353;
const UDP_NODE_PORT = 30053;
const OUTSIDE_IP = '192.168.100.200';
const CONNECTIONS = 20; // two backends: each is picked at least once but for odds of 2 in a million

const service = (policy: 'Cluster' | 'Local') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    type: 'NodePort',
    clusterIP: '10.96.0.20',
    externalTrafficPolicy: policy,
    ports: [
      { name: 'http', protocol: 'TCP', port: 80, targetPort: PORT, nodePort: NODE_PORT },
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: UDP_PORT, nodePort: UDP_NODE_PORT },
    ],
  },
});
const slice = (backends: TestPod[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  ports: [
    { name: 'http', port: PORT, protocol: 'TCP' },
    { name: 'dns', port: UDP_PORT, protocol: 'UDP' },
  ],
  endpoints: backends.map((b) => ({ addresses: [b.ip], conditions: { ready: true }, nodeName: b.node.name })),
});

/** A client namespace on the underlay bridge, outside every node. */
function outsideClient(c: TestCluster) {
  const name = makeNetns('mn-out');
  run('ip', ['-n', c.underlay, 'link', 'add', 'ulout', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
  run('ip', ['-n', c.underlay, 'link', 'set', 'ulout', 'master', 'br0', 'up']);
  run('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
  run('ip', ['-n', name, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
  return openNetns(name);
}

/**
 * Serves the Service from `backends`, waits for every daemon's sync, then
 * from outside sends CONNECTIONS TCP connections and as many UDP flows to
 * node-1's NodePorts. Returns the client addresses the backends saw and the
 * backends that answered.
 */
async function fromOutside(c: TestCluster, policy: 'Cluster' | 'Local', backends: TestPod[], n1: TestNode) {
  const prober = newProber();
  for (const b of backends) {
    await prober.serveTcp(b.ns, b.ip, PORT, { identify: true });
    await prober.serveUdp(b.ns, b.ip, UDP_PORT);
  }
  const synced = c.nodes.map((n) => n.daemon.nextSync(10_000));
  c.writeManifests([1, 2, 3], [service(policy), slice(backends)]);
  await Promise.all(synced);
  const outside = outsideClient(c);
  const seen = new Set<string>();
  const answered = new Set<string>();
  const record = (reply: string) => {
    const m = /^pong \S+ from ([\d.]+) \(you are ([\d.]+):\d+\)$/.exec(reply);
    expect(m, reply).not.toBeNull();
    answered.add(m![1]!);
    seen.add(m![2]!);
  };
  for (let i = 0; i < CONNECTIONS; i++) {
    record((await prober.tcpExchange(outside, n1.ip, NODE_PORT, `c${i}`, 5000)).reply);
    record(await prober.udpExchange(outside, n1.ip, UDP_NODE_PORT, `q${i}`, 5000));
  }
  return { seen, answered };
}

describe.skipIf(!isRoot)('a NodePort from outside, backends across nodes (needs root: namespaces, BPF)', () => {
  beforeAll(() => prepareClients(), 600_000);

  for (const mode of ['direct', 'vxlan'] as const) {
    it(`${mode}: policy Cluster reaches the other nodes' backends, SNATed to node-1`, { timeout: 120_000 }, async () => {
      const c = await startCluster(mode);
      const [n1, n2, n3] = c.nodes as [TestNode, TestNode, TestNode];
      const backends = [c.addPod(n2), c.addPod(n3)];
      const { seen, answered } = await fromOutside(c, 'Cluster', backends, n1);
      expect(seen).toEqual(new Set([n1.ip]));
      expect(answered).toEqual(new Set(backends.map((b) => b.ip)));
    });

    it(`${mode}: policy Local answers from node-1's own backend only, keeping the client's address`, { timeout: 120_000 }, async () => {
      const c = await startCluster(mode);
      const [n1, n2] = c.nodes as [TestNode, TestNode];
      const local = c.addPod(n1);
      const { seen, answered } = await fromOutside(c, 'Local', [local, c.addPod(n2)], n1);
      expect(seen).toEqual(new Set([OUTSIDE_IP]));
      expect(answered).toEqual(new Set([local.ip]));
    });
  }
});
