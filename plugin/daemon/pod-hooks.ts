// The pods CNI ADD attached before the dataplane was there. ADD hooks a
// routed pod to the eBPF dataplane (from_pod on its host veth, its addresses
// registered for bpf_redirect_peer) only when the daemon has already pinned
// it; pods added before the daemon's first start, or while its pins were
// gone, would stay plainly routed. So once the daemon has loaded and pinned
// the dataplane, it reads the endpoint records ADD wrote (the CNI config's
// dataDir, `endpoints/<network>/`) and hooks every routed pod of that
// dataplane whose host veth is there and not hooked yet. Hooked pods are
// left as they are (a restarted daemon changes nothing); a record whose veth
// is gone (a pod deleted without DEL) is skipped: DEL or GC removes it.
//
// Each network's records are read and hooked holding its records lock
// exclusive (plugin/commands/records-lock.ts), which ADD, DEL and GC hold
// shared: an ADD that found no dataplane has written its record before the
// daemon reads them, and one that runs after sees the dataplane and hooks
// the pod itself.
import { readdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Handle } from '../../engine/handle.js';
import type { Link } from '../../engine/link.js';
import { LinkNotFoundError } from '../../engine/netlink/errors.js';
import { describePod, listEndpoints, type EndpointRecord } from '../commands/endpoints.js';
import { withRecordsLock } from '../commands/records-lock.js';
import { attachDataplane, dataplaneHook, registerPod } from '../network/dataplane.js';

export interface PodHookOptions {
  /** A handle in the node's namespace, where the host veths are. */
  node: Handle;
  /** Where the dataplane is pinned; records of pods of another pin root are left alone. */
  pinRoot: string;
  /** The CNI config's `dataDir`: the records are in `<cniDataDir>/endpoints/<network>/`. */
  cniDataDir: string;
  log: Logger;
}

export interface PodHookSummary {
  /** Pods hooked now (from_pod attached, or only their host routing entries written). */
  hooked: number;
  /** Pods found hooked already, left as they were. */
  alreadyHooked: number;
  /** Records whose host veth is gone. */
  vethGone: number;
  /** Pods that could not be hooked (each logged with its error). */
  failed: number;
}

/**
 * Hooks the routed pods recorded under `cniDataDir` to the dataplane pinned
 * at `pinRoot`. Never throws: what fails is logged, naming the pod (or the
 * folder), and the daemon goes on.
 */
export async function hookRecordedPods(o: PodHookOptions): Promise<PodHookSummary> {
  const summary: PodHookSummary = { hooked: 0, alreadyHooked: 0, vethGone: 0, failed: 0 };
  const root = join(o.cniDataDir, 'endpoints');
  let networks: string[];
  try {
    networks = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') o.log.error({ err: e, dir: root }, `cannot read the CNI's endpoint records in ${root}: recorded pods are not hooked`);
    networks = [];
  }
  for (const network of networks.sort()) {
    const dir = join(root, network);
    try {
      await withRecordsLock(dir, 'exclusive', async () => {
        for (const record of await listEndpoints(dir)) await hookOne(o, network, record, summary);
      });
    } catch (e) {
      summary.failed++;
      o.log.error({ err: e, dir }, `cannot hook the pods recorded in ${dir}: ${(e as Error).message}`);
    }
  }
  o.log.info({ ...summary, pinRoot: o.pinRoot, records: root }, `recorded pods: ${summary.hooked} hooked to the eBPF dataplane, ${summary.alreadyHooked} already hooked, ${summary.vethGone} with their host veth gone, ${summary.failed} failed`);
  return summary;
}

async function hookOne(o: PodHookOptions, network: string, record: EndpointRecord, summary: PodHookSummary): Promise<void> {
  if (record.mode !== 'routed' || typeof record.hostVeth !== 'string' || !Array.isArray(record.ips)) return;
  const pod = describePod(record.containerId, record.k8s ?? {});
  // Records from before ferry noted the pin root are taken to be this dataplane's pods.
  if (record.pinRoot !== undefined && resolve(record.pinRoot) !== resolve(o.pinRoot)) {
    o.log.debug({ network, containerId: record.containerId, pinRoot: record.pinRoot }, `pod ${pod} belongs to the dataplane at ${record.pinRoot}: left alone`);
    return;
  }
  const who = {
    network,
    containerId: record.containerId,
    hostVeth: record.hostVeth,
    ...(record.k8s?.podName !== undefined && { pod: `${record.k8s.podNamespace ?? 'default'}/${record.k8s.podName}` }),
  };
  try {
    let veth: Link;
    try {
      veth = await o.node.link.get(record.hostVeth);
    } catch (e) {
      if (!(e instanceof LinkNotFoundError)) throw e;
      summary.vethGone++;
      o.log.warn(who, `pod ${pod}: its host veth ${record.hostVeth} is gone (the pod went without a CNI DEL?): not hooked; DEL or GC removes its record`);
      return;
    }
    const addresses = record.ips.map((ip) => ip.split('/')[0]!);
    let mac = record.mac;
    const podMac = async () => (mac ??= await readPodMac(record));
    const state = await dataplaneHook(o.node, veth, { addresses, mac: podMac }, o.pinRoot);
    if (state.fromPod !== undefined && state.registered) {
      summary.alreadyHooked++;
      o.log.debug({ ...who, fromPod: state.fromPod }, `pod ${pod} is hooked already`);
      return;
    }
    // Both families' addresses: ferry_pod4 and ferry_pod6.
    const registered = addresses.filter((a) => isIP(a) !== 0);
    const interfaceOf = { mac: registered.length > 0 ? await podMac() : '', addresses };
    if (state.fromPod === undefined) {
      if (!(await attachDataplane(o.node, veth, interfaceOf, o.pinRoot))) throw new Error(`no dataplane is pinned at ${o.pinRoot}`);
    } else {
      registerPod(veth, interfaceOf, o.pinRoot);
    }
    summary.hooked++;
    const what = [...(state.fromPod === undefined ? ['from_pod attached'] : []), ...(registered.length > 0 ? [`${registered.join(', ')} registered for host routing`] : [])].join(', ');
    o.log.info({ ...who, registered }, `hooked pod ${pod} (host veth ${record.hostVeth}) to the eBPF dataplane: ${what}`);
  } catch (e) {
    summary.failed++;
    o.log.error({ ...who, err: e }, `could not hook pod ${pod} (host veth ${record.hostVeth}) to the eBPF dataplane: ${(e as Error).message}`);
  }
}

/**
 * The pod interface's MAC, read in the pod's namespace (records from before
 * ferry kept it). A namespace or interface that is gone fails with its errno
 * (NetnsError, LinkNotFoundError), naming it.
 */
async function readPodMac(record: EndpointRecord): Promise<string> {
  const pod = await Handle.open(record.netns);
  try {
    const link = await pod.link.get(record.ifname);
    if (link.mac === undefined) throw new Error(`${record.ifname} in netns ${record.netns} has no MAC`);
    return link.mac;
  } finally {
    pod.close();
  }
}
