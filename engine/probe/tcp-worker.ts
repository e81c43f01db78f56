// A TCP probe worker: a thread bound to one network namespace for its whole
// life. It moves into the namespace before anything else runs, so every
// socket it makes (listening or connecting) lives there. Node's main thread
// never changes namespace.
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../native/binding.js';
import type {
  ProbeRequest,
  ProbeResponse,
  TcpExchangeRequest,
  TcpExchangeResult,
  TcpServeRequest,
  TcpStreamOpenRequest,
  TcpStreamSendRequest,
  TcpWorkerData,
  UdpExchangeRequest,
  UdpServeRequest,
  UdpSocketOpenRequest,
  UdpSocketSendRequest,
} from './protocol.js';

const { nsFd, nsName } = workerData as TcpWorkerData;
native.enterNetnsOnThisThread(nsFd, nsName);

const servers: Array<net.Server | dgram.Socket> = [];
/** Server-side connections: closing a server waits for them, and a peer that vanished never ends its own. */
const accepted = new Set<net.Socket>();

/** A line server: answers "pong <line> (you are ADDR:PORT)" (with identify: "pong <line> from HOST (you are …)") and closes (or, with echo, answers every line). */
async function serve(req: TcpServeRequest): Promise<{ address: string; port: number }> {
  const server = net.createServer((conn) => {
    accepted.add(conn);
    conn.once('close', () => accepted.delete(conn));
    conn.setEncoding('utf8');
    let buffered = '';
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const answer = `pong ${buffered.slice(0, nl)}${req.identify ? ` from ${req.host}` : ''} (you are ${conn.remoteAddress}:${conn.remotePort})\n`;
        buffered = buffered.slice(nl + 1);
        if (!req.echo) return void conn.end(answer);
        conn.write(answer);
      }
    });
    conn.on('error', () => conn.destroy());
  });
  server.listen(req.port, req.host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
  servers.push(server);
  const addr = server.address() as net.AddressInfo;
  return { address: addr.address, port: addr.port };
}

async function exchange(req: TcpExchangeRequest): Promise<TcpExchangeResult> {
  const t0 = performance.now();
  const socket = net.connect({ host: req.host, port: req.port });
  const timer = setTimeout(
    () => socket.destroy(Object.assign(new Error(`no answer from ${req.host}:${req.port} within ${req.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    req.timeoutMs,
  );
  try {
    await Promise.race([once(socket, 'connect'), once(socket, 'error').then(([e]) => Promise.reject(e))]);
    const connectMs = performance.now() - t0;
    socket.setEncoding('utf8');
    let reply = '';
    // The answer is one line: done at its end (an echo server keeps the connection) or at EOF.
    const answered = new Promise<void>((resolve) => {
      socket.on('data', (chunk: string) => {
        reply += chunk;
        if (reply.includes('\n')) resolve();
      });
      socket.once('end', () => resolve());
    });
    socket.write(`${req.message}\n`);
    await Promise.race([answered, once(socket, 'error').then(([e]) => Promise.reject(e))]);
    const match = /\(you are (.+)\)$/.exec(reply.trim());
    return { reply: reply.trim(), peer: match?.[1] ?? '', connectMs, roundTripMs: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** Held connections (tcp-stream-*), each with its unread reply text. */
const streams = new Map<number, { socket: net.Socket; buffered: string; wake: (() => void) | undefined; error: Error | undefined }>();
let nextStream = 1;

async function streamOpen(req: TcpStreamOpenRequest): Promise<number> {
  const socket = net.connect({ host: req.host, port: req.port, timeout: req.timeoutMs });
  socket.once('timeout', () => socket.destroy(Object.assign(new Error(`no connection to ${req.host}:${req.port} within ${req.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
  await Promise.race([once(socket, 'connect'), once(socket, 'error').then(([e]) => Promise.reject(e))]);
  socket.setTimeout(0);
  socket.setEncoding('utf8');
  const id = nextStream++;
  const stream = { socket, buffered: '', wake: undefined as (() => void) | undefined, error: undefined as Error | undefined };
  const wake = () => stream.wake?.();
  socket.on('data', (chunk: string) => ((stream.buffered += chunk), wake()));
  socket.on('error', (e) => ((stream.error = e), wake()));
  socket.on('close', () => ((stream.error ??= Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })), wake()));
  streams.set(id, stream);
  return id;
}

async function streamSend(req: TcpStreamSendRequest): Promise<string> {
  const stream = streams.get(req.stream);
  if (stream === undefined) throw new Error(`no open stream ${req.stream}`);
  if (stream.error) throw stream.error;
  stream.socket.write(`${req.message}\n`);
  const deadline = performance.now() + req.timeoutMs;
  for (;;) {
    const nl = stream.buffered.indexOf('\n');
    if (nl !== -1) {
      const line = stream.buffered.slice(0, nl);
      stream.buffered = stream.buffered.slice(nl + 1);
      return line;
    }
    if (stream.error) throw stream.error;
    const left = deadline - performance.now();
    if (left <= 0) throw Object.assign(new Error(`no answer on stream ${req.stream} within ${req.timeoutMs} ms`), { code: 'ETIMEDOUT' });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      stream.wake = () => (clearTimeout(timer), resolve());
    });
    stream.wake = undefined;
  }
}

/** The socket type for an address (a host name resolves to IPv4). */
const udpType = (host: string): dgram.SocketType => (net.isIPv6(host) ? 'udp6' : 'udp4');

/**
 * A datagram server: answers each datagram "pong <line> from ADDR (you are
 * ADDR:PORT)", naming its own address so that a client of a service can tell
 * which backend answered.
 */
async function serveUdp(req: UdpServeRequest): Promise<{ address: string; port: number }> {
  const server = dgram.createSocket(udpType(req.host));
  server.on('message', (msg, rinfo) => {
    const answer = `pong ${msg.toString('utf8').trim()} from ${req.host} (you are ${rinfo.address}:${rinfo.port})\n`;
    server.send(answer, rinfo.port, rinfo.address);
  });
  server.bind(req.port, req.host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
  servers.push(server);
  const addr = server.address();
  return { address: addr.address, port: addr.port };
}

/**
 * Connected UDP sockets (udp-socket-*): a connected socket keeps its source
 * port, like a resolver's, and sees the ICMP errors its datagrams draw
 * (port unreachable: ECONNREFUSED).
 */
const udpSockets = new Map<number, dgram.Socket>();
let nextUdpSocket = 1;

async function udpOpen(req: UdpSocketOpenRequest): Promise<number> {
  const socket = dgram.createSocket(udpType(req.host));
  socket.on('error', () => {}); // reported to the send waiting for it
  if (req.localPort !== undefined) {
    socket.bind(req.localPort);
    await Promise.race([once(socket, 'listening'), once(socket, 'error').then(([e]) => Promise.reject(e))]);
  }
  socket.connect(req.port, req.host);
  await Promise.race([once(socket, 'connect'), once(socket, 'error').then(([e]) => Promise.reject(e))]);
  const id = nextUdpSocket++;
  udpSockets.set(id, socket);
  return id;
}

async function udpSend(req: UdpSocketSendRequest): Promise<string> {
  const socket = udpSockets.get(req.socket);
  if (socket === undefined) throw new Error(`no open UDP socket ${req.socket}`);
  const { address, port } = socket.remoteAddress();
  const ac = new AbortController();
  const timer = setTimeout(
    () => socket.emit('error', Object.assign(new Error(`no answer from ${address}:${port}/udp within ${req.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    req.timeoutMs,
  );
  try {
    socket.send(`${req.message}\n`);
    const [first] = (await Promise.race([
      once(socket, 'message', { signal: ac.signal }),
      once(socket, 'error', { signal: ac.signal }).then(([e]) => Promise.reject(e as Error)),
    ])) as [Buffer];
    return first.toString('utf8').trim();
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

function udpClose(id: number): void {
  udpSockets.get(id)?.close();
  udpSockets.delete(id);
}

/** One datagram out of a fresh connected socket, the first one back. */
async function udpExchange(req: UdpExchangeRequest): Promise<string> {
  const socket = await udpOpen({ op: 'udp-socket-open', host: req.host, port: req.port });
  try {
    return await udpSend({ op: 'udp-socket-send', socket, message: req.message, timeoutMs: req.timeoutMs });
  } finally {
    udpClose(socket);
  }
}

async function handle(req: ProbeRequest): Promise<unknown> {
  switch (req.op) {
    case 'tcp-serve':
      return serve(req);
    case 'tcp-exchange':
      return exchange(req);
    case 'tcp-stream-open':
      return streamOpen(req);
    case 'tcp-stream-send':
      return streamSend(req);
    case 'udp-exchange':
      return udpExchange(req);
    case 'udp-serve':
      return serveUdp(req);
    case 'udp-socket-open':
      return udpOpen(req);
    case 'udp-socket-send':
      return udpSend(req);
    case 'udp-socket-close':
      return udpClose(req.socket);
    case 'tcp-stream-close':
      streams.get(req.stream)?.socket.destroy();
      streams.delete(req.stream);
      return undefined;
    case 'close-servers':
      for (const s of streams.values()) s.socket.destroy();
      streams.clear();
      for (const id of [...udpSockets.keys()]) udpClose(id);
      for (const conn of accepted) conn.destroy();
      await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      return undefined;
  }
}

parentPort!.on('message', (req: ProbeRequest) => {
  handle(req).then(
    (value) => parentPort!.postMessage({ id: req.id, ok: true, value } satisfies ProbeResponse),
    (e: NodeJS.ErrnoException) =>
      parentPort!.postMessage({
        id: req.id,
        ok: false,
        error: { message: e.message, ...(e.code ? { code: e.code } : {}), ...(e.errno !== undefined ? { errno: e.errno } : {}) },
      } satisfies ProbeResponse),
  );
});
