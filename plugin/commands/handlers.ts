// ferry's CNI verbs. runCni (plugin/cni) has already parsed and checked the
// environment and the config; these do the networking, and each undoes its
// own partial work when it fails.
import type { HostPort } from '../../engine/dataplane/hostports.js';
import type { Handle } from '../../engine/handle.js';
import type { AddRequest, CheckRequest, CniHandlers, DelRequest, GcRequest, Result, StatusRequest } from '../cni/index.js';
import { appendResult, CniCode, CniError } from '../cni/index.js';
import { allocate, availability, describeRangeSet, gc, release, resolveRanges, type Allocation } from '../ipam/index.js';
import { attachBridge, type BridgeOptions } from '../network/bridge.js';
import { checkAttachment } from '../network/check.js';
import { attachDataplane, detachDataplane } from '../network/dataplane.js';
import { detach } from '../network/detach.js';
import { podMtu } from '../network/mtu.js';
import { attachRouted } from '../network/routed.js';
import type { Attached, AttachSpec } from '../network/types.js';
import { endpointDir, hostVethFor, ipamStore, pinRootOf, withNode, type PluginContext } from './context.js';
import { listEndpoints, readEndpoint, removeEndpoint, type EndpointRecord } from './endpoints.js';
import { FerryCode, ipamToCni, networkToCni } from './errors.js';
import { checkHostPorts, hostPortsFor, recordWithHostPorts, removeHostPorts } from './hostports.js';
import { withPod } from './netns.js';
import { withRecordsLock } from './records-lock.js';

/**
 * ADD, DEL and GC hold the network's records lock shared (records-lock.ts):
 * the node daemon, hooking recorded pods to the dataplane it has just
 * pinned, holds it exclusive and so never races one of them.
 */
export function createHandlers(ctx: PluginContext): CniHandlers {
  return {
    add: (req) => withRecordsLock(endpointDir(req.conf), 'shared', () => withNode(ctx, (node) => add(ctx, node, req))),
    del: (req) => withRecordsLock(endpointDir(req.conf), 'shared', () => withNode(ctx, (node) => del(node, req)), { create: false }),
    check: (req) => withNode(ctx, (node) => check(node, req)),
    status: (req) => status(req),
    gc: (req) => withRecordsLock(endpointDir(req.conf), 'shared', () => withNode(ctx, (node) => collect(node, req)), { create: false }),
  };
}

function bridgeOptions(conf: AddRequest['conf']): BridgeOptions {
  return {
    bridge: conf.bridge,
    isGateway: conf.isGateway ?? false,
    isDefaultGateway: conf.isDefaultGateway ?? false,
    hairpinMode: conf.hairpinMode ?? false,
    promiscMode: conf.promiscMode ?? false,
  };
}

async function add(ctx: PluginContext, node: Handle, req: AddRequest): Promise<Result> {
  const { conf, containerId, ifname, log } = req;
  const store = ipamStore(conf);
  const hostVeth = hostVethFor(conf, containerId, ifname);
  const pinRoot = pinRootOf(conf);
  const mtu = await podMtu(node, conf);
  return withPod(req.netns, async (pod) => {
    let allocations: Allocation[];
    try {
      allocations = await allocate(store, conf.ipam, { containerId, ifname, requested: conf.runtimeConfig?.ips ?? [] });
    } catch (e) {
      throw ipamToCni(e);
    }
    log.debug({ allocations }, 'addresses allocated');
    let hostPorts: HostPort[] = [];
    try {
      // Leftovers of an earlier, interrupted ADD of this attachment go first.
      if (await detach(node, hostVeth)) log.warn({ hostVeth }, 'replaced a host veth left by an earlier ADD');
      removeHostPorts(pinRoot, (await readEndpoint(endpointDir(conf), containerId, ifname))?.hostPorts ?? []);
      const spec: AttachSpec = {
        containerId,
        ifname,
        hostVeth,
        mtu,
        ...(conf.runtimeConfig?.mac ? { mac: conf.runtimeConfig.mac } : {}),
        addresses: allocations.map((a) => ({ address: a.address, ...(a.gateway ? { gateway: a.gateway } : {}) })),
        routes: conf.ipam.routes ?? [],
      };
      const attached = conf.mode === 'bridge' ? await attachBridge(node, pod, spec, bridgeOptions(conf)) : await attachRouted(node, pod, spec);
      const ips = attached.ips.map((i) => i.address);
      const podMac = attached.interfaces.find((i) => i.sandbox !== undefined)?.mac;
      if (conf.mode === 'routed') {
        const hooked = await attachDataplane(node, await node.link.get(hostVeth), { mac: podMac!, addresses: ips.map((ip) => ip.split('/')[0]!) }, pinRoot);
        if (hooked) log.debug({ hostVeth, ebpf: true }, 'eBPF dataplane attached');
        // Asked for by the config but not there (yet): the pod works, without Services, until the daemon
        // loads the dataplane and hooks the pods it finds recorded (plugin/daemon/pod-hooks.ts).
        else
          log[conf.ebpf === undefined ? 'debug' : 'warn'](
            { hostVeth, pinRoot },
            `no eBPF dataplane pinned at ${pinRoot}: the pod is plainly routed, without Services, until the ferry daemon starts: it loads the dataplane and hooks the pods recorded in ${endpointDir(conf)}`,
          );
      }
      await enableForwarding(ctx, node, allocations);
      const plan = await hostPortsFor(node, conf.runtimeConfig?.portMappings ?? [], ips, { containerId, k8s: req.k8s });
      hostPorts = plan.hostPorts;
      if (plan.warning !== undefined) log.warn({ k8s: req.k8s }, plan.warning);
      const record: EndpointRecord = {
        containerId,
        ifname,
        netns: req.netns,
        hostVeth,
        mode: conf.mode,
        ips,
        ...(podMac !== undefined && { mac: podMac }),
        ...(conf.mode === 'routed' && { pinRoot }),
        k8s: req.k8s,
        createdAt: new Date().toISOString(),
      };
      await recordWithHostPorts(endpointDir(conf), record, hostPorts, pinRoot);
      log.info({ hostVeth, ips, hostPorts: hostPorts.length, k8s: req.k8s }, 'pod attached');
      return appendResult(req.prevResult, toResult(attached, conf));
    } catch (e) {
      try {
        removeHostPorts(pinRoot, hostPorts);
      } catch (err) {
        log.error({ err, hostPorts }, 'rollback: could not remove hostPorts');
      }
      await detach(node, hostVeth).catch((err) => log.error({ err, hostVeth }, 'rollback: could not delete the host veth'));
      await detachDataplane(node, pinRoot, hostVeth).catch((err) => log.error({ err, hostVeth }, 'rollback: could not unhook the eBPF dataplane'));
      // A repeated ADD keeps what the attachment already held; only this call's reservations go.
      const mine = allocations.filter((a) => !a.reused).map((a) => a.ip);
      await store
        .withLock(() => Promise.all(mine.map((ip) => store.release(ip))))
        .catch((err) => log.error({ err, ips: mine }, 'rollback: could not release addresses'));
      await removeEndpoint(endpointDir(conf), containerId, ifname).catch(() => undefined);
      throw networkToCni(e);
    }
  });
}

/**
 * Pods are routed through the node: it must forward (the bridge plugin's
 * isGateway does the same). Written once per family and process.
 */
async function enableForwarding(ctx: PluginContext, node: Handle, allocations: Allocation[]): Promise<void> {
  const done = (ctx.forwarding ??= new Set());
  for (const family of new Set(allocations.map((a) => a.family))) {
    if (done.has(family)) continue;
    await node.netns.sysctlSet(family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', 1);
    done.add(family);
  }
}

function toResult(attached: Attached, conf: AddRequest['conf']): Result {
  const rtDns = conf.runtimeConfig?.dns;
  return {
    interfaces: attached.interfaces.map((i) => ({ ...i })),
    ips: attached.ips.map((i) => ({ address: i.address, ...(i.gateway ? { gateway: i.gateway } : {}), interface: i.interface })),
    routes: attached.routes.map((r) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : {}) })),
    dns: {
      ...(conf.dns ?? {}),
      ...(rtDns?.servers ? { nameservers: rtDns.servers } : {}),
      ...(rtDns?.searches ? { search: rtDns.searches } : {}),
      ...(rtDns?.options ? { options: rtDns.options } : {}),
    },
  };
}

/** DEL succeeds on whatever is already gone: netns, veth, addresses, record. */
async function del(node: Handle, req: DelRequest): Promise<void> {
  const { conf, containerId, ifname, log } = req;
  const hostVeth = hostVethFor(conf, containerId, ifname);
  const record = await readEndpoint(endpointDir(conf), containerId, ifname);
  removeHostPorts(pinRootOf(conf), record?.hostPorts ?? []);
  const removed = await detach(node, hostVeth);
  await detachDataplane(node, pinRootOf(conf), hostVeth);
  const released = await release(ipamStore(conf), containerId, ifname);
  await removeEndpoint(endpointDir(conf), containerId, ifname);
  log.info({ hostVeth, removed, released, hostPorts: record?.hostPorts?.length ?? 0 }, 'pod detached');
}

async function check(node: Handle, req: CheckRequest): Promise<void> {
  const { conf, containerId, ifname } = req;
  const hostVeth = hostVethFor(conf, containerId, ifname);
  const expected = fromResult(req.prevResult, ifname);
  const problems = await withPod(req.netns, (pod) =>
    checkAttachment(node, pod, { ifname, hostVeth, mode: conf.mode, bridge: conf.bridge }, expected),
  );
  const held = new Set(await ipamStore(conf).findByOwner(containerId, ifname));
  for (const ip of expected.ips) {
    const bare = ip.address.split('/')[0]!;
    if (!held.has(bare)) problems.push(`IPAM holds no record of ${bare} for ${containerId}/${ifname}`);
  }
  const mappings = conf.runtimeConfig?.portMappings ?? [];
  const record = await readEndpoint(endpointDir(conf), containerId, ifname);
  if (mappings.length > 0 || record?.hostPorts !== undefined) problems.push(...checkHostPorts(pinRootOf(conf), mappings, record));
  if (problems.length > 0) throw new CniError(FerryCode.CheckFailed, `CHECK ${containerId}/${ifname}: ${problems.join('; ')}`);
}

/** The parts of a (possibly chained) prevResult that belong to ferry's pod interface. */
function fromResult(result: Result, ifname: string): Attached {
  const podIndex = result.interfaces.findIndex((i) => i.name === ifname && i.sandbox !== undefined);
  return {
    interfaces: result.interfaces.map((i) => ({ name: i.name, mac: i.mac ?? '', ...(i.sandbox ? { sandbox: i.sandbox } : {}) })),
    ips: result.ips
      .filter((i) => i.interface === undefined || i.interface === podIndex)
      .map((i) => ({ address: i.address, ...(i.gateway ? { gateway: i.gateway } : {}), interface: podIndex })),
    routes: result.routes.map((r) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : {}) })),
  };
}

/** STATUS: ready for ADD unless some range set has no free address (code 50). */
async function status(req: StatusRequest): Promise<void> {
  const { conf } = req;
  const sets = await availability(ipamStore(conf), conf.ipam).catch((e) => {
    throw ipamToCni(e);
  });
  const resolved = resolveRanges(conf.ipam);
  const full = sets.filter((s) => s.free === 0);
  if (full.length > 0) {
    const which = full.map((s) => `range set ${s.rangeSetIndex} (${describeRangeSet(resolved[s.rangeSetIndex]!)}): ${s.used}/${s.total} used`);
    throw new CniError(CniCode.PluginNotAvailable, `no free address: ${which.join('; ')}`);
  }
}

/**
 * GC: every attachment of this network not in cni.dev/valid-attachments goes
 * — its host veth, address records and endpoint record. Which attachments
 * the network has comes from its own records (IPAM reserves before any veth
 * exists and releases after it is gone, so every ferry veth has them): a
 * host veth's name does not say its network, and another ferry network's
 * pods on this node are not this GC's to remove.
 */
async function collect(node: Handle, req: GcRequest): Promise<void> {
  const { conf, log } = req;
  const valid = req.validAttachments.map((a) => ({ containerId: a.containerID, ifname: a.ifname }));
  const isValid = (o: { containerId: string; ifname: string }) => valid.some((v) => v.containerId === o.containerId && v.ifname === o.ifname);
  const store = ipamStore(conf);
  const dir = endpointDir(conf);
  const endpoints = (await listEndpoints(dir)).filter((ep) => !isValid(ep));
  const vethNames = new Set(endpoints.map((ep) => ep.hostVeth ?? hostVethFor(conf, ep.containerId, ep.ifname)));
  // Records written without an ifname (old host-local) name no veth.
  for (const r of await store.list()) if (r.ifname !== '' && !isValid(r)) vethNames.add(hostVethFor(conf, r.containerId, r.ifname));
  // Veths first: a GC cut short leaves the records that name what is left.
  const vethsRemoved: string[] = [];
  for (const ep of endpoints) removeHostPorts(pinRootOf(conf), ep.hostPorts ?? []);
  for (const name of vethNames) {
    if (await detach(node, name)) vethsRemoved.push(name);
    await detachDataplane(node, pinRootOf(conf), name);
  }
  const released = await gc(store, valid);
  for (const ep of endpoints) await removeEndpoint(dir, ep.containerId, ep.ifname);
  log.info({ released: released.map((r) => r.ip), vethsRemoved, endpointsRemoved: endpoints.length }, 'garbage collected');
}
