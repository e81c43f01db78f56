// ICMP echo from inside a network namespace through a raw socket (the
// raw-socket package, not the ping binary). raw-socket polls on libuv's
// default loop, so the socket must be made on the main thread: it is created
// inside a bracketed namespace switch (native.runInNetnsSync) and is bound to
// that namespace from then on; the main thread is back before the call returns.
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import raw, { type Socket } from 'raw-socket';
import { native } from '../native/binding.js';
import type { Netns } from '../netns/netns.js';
import { encodeEchoRequest, parseEchoReply } from './icmp.js';

export interface EchoResult {
  seq: number;
  /** Round-trip time in ms; undefined when no reply came before the timeout. */
  rttMs?: number;
  /** TTL the IPv4 reply arrived with. */
  ttl?: number;
}

export interface PingOptions {
  count?: number;
  intervalMs?: number;
  /** How long to wait for the last reply. */
  timeoutMs?: number;
  /** Bytes of ICMP payload (after the 8-byte echo header), as `ping -s`; default: a short text. */
  payloadBytes?: number;
  /**
   * Forbid fragmentation, as `ping -M do`: the packet leaves with DF set (IPv6
   * never fragments on the way), and one larger than the route's MTU fails
   * to send with EMSGSIZE instead of being fragmented here.
   */
  dontFragment?: boolean;
}

// <linux/in.h>, <linux/in6.h>
const IP_MTU_DISCOVER = 10;
const IPV6_MTU_DISCOVER = 23;
const PMTUDISC_DO = 2;

let nextId = process.pid & 0xffff;

// raw-socket's native object holds no strong reference to itself while its
// libuv watcher waits: a socket reachable only from a pending Promise would
// be garbage collected (closing its fd) and the ping would hang. Sockets in
// use are kept here.
const inUse = new Set<Socket>();

/** Like `ip netns exec NS ping -c COUNT DST`. Resolves with one entry per request sent. */
export async function ping(netns: Netns, dst: string, options: PingOptions = {}): Promise<EchoResult[]> {
  const count = options.count ?? 3;
  const family = isIPv6(dst) ? 6 : 4;
  const socket = native.runInNetnsSync(netns.fd, netns.name, () =>
    raw.createSocket({
      protocol: family === 4 ? raw.Protocol.ICMP : raw.Protocol.ICMPv6,
      addressFamily: family === 4 ? raw.AddressFamily.IPv4 : raw.AddressFamily.IPv6,
    }),
  );
  inUse.add(socket);
  if (options.dontFragment === true) {
    if (family === 4) socket.setOption(raw.SocketLevel.IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC_DO);
    else socket.setOption(raw.SocketLevel.IPPROTO_IPV6, IPV6_MTU_DISCOVER, PMTUDISC_DO);
  }
  const id = (nextId = (nextId + 1) & 0xffff);
  const sentAt = new Map<number, number>();
  const results = new Map<number, EchoResult>();
  let answered = 0;
  let allAnswered: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allAnswered = resolve));
  // raw-socket calls back into JS without a microtask checkpoint after, so a
  // Promise settled from its callbacks may sit unresolved until some other
  // event arrives. Settling through setImmediate gets a proper checkpoint.
  socket.on('message', (buffer: Buffer, source: string) => {
    const reply = parseEchoReply(family, buffer);
    const t0 = reply && reply.id === id && source === dst ? sentAt.get(reply.seq) : undefined;
    const entry = reply && results.get(reply.seq);
    if (t0 === undefined || entry === undefined || entry.rttMs !== undefined) return;
    entry.rttMs = performance.now() - t0;
    if (reply!.ttl !== undefined) entry.ttl = reply!.ttl;
    if (++answered === count) setImmediate(allAnswered);
  });
  socket.on('error', () => undefined); // send errors are reported per packet below
  try {
    for (let seq = 1; seq <= count; seq++) {
      results.set(seq, { seq });
      const text = Buffer.from(`ferry probe ${seq}`);
      const payload = options.payloadBytes === undefined ? text : Buffer.alloc(options.payloadBytes, text);
      const packet = encodeEchoRequest(family, id, seq, payload);
      await new Promise<void>((resolve, reject) =>
        socket.send(packet, 0, packet.length, dst, () => sentAt.set(seq, performance.now()), (e) => setImmediate(() => (e ? reject(e) : resolve()))),
      );
      if (seq < count) await sleep(options.intervalMs ?? 100);
    }
    await Promise.race([done, sleep(options.timeoutMs ?? 1000)]);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`ping ${dst} from netns ${netns.name}: ${err.message}`), { code: err.code, cause: e });
  } finally {
    socket.close();
    inUse.delete(socket);
  }
  return [...results.values()];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
