// A TCP probe worker: a thread bound to one network namespace for its whole
// life. It moves into the namespace before anything else runs, so every
// socket it makes (listening or connecting) lives there. Node's main thread
// never changes namespace.
import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../native/binding.js';
import type { ProbeRequest, ProbeResponse, TcpExchangeRequest, TcpExchangeResult, TcpServeRequest, TcpWorkerData } from './protocol.js';

const { nsFd, nsName } = workerData as TcpWorkerData;
native.enterNetnsOnThisThread(nsFd, nsName);

const servers: net.Server[] = [];

/** A line server: answers "pong <line> (you are ADDR:PORT)" and closes. */
async function serve(req: TcpServeRequest): Promise<{ address: string; port: number }> {
  const server = net.createServer((conn) => {
    conn.setEncoding('utf8');
    let buffered = '';
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl !== -1) conn.end(`pong ${buffered.slice(0, nl)} (you are ${conn.remoteAddress}:${conn.remotePort})\n`);
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
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.write(`${req.message}\n`);
    await Promise.race([once(socket, 'end'), once(socket, 'error').then(([e]) => Promise.reject(e))]);
    const match = /\(you are (.+)\)$/.exec(reply.trim());
    return { reply: reply.trim(), peer: match?.[1] ?? '', connectMs, roundTripMs: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

async function handle(req: ProbeRequest): Promise<unknown> {
  switch (req.op) {
    case 'tcp-serve':
      return serve(req);
    case 'tcp-exchange':
      return exchange(req);
    case 'close-servers':
      await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
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
