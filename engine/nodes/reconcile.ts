// Makes the node's namespace match a DesiredNodeNetwork, writing only the
// difference. What ferry owns is recognisable in the kernel itself, so a
// restarted daemon adopts it and removes what is no longer wanted without
// any state of its own: routes carry ferry's route protocol
// (ROUTE_PROTOCOL); neighbour and FDB entries are those on ferry's vxlan
// device; in direct mode that device must not exist at all.
//
// Order: FDB entries, then neighbours, then routes, so a route never points
// at a VTEP that cannot be resolved or reached. A write that fails is
// reported (naming its object, with the kernel's words) and the others still
// happen; the next apply retries it.
import type { Handle } from '../handle.js';
import type { Link } from '../link.js';
import { NotFoundError } from '../netlink/errors.js';
import type { Route, RouteSpec } from '../route.js';
import type { DesiredNodeNetwork } from './desired.js';
import type { NodeNetworkSettings } from './model.js';
import { ensureVxlanDevice, type VxlanDevice } from './vxlan-device.js';

/**
 * The rtm_protocol of ferry's node-network routes (`ip route show proto
 * 102`): not one of /etc/iproute2/rt_protos' reserved numbers, so no
 * routing daemon claims them.
 */
export const ROUTE_PROTOCOL = 102;

export interface ItemCounts {
  added: number;
  changed: number;
  removed: number;
}

export interface NodeNetworkReport {
  /** vxlan mode: the device, and whether it was created just now. */
  device?: VxlanDevice;
  /** direct mode: a vxlan device left by an earlier vxlan-mode run was deleted. */
  deviceRemoved: boolean;
  routes: ItemCounts;
  neighbors: ItemCounts;
  fdb: ItemCounts;
  /** Writes that failed, each naming what it was about. */
  errors: string[];
}

const counts = (): ItemCounts => ({ added: 0, changed: 0, removed: 0 });

/**
 * Applies `desired` in `h`'s namespace. Throws only when the vxlan device
 * itself cannot be made (nothing else can be programmed then); every other
 * failure is in the report.
 */
export async function applyNodeNetwork(h: Handle, settings: NodeNetworkSettings, desired: DesiredNodeNetwork): Promise<NodeNetworkReport> {
  const report: NodeNetworkReport = { deviceRemoved: false, routes: counts(), neighbors: counts(), fdb: counts(), errors: [] };
  const attempt: Attempt = async (write, tally, node) => {
    try {
      await write();
      tally();
    } catch (e) {
      // Deleting what is gone already is what a delete wants.
      if (e instanceof NotFoundError) tally();
      else report.errors.push(`${node === undefined ? '' : `node ${node}: `}${(e as Error).message}`);
    }
  };

  let device: Link | undefined;
  if (desired.mode === 'vxlan') {
    if (desired.localAddress === undefined) throw new Error('vxlan mode needs the node address (DesiredNodeNetwork.localAddress)');
    report.device = await ensureVxlanDevice(h, { ...settings.vxlan, localAddress: desired.localAddress, ...(desired.vtepCidr && { vtepCidr: desired.vtepCidr }) });
    device = report.device.link;
    await syncFdb(h, device, desired, report.fdb, attempt);
    await syncNeighbors(h, device, desired, report.neighbors, attempt);
  } else {
    const stale = await h.link.find(settings.vxlan.device);
    if (stale?.kind === 'vxlan') {
      await h.link.delete(stale);
      report.deviceRemoved = true;
    }
  }
  await syncRoutes(h, device, desired, report.routes, attempt);
  return report;
}

/** Runs one write, counts it on success, reports it (naming the remote node it is for) on failure. */
type Attempt = (write: () => Promise<unknown>, tally: () => void, node?: string) => Promise<void>;

async function syncFdb(h: Handle, dev: Link, desired: DesiredNodeNetwork, n: ItemCounts, attempt: Attempt): Promise<void> {
  const key = (mac: string, dst: string | undefined) => `${mac} ${dst}`;
  const wanted = new Set(desired.fdb.map((f) => key(f.mac, f.dst)));
  const present = (await h.fdb.list({ dev })).filter((e) => e.self && e.dst !== undefined);
  for (const e of present) {
    if (!wanted.has(key(e.mac, e.dst))) await attempt(() => h.fdb.delete({ dev, mac: e.mac, dst: e.dst!, self: true }), () => n.removed++);
  }
  const have = new Set(present.map((e) => key(e.mac, e.dst)));
  for (const f of desired.fdb) {
    if (!have.has(key(f.mac, f.dst))) await attempt(() => h.fdb.replace({ dev, mac: f.mac, dst: f.dst, self: true }), () => n.added++, f.node);
  }
}

async function syncNeighbors(h: Handle, dev: Link, desired: DesiredNodeNetwork, n: ItemCounts, attempt: Attempt): Promise<void> {
  const present = (await h.neigh.list({ dev, family: 4 })).filter((e) => e.state === 'permanent');
  for (const e of present) {
    if (!desired.neighbors.some((d) => d.ip === e.ip)) await attempt(() => h.neigh.delete({ dev, ip: e.ip }), () => n.removed++);
  }
  for (const d of desired.neighbors) {
    const e = present.find((p) => p.ip === d.ip);
    if (e?.mac === d.mac) continue;
    await attempt(() => h.neigh.replace({ dev, ip: d.ip, mac: d.mac, state: 'permanent' }), () => (e === undefined ? n.added++ : n.changed++), d.node);
  }
}

async function syncRoutes(h: Handle, dev: Link | undefined, desired: DesiredNodeNetwork, n: ItemCounts, attempt: Attempt): Promise<void> {
  const wanted: Array<RouteSpec & { node?: string }> = [
    ...desired.routes.map((r) => ({ dst: r.dst, gw: r.gw, ...(r.onlink && { onlink: true, dev: dev! }), protocol: ROUTE_PROTOCOL, node: r.node })),
    ...desired.blackholes.map((dst): RouteSpec => ({ dst, type: 'blackhole', protocol: ROUTE_PROTOCOL })),
  ];
  const present = [...(await h.route.list({ family: 4 })), ...(await h.route.list({ family: 6 }))].filter((r) => r.protocol === ROUTE_PROTOCOL);
  for (const r of present) {
    if (!wanted.some((w) => w.dst === r.dst)) await attempt(() => h.route.delete(r), () => n.removed++);
  }
  for (const { node, ...w } of wanted) {
    const r = present.find((p) => p.dst === w.dst);
    if (r !== undefined && sameRoute(r, w)) continue;
    await attempt(() => h.route.replace(w), () => (r === undefined ? n.added++ : n.changed++), node);
  }
}

function sameRoute(r: Route, w: RouteSpec): boolean {
  const dev = typeof w.dev === 'object' ? w.dev.index : w.dev;
  return r.type === (w.type ?? 'unicast') && r.gw === w.gw && (r.onlink ?? false) === (w.onlink ?? false) && (dev === undefined || r.dev === dev);
}
