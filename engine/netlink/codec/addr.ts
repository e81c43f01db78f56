// struct ifaddrmsg (8 bytes) and IFA_* attributes.
import { formatIp } from '../../validate.js';
import { Attrs } from '../attributes.js';
import * as C from '../constants.js';

export interface IfAddrMsg {
  family: number;
  prefixLen: number;
  flags?: number;
  scope?: number;
  index: number;
}

export function encodeIfAddrMsg(m: IfAddrMsg): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.prefixLen, 1);
  b.writeUInt8((m.flags ?? 0) & 0xff, 2);
  b.writeUInt8(m.scope ?? 0, 3);
  b.writeUInt32LE(m.index, 4);
  return b;
}

/** An interface address (`ip addr show`). */
export interface Address {
  /** ifindex of the link it is on. */
  index: number;
  family: 4 | 6;
  /** `10.0.0.1` */
  address: string;
  prefixLen: number;
  /** `10.0.0.1/24` */
  cidr: string;
  /** For point-to-point addresses: the peer (IFA_ADDRESS when it differs from IFA_LOCAL). */
  peer?: string;
  scope: number;
  /** IFA_F_* (32-bit, from IFA_FLAGS when present). */
  flags: number;
  label?: string;
}

export function decodeAddress(payload: Buffer): Address {
  const family = payload.readUInt8(0) === C.AF_INET ? 4 : 6;
  const prefixLen = payload.readUInt8(1);
  const attrs = Attrs.parse(payload, 8);
  // IPv4: IFA_LOCAL is the interface's own address, IFA_ADDRESS the peer (same unless p2p).
  // IPv6: only IFA_ADDRESS, unless a peer was configured.
  const local = formatIp(attrs.get(C.IFA_LOCAL));
  const address = formatIp(attrs.get(C.IFA_ADDRESS));
  const own = local ?? address ?? '';
  const a: Address = {
    index: payload.readUInt32LE(4),
    family,
    address: own,
    prefixLen,
    cidr: `${own}/${prefixLen}`,
    scope: payload.readUInt8(3),
    flags: attrs.u32(C.IFA_FLAGS) ?? payload.readUInt8(2),
  };
  if (local !== undefined && address !== undefined && local !== address) a.peer = address;
  const label = attrs.string(C.IFA_LABEL);
  if (label !== undefined) a.label = label;
  return a;
}
