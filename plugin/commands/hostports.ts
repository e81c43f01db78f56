// The portMappings capability, served by ferry's eBPF dataplane in place of
// the portmap plugin's iptables chains (engine/dataplane/hostports.ts): ADD
// turns a pod's mappings into hostPort frontends and writes them into the
// pinned maps; DEL and GC remove what the attachment's endpoint record says
// ADD wrote; CHECK compares the record, the request and the maps.
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import {
  addHostPort,
  checkHostPort,
  frontendName,
  HostPortConflictError,
  removeHostPort,
  type HostPort,
  type HostPortEntry,
  type HostPortMaps,
} from '../../engine/dataplane/hostports.js';
import { MAPS } from '../../engine/dataplane/layout.js';
import { openPinnedMaps } from '../../engine/dataplane/pinned-maps.js';
import type { Handle } from '../../engine/handle.js';
import { CniCode, CniError, type K8sArgs, type NetConf } from '../cni/index.js';
import { describePod, listEndpoints, writeEndpoint, type EndpointRecord } from './endpoints.js';
import { FerryCode } from './errors.js';

export type PortMapping = NonNullable<NonNullable<NetConf['runtimeConfig']>['portMappings']>[number];

/** The hostPorts of a pod's mappings, and what of them is not served. */
export interface HostPortPlan {
  hostPorts: HostPort[];
  /** A dual-stack pod's mappings are served over IPv4 only: this says so, naming the pod (ADD logs it). */
  warning?: string;
}

/**
 * The hostPorts `mappings` make for a pod with addresses `ips` (CIDRs of
 * the result), to its IPv4 address: a mapping with a hostIP at that
 * address; one without at every global IPv4 address the node has now, as
 * portmap's `--dst-type LOCAL` would match them (addresses the node gets
 * later are not served until the pod is added again). ferry's dataplane
 * has no IPv6 hostPorts: a pod without an IPv4 address is refused (code
 * 2), a dual-stack pod's mappings are served over IPv4 only (`warning`).
 * `pod`: its container id and CNI_ARGS, for the messages.
 */
export async function hostPortsFor(
  node: Handle,
  mappings: readonly PortMapping[],
  ips: readonly string[],
  pod: { containerId: string; k8s: K8sArgs },
): Promise<HostPortPlan> {
  if (mappings.length === 0) return { hostPorts: [] };
  const addresses = ips.map((c) => c.split('/')[0]!);
  const podAddress = addresses.find((ip) => isIPv4(ip));
  const v6 = addresses.filter((ip) => !isIPv4(ip));
  if (podAddress === undefined) {
    throw new CniError(
      CniCode.UnsupportedField,
      `runtimeConfig.portMappings of pod ${describePod(pod.containerId, pod.k8s)}: ferry's dataplane serves IPv4 hostPorts only, and the pod has no IPv4 address (${v6.join(', ') || 'none'})`,
    );
  }
  const wildcard = mappings.some((m) => m.hostIP === undefined);
  const nodeAddresses = wildcard ? [...new Set((await node.addr.list({ family: 4 })).filter((a) => a.scope === 0).map((a) => a.address))] : [];
  const hostPorts = mappings.flatMap((m): HostPort[] => {
    // checkSupported() refused SCTP and IPv6 host addresses.
    const proto = m.protocol === 'udp' ? 'udp' : 'tcp';
    return (m.hostIP === undefined ? nodeAddresses : [m.hostIP]).map((address) => ({ address, port: m.hostPort, proto, podAddress, podPort: m.containerPort }));
  });
  if (v6.length === 0) return { hostPorts };
  const ports = mappings.map((m) => `${m.hostPort}/${m.protocol}`).join(', ');
  return {
    hostPorts,
    warning: `hostPorts ${ports} of pod ${describePod(pod.containerId, pod.k8s)} are served over IPv4 only (to ${podAddress}): ferry's dataplane has no IPv6 hostPorts, so ${v6.join(', ')} ${v6.length > 1 ? 'get' : 'gets'} none`,
  };
}

/**
 * ADD's last step: writes the attachment's record, and with hostPorts,
 * writes them into the maps and records them as written. They are recorded
 * before they are written too, so that DEL finds them should ADD be cut short.
 */
export async function recordWithHostPorts(dir: string, record: EndpointRecord, hostPorts: readonly HostPort[], pinRoot: string): Promise<void> {
  await writeEndpoint(dir, hostPorts.length > 0 ? { ...record, hostPorts: [...hostPorts] } : record);
  if (hostPorts.length === 0) return;
  const written = addHostPorts(pinRoot, hostPorts, describePod(record.containerId, record.k8s), await listEndpoints(dir));
  await writeEndpoint(dir, { ...record, hostPorts: written });
}

/**
 * Writes `hostPorts` of the pod `pod` (describePod()); returns them as
 * written. A frontend another pod or a Service holds is code 103 naming both
 * (`records`: this network's endpoint records, to find the holder's name by
 * its address), with this call's writes undone. No dataplane pinned: code 11,
 * as the daemon may be about to load it.
 */
function addHostPorts(pinRoot: string, hostPorts: readonly HostPort[], pod: string, records: readonly EndpointRecord[]): HostPortEntry[] {
  const maps = openMaps(pinRoot);
  if (maps === undefined) {
    throw new CniError(CniCode.TryAgainLater, `runtimeConfig.portMappings: hostPorts are served by ferry's eBPF dataplane, and none is pinned at ${pinRoot} yet`);
  }
  const written: HostPortEntry[] = [];
  try {
    for (const hp of hostPorts) written.push(addHostPort(maps, hp));
    return written;
  } catch (e) {
    for (const entry of written) removeHostPort(maps, entry);
    if (!(e instanceof HostPortConflictError)) throw e;
    const what = `hostPort ${frontendName(e.hostPort)} for pod ${pod} (${e.hostPort.podAddress}:${e.hostPort.podPort})`;
    if (e.holder.kind === 'service') throw new CniError(FerryCode.HostPortInUse, `${what}: it is a Service's frontend (rev-NAT index ${e.holder.revNatIndex})`, undefined, { cause: e });
    const { podAddress, podPort } = e.holder;
    const holder = records.find((r) => r.ips.some((ip) => ip.split('/')[0] === podAddress));
    const name = holder === undefined ? 'a pod' : `pod ${describePod(holder.containerId, holder.k8s)}`;
    throw new CniError(FerryCode.HostPortInUse, `${what}: already held by ${name} (${podAddress}:${podPort})`, undefined, { cause: e });
  } finally {
    maps.close();
  }
}

/** Removes what addHostPorts() wrote (or began to); with no dataplane pinned, they went with it. */
export function removeHostPorts(pinRoot: string, hostPorts: ReadonlyArray<HostPort | HostPortEntry>): void {
  if (hostPorts.length === 0) return;
  const maps = openMaps(pinRoot);
  if (maps === undefined) return;
  try {
    for (const hp of hostPorts) removeHostPort(maps, hp);
  } finally {
    maps.close();
  }
}

/**
 * CHECK: every mapping of the request served as the record says ADD wrote
 * it, and the maps still hold that; each difference named.
 */
export function checkHostPorts(pinRoot: string, mappings: readonly PortMapping[], record: EndpointRecord | undefined): string[] {
  const entries = record?.hostPorts ?? [];
  const problems: string[] = [];
  for (const m of mappings) {
    const served = entries.some((e) => e.port === m.hostPort && e.proto === m.protocol && e.podPort === m.containerPort && (m.hostIP === undefined || e.address === m.hostIP));
    if (!served) problems.push(`portMapping ${m.hostIP ?? '*'}:${m.hostPort}/${m.protocol} → ${m.containerPort} was not written by ADD`);
  }
  if (entries.length === 0) return problems;
  const maps = openMaps(pinRoot);
  if (maps === undefined) return [...problems, `no ferry dataplane is pinned at ${pinRoot}: its ${entries.length} hostPort(s) are not served`];
  try {
    for (const entry of entries) {
      if (!('revNatIndex' in entry)) problems.push(`hostPort ${frontendName(entry)}: ADD did not finish writing it`);
      else problems.push(...checkHostPort(maps, entry));
    }
  } finally {
    maps.close();
  }
  return problems;
}

/** The pinned maps hostPorts live in; undefined when no dataplane is pinned there. */
function openMaps(pinRoot: string): (HostPortMaps & { close(): void }) | undefined {
  if (!existsSync(join(pinRoot, MAPS.services))) return undefined;
  return openPinnedMaps(pinRoot, ['services', 'backends', 'revNat']);
}
