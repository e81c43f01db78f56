// A request/response conversation with the kernel over one netlink socket
// that was opened inside a network namespace. Requests are serialized (the
// kernel allows one dump in flight per socket) and matched by sequence number.
import { native, type NativeError, type NativeNetlinkSocket } from '../native/binding.js';
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NETLINK_ROUTE } from './constants.js';
import { netlinkError, NetlinkError } from './errors.js';
import { decodeAck, decodeMessages, encodeMessage, type NetlinkMessage } from './message.js';

/** What a request is about, for error messages: `ip link add` + `veth0 in netns node-1`. */
export interface RequestLabel {
  op: string;
  object: string;
}

interface Pending {
  seq: number;
  label: RequestLabel;
  replies: NetlinkMessage[];
  resolve: (replies: NetlinkMessage[]) => void;
  reject: (error: Error) => void;
}

/** Which namespace a socket lives in: an open nsfs fd (or -1 for ferry's own) and a name for messages. */
export interface NamespaceRef {
  fd: number;
  name: string;
}

export class NetlinkConnection {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly socket: NativeNetlinkSocket,
    readonly ns: NamespaceRef,
  ) {}

  /** Opens a NETLINK_ROUTE socket inside `ns` (on a dedicated native thread). */
  static async open(ns: NamespaceRef): Promise<NetlinkConnection> {
    const fd = await native.netlinkOpen(ns.fd, ns.name, NETLINK_ROUTE);
    let conn: NetlinkConnection | undefined;
    const socket = new native.NetlinkSocket(
      fd,
      `netlink socket in netns ${ns.name}`,
      (datagrams) => conn?.receive(datagrams),
      (error) => conn?.fail(error),
    );
    conn = new NetlinkConnection(socket, ns);
    return conn;
  }

  /**
   * Sends one request and waits for its acknowledgement (or its dump).
   * Rejects with a NetlinkError carrying errno and the kernel's extended ack.
   */
  request(type: number, flags: number, body: Buffer, label: RequestLabel): Promise<NetlinkMessage[]> {
    const run = () => this.send(type, flags, body, label);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** A dump request: returns every reply message of `type`'s family. */
  dump(type: number, body: Buffer, label: RequestLabel): Promise<NetlinkMessage[]> {
    return this.request(type, NLM_F_DUMP, body, label);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    this.pending?.reject(new NetlinkError(this.pending.label.op, this.pending.label.object, 9 /* EBADF */, 'socket closed'));
    this.pending = undefined;
  }

  private send(type: number, flags: number, body: Buffer, label: RequestLabel): Promise<NetlinkMessage[]> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new NetlinkError(label.op, label.object, 9 /* EBADF */, 'netlink socket is closed'));
        return;
      }
      this.seq = (this.seq + 1) >>> 0;
      // A dump ends with NLMSG_DONE and gets no ack; everything else asks for one.
      const ack = (flags & NLM_F_DUMP) === NLM_F_DUMP ? 0 : NLM_F_ACK;
      this.pending = { seq: this.seq, label, replies: [], resolve, reject };
      try {
        this.socket.send(encodeMessage(type, flags | NLM_F_REQUEST | ack, this.seq, body));
      } catch (error) {
        this.pending = undefined;
        const e = error as NativeError;
        reject(netlinkError(label.op, label.object, e.errno ?? 5));
      }
    });
  }

  private receive(datagrams: Buffer[]): void {
    for (const datagram of datagrams) {
      for (const msg of decodeMessages(datagram)) this.handle(msg);
    }
  }

  private handle(msg: NetlinkMessage): void {
    const p = this.pending;
    if (p === undefined || msg.seq !== p.seq || msg.type === NLMSG_NOOP) return; // stale or unsolicited
    if (msg.type === NLMSG_ERROR || msg.type === NLMSG_DONE) {
      // Both end the exchange; both carry an int error (NLMSG_DONE: a dump that failed midway).
      this.pending = undefined;
      const ack = msg.type === NLMSG_ERROR ? decodeAck(msg) : { errno: -msg.payload.readInt32LE(0), extack: undefined };
      if (ack.errno !== 0) p.reject(netlinkError(p.label.op, p.label.object, ack.errno, ack.extack));
      else if ([msg, ...p.replies].some((m) => (m.flags & NLM_F_DUMP_INTR) !== 0)) {
        p.reject(netlinkError(p.label.op, p.label.object, 4 /* EINTR */, 'dump interrupted by a concurrent change; retry'));
      } else p.resolve(p.replies);
      return;
    }
    p.replies.push(msg);
  }

  private fail(error: NativeError): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(netlinkError(p.label.op, p.label.object, error.errno, error.message));
  }
}
