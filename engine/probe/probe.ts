// Connectivity probes from inside network namespaces: ICMP echo (ping.ts,
// raw sockets), and TCP request/response and one-datagram UDP exchanges
// through one worker thread per namespace (tcp-worker.ts). Close the Prober to stop servers and workers.
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Netns } from '../netns/netns.js';
import { ping, type EchoResult, type PingOptions } from './ping.js';
import type { ProbeRequest, ProbeResponse, TcpExchangeResult, TcpWorkerData } from './protocol.js';

export type { EchoResult, PingOptions } from './ping.js';
export type { TcpExchangeResult } from './protocol.js';

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;

export class ProbeError extends Error {
  override readonly name = 'ProbeError';
  constructor(
    message: string,
    readonly code?: string,
    readonly errno?: number,
  ) {
    super(message);
  }
}

/** One worker thread living in one namespace. */
class TcpWorker {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly worker: Worker;

  constructor(readonly netns: Netns) {
    this.worker = startWorker({ nsFd: netns.fd, nsName: netns.name });
    this.worker.on('message', (res: ProbeResponse) => {
      const w = this.waiting.get(res.id);
      this.waiting.delete(res.id);
      if (res.ok) w?.resolve(res.value);
      else w?.reject(new ProbeError(`in netns ${netns.name}: ${res.error.message}`, res.error.code, res.error.errno));
    });
    this.worker.on('error', (e) => this.failAll(new ProbeError(`probe worker in netns ${netns.name}: ${e.message}`)));
    this.worker.on('exit', (code) => this.failAll(new ProbeError(`probe worker in netns ${netns.name} exited (${code})`)));
  }

  call(req: Distribute<ProbeRequest>): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  async close(): Promise<void> {
    await this.call({ op: 'close-servers' }).catch(() => undefined);
    await this.worker.terminate();
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}

/**
 * Starts tcp-worker next to this file. Under tsx (development and tests) it
 * is TypeScript, which a worker can only load through tsx's own import hook.
 */
function startWorker(data: TcpWorkerData): Worker {
  const url = new URL(`./tcp-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: data });
  // require.resolve finds the package's CommonJS entry; its ESM twin sits beside it.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(url.href)}, ${JSON.stringify(url.href)}))`;
  return new Worker(boot, { eval: true, workerData: data });
}

/** A held TCP connection (Prober.openTcpStream); the server must echo (serveTcp with echo). */
export interface TcpStream {
  /** Sends one line, resolves with the answer line. */
  send(message: string, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/** A connected UDP socket that keeps its source port (Prober.openUdpSocket). */
export interface UdpSocket {
  /** Sends one datagram, resolves with the first one back; ECONNREFUSED on port unreachable. */
  send(message: string, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export class Prober {
  private readonly workers = new Map<Netns, TcpWorker>();

  /** Like `ip netns exec NS ping -c COUNT DST`, through a raw ICMP socket. */
  ping(netns: Netns, dst: string, options: PingOptions = {}): Promise<EchoResult[]> {
    return ping(netns, dst, options);
  }

  /**
   * Starts a line server inside `netns` on host:port (stopped by close()).
   * It answers one line and closes; with `echo`, it answers every line;
   * with `identify`, its answers name `host`.
   */
  serveTcp(netns: Netns, host: string, port: number, options: { echo?: boolean; identify?: boolean } = {}): Promise<{ address: string; port: number }> {
    return this.worker(netns).call({ op: 'tcp-serve', host, port, ...(options.echo && { echo: true }), ...(options.identify && { identify: true }) }) as Promise<{ address: string; port: number }>;
  }

  /** Opens a connection from inside `netns` that stays open: one line out, one line back per send(). */
  async openTcpStream(netns: Netns, host: string, port: number, timeoutMs = 2000): Promise<TcpStream> {
    const worker = this.worker(netns);
    const stream = (await worker.call({ op: 'tcp-stream-open', host, port, timeoutMs })) as number;
    return {
      send: (message, sendTimeoutMs = 2000) => worker.call({ op: 'tcp-stream-send', stream, message, timeoutMs: sendTimeoutMs }) as Promise<string>,
      close: async () => void (await worker.call({ op: 'tcp-stream-close', stream })),
    };
  }

  /** Connects from inside `netns`, sends one line, returns the server's answer. */
  tcpExchange(netns: Netns, host: string, port: number, message: string, timeoutMs = 2000): Promise<TcpExchangeResult> {
    return this.worker(netns).call({ op: 'tcp-exchange', host, port, message, timeoutMs }) as Promise<TcpExchangeResult>;
  }

  /** Sends one datagram from a connected UDP socket inside `netns`, returns the first datagram back (ECONNREFUSED on port unreachable). */
  udpExchange(netns: Netns, host: string, port: number, message: string, timeoutMs = 2000): Promise<string> {
    return this.worker(netns).call({ op: 'udp-exchange', host, port, message, timeoutMs }) as Promise<string>;
  }

  /** Starts a datagram server inside `netns` (stopped by close()); its answers name its address. */
  serveUdp(netns: Netns, host: string, port: number): Promise<{ address: string; port: number }> {
    return this.worker(netns).call({ op: 'udp-serve', host, port }) as Promise<{ address: string; port: number }>;
  }

  /** Opens a connected UDP socket inside `netns` that keeps its source port (`localPort`, or one the kernel picks) across sends. */
  async openUdpSocket(netns: Netns, host: string, port: number, options: { localPort?: number } = {}): Promise<UdpSocket> {
    const worker = this.worker(netns);
    const socket = (await worker.call({ op: 'udp-socket-open', host, port, ...options })) as number;
    return {
      send: (message, timeoutMs = 2000) => worker.call({ op: 'udp-socket-send', socket, message, timeoutMs }) as Promise<string>,
      close: async () => void (await worker.call({ op: 'udp-socket-close', socket })),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.close()));
    this.workers.clear();
  }

  private worker(netns: Netns): TcpWorker {
    let w = this.workers.get(netns);
    if (w === undefined) this.workers.set(netns, (w = new TcpWorker(netns)));
    return w;
  }
}
