// The demo's Service: demo/web, dual stack, ClusterIPs 10.96.0.10 and
// fd00:10:96::10, port 80 → port 8080 of the backend pods, written as a
// Service and one EndpointSlice per family, and programmed by the node
// daemon's own file source (ServiceSync watching the file), as `ferry daemon
// --services FILE` does. Connections from the client pod to either address
// are then spread over the backends; editing the file to drop one backend
// reaches the maps by the watch, and new connections avoid it.
import { writeFileSync } from 'node:fs';
import pino from 'pino';
import { stringify } from 'yaml';
import { ServiceSync } from '../../plugin/daemon/services.js';
import { backendKey } from '../dataplane/desired.js';
import { addressPort, ct4Key, ct6Entry, ct6Key, ctEntry, familyOf, lb4Key, lb4Service, lb6Key, type Family } from '../dataplane/layout.js';
import type { Dataplane } from '../dataplane/loader.js';
import { Reconciler } from '../dataplane/reconcile.js';
import type { Netns } from '../netns/netns.js';
import type { Prober } from '../probe/probe.js';

/** The Service's ClusterIPs, by family: the pods' addresses (ServicePod.ips) are in the same order. */
const CLUSTER_IPS = ['10.96.0.10', 'fd00:10:96::10'] as const;
const PORT = 80;


export interface ServicePod {
  label: string;
  netns: Netns;
  /** IPv4 first, then IPv6. */
  ips: string[];
}

function manifests(backends: ServicePod[], targetPort: number): string {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'demo' },
    spec: {
      clusterIP: CLUSTER_IPS[0],
      clusterIPs: [...CLUSTER_IPS],
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'RequireDualStack',
      ports: [{ name: 'http', protocol: 'TCP', port: PORT, targetPort }],
    },
  };
  const slice = (family: Family) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `web-ipv${family}`, namespace: 'demo', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: `IPv${family}`,
    ports: [{ name: 'http', port: targetPort, protocol: 'TCP' }],
    endpoints: backends.map((b) => ({ addresses: [b.ips[family === 4 ? 0 : 1]!], conditions: { ready: true }, nodeName: 'demo', targetRef: { kind: 'Pod', name: b.label } })),
  });
  return [service, slice(4), slice(6)].map((o) => stringify(o)).join('---\n');
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
    for (const [i, vip] of CLUSTER_IPS.entries()) {
      lines.push(`  ClusterIP ${addressPort(vip, PORT)} → ${backends.map((b) => `${b.label} ${addressPort(b.ips[i]!, targetPort)}`).join(', ')}`);
    }
    lines.push(`  synced in ${first.ms} ms: services +${first.writes.services.added}, backends +${first.writes.backends.added}, rev-NAT +${first.writes.revNat.added}`);

    const spread = async (vip: string, attempts: number, tag: string) => {
      const byBackend = new Map<string, number>(backends.map((b) => [b.label, 0]));
      let failures = 0;
      for (let i = 0; i < attempts; i++) {
        try {
          const r = await prober.tcpExchange(client.netns, vip, PORT, `${tag} ${i} from ${client.label}`);
          const label = backendOf(dp, reconciler, backends, vip, targetPort, Number(r.peer.slice(r.peer.lastIndexOf(':') + 1)));
          if (label !== undefined) byBackend.set(label, byBackend.get(label)! + 1);
        } catch {
          failures++;
        }
      }
      const text = [...byBackend].map(([label, n]) => `${label} ${n}`).join(', ');
      return { failures, byBackend, line: `TCP   ${client.label} → ${addressPort(vip, PORT)} ×${attempts}: ${attempts - failures} answered, by conntrack ${text}${failures ? '  ← FAILED' : ''}` };
    };

    // With two backends, 20 connections reach each at least once but for odds of 2 in a million.
    for (const vip of CLUSTER_IPS) {
      const before = await spread(vip, 20, 'hello');
      lines.push(before.line);
      ok &&= before.failures === 0 && [...before.byBackend.values()].every((n) => n > 0);
    }

    const [kept, dropped] = [backends.slice(0, -1), backends.at(-1)!];
    const t0 = performance.now();
    writeFileSync(file, manifests(kept, targetPort));
    const frontends = CLUSTER_IPS.map((vip) => {
      const key = { address: vip, port: PORT, proto: 'tcp', slot: 0, scope: 'external' } as const;
      return familyOf(vip) === 4 ? { map: dp.maps.services, key: lb4Key.encode(key) } : { map: dp.maps.services6, key: lb6Key.encode(key) };
    });
    const counted = () => frontends.every(({ map, key }) => lb4Service.decode(map.lookup(key)!).count === kept.length);
    while (!counted() && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    const reached = counted();
    ok &&= reached;
    lines.push(`\nedited ${file}: ${dropped.label} left both EndpointSlices; ${reached ? `the watch brought it to the maps in ${(performance.now() - t0).toFixed(0)} ms` : 'NOT in the maps after 5 s  ← FAILED'}`);
    for (const vip of CLUSTER_IPS) {
      const after = await spread(vip, 10, 'again');
      lines.push(after.line);
      ok &&= after.failures === 0 && after.byBackend.get(dropped.label) === 0;
    }
  } finally {
    await sync.close();
  }
  return { ok, text: lines.join('\n') };
}

/** The backend a client's connection to `vip` (by its source port) was sent to, as conntrack recorded it. */
function backendOf(dp: Dataplane, reconciler: Reconciler, backends: ServicePod[], vip: string, port: number, sport: number): string | undefined {
  const family = familyOf(vip);
  const [map, keyCodec, entryCodec] = family === 4 ? [dp.maps.conntrack, ct4Key, ctEntry] : [dp.maps.conntrack6, ct6Key, ct6Entry];
  for (const [k, v] of map.entries()) {
    const key = keyCodec.decode(k);
    if (key.dir !== 'forward' || key.daddr !== vip || key.sport !== sport) continue;
    const id = entryCodec.decode(v).backendId;
    return backends.find((b) => reconciler.backendId(backendKey({ address: b.ips[family === 4 ? 0 : 1]!, port, proto: 'tcp' })) === id)?.label;
  }
  return undefined;
}
