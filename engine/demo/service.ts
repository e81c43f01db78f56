// The demo's Service: demo/web, ClusterIP 10.96.0.10:80 → port 8080 of the
// backend pods, written as Service and EndpointSlice manifests and
// programmed by the node daemon's own file source (ServiceSync watching the
// file), as `ferry daemon --services FILE` does. Connections from the client
// pod are then spread over the backends; editing the file to drop one
// backend reaches the maps by the watch, and new connections avoid it.
import { writeFileSync } from 'node:fs';
import pino from 'pino';
import { stringify } from 'yaml';
import { ServiceSync } from '../../plugin/daemon/services.js';
import { backendKey } from '../dataplane/desired.js';
import { ct4Key, ctEntry, lb4Key, lb4Service } from '../dataplane/layout.js';
import type { Dataplane } from '../dataplane/loader.js';
import { Reconciler } from '../dataplane/reconcile.js';
import type { Netns } from '../netns/netns.js';
import type { Prober } from '../probe/probe.js';

const CLUSTER_IP = '10.96.0.10';
const PORT = 80;

export interface ServicePod {
  label: string;
  netns: Netns;
  ips: string[];
}

function manifests(backends: ServicePod[], targetPort: number): string {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'demo' },
    spec: { clusterIP: CLUSTER_IP, ports: [{ name: 'http', protocol: 'TCP', port: PORT, targetPort }] },
  };
  const slice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-demo', namespace: 'demo', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: targetPort, protocol: 'TCP' }],
    endpoints: backends.map((b) => ({ addresses: [b.ips[0]!], conditions: { ready: true }, nodeName: 'demo', targetRef: { kind: 'Pod', name: b.label } })),
  };
  return `${stringify(service)}---\n${stringify(slice)}`;
}

/** Runs the Service part of the demo in `file`; `targetPort` is where the backends listen. */
export async function demoService(
  dp: Dataplane,
  prober: Prober,
  client: ServicePod,
  backends: ServicePod[],
  file: string,
  targetPort: number,
): Promise<{ ok: boolean; text: string }> {
  const lines: string[] = [];
  let ok = true;
  writeFileSync(file, manifests(backends, targetPort));
  const reconciler = await Reconciler.adopt(dp.maps);
  const sync = new ServiceSync({ path: file, nodeName: 'demo', reconciler, maps: dp.maps, log: pino({ level: 'silent' }) });
  try {
    sync.watch();
    const first = sync.syncNow();
    lines.push(`Service demo/web from ${file} (the daemon's file source, watched):`);
    lines.push(`  ClusterIP ${CLUSTER_IP}:${PORT} → ${backends.map((b) => `${b.label} ${b.ips[0]}:${targetPort}`).join(', ')}`);
    lines.push(`  synced in ${first.ms} ms: services +${first.writes.services.added}, backends +${first.writes.backends.added}, rev-NAT +${first.writes.revNat.added}`);

    const spread = async (attempts: number, tag: string) => {
      const byBackend = new Map<string, number>(backends.map((b) => [b.label, 0]));
      let failures = 0;
      for (let i = 0; i < attempts; i++) {
        try {
          const r = await prober.tcpExchange(client.netns, CLUSTER_IP, PORT, `${tag} ${i} from ${client.label}`);
          const label = backendOf(dp, reconciler, backends, targetPort, Number(r.peer.split(':')[1]));
          if (label !== undefined) byBackend.set(label, byBackend.get(label)! + 1);
        } catch {
          failures++;
        }
      }
      const text = [...byBackend].map(([label, n]) => `${label} ${n}`).join(', ');
      return { failures, byBackend, line: `TCP   ${client.label} → ${CLUSTER_IP}:${PORT} ×${attempts}: ${attempts - failures} answered, by conntrack ${text}${failures ? '  ← FAILED' : ''}` };
    };

    // With two backends, 20 connections reach each at least once but for odds of 2 in a million.
    const before = await spread(20, 'hello');
    lines.push(before.line);
    ok &&= before.failures === 0 && [...before.byBackend.values()].every((n) => n > 0);

    const [kept, dropped] = [backends.slice(0, -1), backends.at(-1)!];
    const t0 = performance.now();
    writeFileSync(file, manifests(kept, targetPort));
    const frontend = lb4Key.encode({ address: CLUSTER_IP, port: PORT, proto: 'tcp', slot: 0, scope: 'external' });
    const count = () => lb4Service.decode(dp.maps.services.lookup(frontend)!).count;
    while (count() !== kept.length && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    const reached = count() === kept.length;
    ok &&= reached;
    lines.push(`\nedited ${file}: ${dropped.label} left the EndpointSlice; ${reached ? `the watch brought it to the maps in ${(performance.now() - t0).toFixed(0)} ms` : 'NOT in the maps after 5 s  ← FAILED'}`);
    const after = await spread(10, 'again');
    lines.push(after.line);
    ok &&= after.failures === 0 && after.byBackend.get(dropped.label) === 0;
  } finally {
    await sync.close();
  }
  return { ok, text: lines.join('\n') };
}

/** The backend a client's connection (by its source port) was sent to, as conntrack recorded it. */
function backendOf(dp: Dataplane, reconciler: Reconciler, backends: ServicePod[], port: number, sport: number): string | undefined {
  for (const [k, v] of dp.maps.conntrack.entries()) {
    const key = ct4Key.decode(k);
    if (key.dir !== 'forward' || key.daddr !== CLUSTER_IP || key.sport !== sport) continue;
    const id = ctEntry.decode(v).backendId;
    return backends.find((b) => reconciler.backendId(backendKey({ address: b.ips[0]!, port, proto: 'tcp' })) === id)?.label;
  }
  return undefined;
}
