// One JSON record per attachment: the pod's Kubernetes identity (from
// CNI_ARGS), its addresses, MAC and host veth. The node daemon reads these
// (it hooks the recorded pods to the dataplane it loads), DEL and GC remove
// them; records-lock.ts guards them against both at once.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostPort, HostPortEntry } from '../../engine/dataplane/hostports.js';
import type { K8sArgs } from '../cni/index.js';

export interface EndpointRecord {
  containerId: string;
  ifname: string;
  netns: string;
  hostVeth: string;
  mode: 'routed' | 'bridge';
  ips: string[];
  /** The pod interface's MAC (records written before ferry kept it lack it: read it in `netns`). */
  mac?: string;
  /** Routed mode: the pin root of the eBPF dataplane the pod belongs to (the config's `ebpf.pinRoot` or its default). */
  pinRoot?: string;
  k8s: K8sArgs;
  createdAt: string;
  /** hostPorts served for it (portMappings): written before the maps are (without revNatIndex), then again as written. */
  hostPorts?: Array<HostPort | HostPortEntry>;
}

/** `default/web-a (container 0123abcd…)`, or the container alone without Kubernetes names. */
export function describePod(containerId: string, k8s: K8sArgs): string {
  const container = `container ${containerId.slice(0, 12)}`;
  return k8s.podName === undefined ? container : `${k8s.podNamespace ?? 'default'}/${k8s.podName} (${container})`;
}

const fileName = (containerId: string, ifname: string) => `${containerId}_${ifname}.json`;

/**
 * Written whole (temp file + rename), so a crash never leaves half a record.
 * Synchronous: one small local file, cheaper than pool round trips on the
 * CNI path.
 */
export async function writeEndpoint(dir: string, record: EndpointRecord): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, fileName(record.containerId, record.ifname));
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** The record of one attachment; undefined when there is none (or it cannot be read). */
export async function readEndpoint(dir: string, containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, fileName(containerId, ifname)), 'utf8')) as EndpointRecord;
  } catch {
    return undefined;
  }
}

export async function removeEndpoint(dir: string, containerId: string, ifname: string): Promise<void> {
  rmSync(join(dir, fileName(containerId, ifname)), { force: true });
}

export async function listEndpoints(dir: string): Promise<EndpointRecord[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: EndpointRecord[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    try {
      out.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as EndpointRecord);
    } catch {
      // A record removed meanwhile, or unreadable: GC and DEL go by name anyway.
    }
  }
  return out;
}
