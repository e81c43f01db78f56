// The node's vxlan device, as flannel's vxlan backend makes it: learning
// off (remote VTEPs are programmed, never learnt from traffic), tunnels from
// the node's address over the uplink that carries it, MTU 50 below the
// uplink's so an encapsulated full-size frame still fits, and the VTEP MAC
// every other node derives from this node's address (vtep.ts).
import type { Handle } from '../handle.js';
import type { Link } from '../link.js';
import { VXLAN_OVERHEAD, type VxlanSettings } from './model.js';
import { vtepMac } from './vtep.js';

export interface VxlanDeviceSpec extends VxlanSettings {
  /** This node's IPv4 address: the tunnels' source, found on the uplink. */
  localAddress: string;
  /** `ADDR/32` to put on the device (this node's VTEP address); other IPv4 addresses there are removed. */
  vtepCidr?: string;
}

export interface VxlanDevice {
  link: Link;
  /** `adopted` when an existing device matched (its MTU, MAC, state and address are still corrected). */
  action: 'created' | 'recreated' | 'adopted';
}

/**
 * Makes the device match `spec`. Its VNI, port, local address, learning and
 * underlay cannot be changed in place: a device that differs in one of
 * them is deleted and created again (its routes, neighbours and FDB entries
 * go with it; the caller programs them next).
 *
 * Equivalent to: `ip link add DEV mtu UPLINK-50 address MAC up type vxlan id
 * VNI dstport PORT local ADDR dev UPLINK nolearning; ip addr add VTEP/32 dev DEV`.
 */
export async function ensureVxlanDevice(h: Handle, spec: VxlanDeviceSpec): Promise<VxlanDevice> {
  const uplink = await uplinkOf(h, spec.localAddress);
  const mtu = uplink.mtu - VXLAN_OVERHEAD;
  const mac = vtepMac(spec.localAddress);
  let link = await h.link.find(spec.device);
  if (link !== undefined && link.kind !== 'vxlan') {
    throw new Error(`vxlan device "${spec.device}" in netns ${h.netns.name}: a ${link.kind ?? 'device'} of that name exists; ferry will not replace it`);
  }
  let action: VxlanDevice['action'];
  if (link === undefined || !sameTunnel(link, spec, uplink)) {
    action = link === undefined ? 'created' : 'recreated';
    if (link !== undefined) await h.link.delete(link);
    const { device: name, vni, port, localAddress: local } = spec;
    link = await h.link.add({ kind: 'vxlan', name, vni, port, local, learning: false, dev: uplink, mtu, mac, up: true });
  } else {
    action = 'adopted';
    if (link.mtu !== mtu) await h.link.setMtu(link, mtu);
    if (link.mac !== mac) await h.link.setMac(link, mac);
    if (!link.up) await h.link.setUp(link);
    if (link.mtu !== mtu || link.mac !== mac || !link.up) link = await h.link.get(link.index);
  }
  await ensureAddress(h, link, spec.vtepCidr);
  return { link, action };
}

function sameTunnel(link: Link, spec: VxlanDeviceSpec, uplink: Link): boolean {
  const v = link.vxlan;
  return v !== undefined && v.vni === spec.vni && v.port === spec.port && v.local === spec.localAddress && !v.learning && v.dev === uplink.index;
}

/** The link that carries `address`: the node's uplink. */
async function uplinkOf(h: Handle, address: string): Promise<Link> {
  const found = (await h.addr.list({ family: 4 })).find((a) => a.address === address);
  if (found === undefined) {
    throw new Error(`node address ${address} is on no link in netns ${h.netns.name}: the VXLAN tunnels leave from the uplink that carries it`);
  }
  return h.link.get(found.index);
}

async function ensureAddress(h: Handle, link: Link, cidr: string | undefined): Promise<void> {
  const present = await h.addr.list({ dev: link, family: 4 });
  for (const a of present) if (a.cidr !== cidr) await h.addr.delete(link, a.cidr);
  if (cidr !== undefined && !present.some((a) => a.cidr === cidr)) await h.addr.add(link, cidr);
}
