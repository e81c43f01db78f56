// struct nlmsghdr framing: building a request and splitting a datagram into
// messages, including the NLMSG_ERROR payload with its extended ack.
import { align4, Attrs } from './attributes.js';
import { NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS } from './constants.js';

export const NLMSG_HDRLEN = 16;

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Bytes after the header: the family struct (ifinfomsg, rtmsg…) and attributes. */
  payload: Buffer;
}

/** Builds one message: header + fixed family struct + attributes. */
export function encodeMessage(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const length = NLMSG_HDRLEN + body.length;
  const msg = Buffer.alloc(align4(length));
  msg.writeUInt32LE(length, 0);
  msg.writeUInt16LE(type, 4);
  msg.writeUInt16LE(flags, 6);
  msg.writeUInt32LE(seq, 8);
  msg.writeUInt32LE(0, 12); // the kernel fills in our port id
  body.copy(msg, NLMSG_HDRLEN);
  return msg;
}

/** Splits a received datagram into its messages. */
export function decodeMessages(datagram: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let pos = 0;
  while (pos + NLMSG_HDRLEN <= datagram.length) {
    const length = datagram.readUInt32LE(pos);
    if (length < NLMSG_HDRLEN || pos + length > datagram.length) break;
    out.push({
      type: datagram.readUInt16LE(pos + 4),
      flags: datagram.readUInt16LE(pos + 6),
      seq: datagram.readUInt32LE(pos + 8),
      pid: datagram.readUInt32LE(pos + 12),
      payload: datagram.subarray(pos + NLMSG_HDRLEN, pos + length),
    });
    pos += align4(length);
  }
  return out;
}

export interface NetlinkAck {
  /** Positive errno; 0 for a plain acknowledgement. */
  errno: number;
  /** The kernel's extended-ack text, when it gave one. */
  extack?: string;
  /** Byte offset of the offending attribute in our request, when given. */
  badAttrOffset?: number;
}

/** Decodes `struct nlmsgerr` (an int error + the echoed request header) and its TLVs. */
export function decodeAck(msg: NetlinkMessage): NetlinkAck {
  const error = msg.payload.readInt32LE(0);
  const ack: NetlinkAck = { errno: error === 0 ? 0 : -error }; // not -0 for a plain ack
  if ((msg.flags & NLM_F_ACK_TLVS) === 0) return ack;
  // With NLM_F_CAPPED only the request's header is echoed, otherwise the whole request.
  const echoedLength = (msg.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : msg.payload.readUInt32LE(4);
  const attrs = Attrs.parse(msg.payload, 4 + align4(echoedLength));
  const text = attrs.string(NLMSGERR_ATTR_MSG);
  if (text !== undefined && text !== '') ack.extack = text;
  const offs = attrs.u32(NLMSGERR_ATTR_OFFS);
  if (offs !== undefined) ack.badAttrOffset = offs;
  return ack;
}
