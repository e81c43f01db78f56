// iperf3 inside pod namespaces: a one-shot server bound to the server pod's
// address (`iperf3 -s -1 -B IP`), then a client in the client pod
// (`iperf3 -c DST -J`), both entered with `nsenter --net` (network namespace
// only). Every process started here is tracked so a cleanup can kill it.
import { spawn, type ChildProcess } from 'node:child_process';
import { netnsPath } from '../support/netns.js';

export const IPERF_PORT = 5201;

export interface IperfSettings {
  /** -t: measured seconds. */
  seconds: number;
  /** -O: seconds at the start left out of the results (slow start). */
  omit: number;
  /** -P: parallel streams. */
  streams: number;
  /** -A for client and server, when set. */
  affinity?: { client: number; server: number };
}

/** What one iperf3 run gave, from its JSON (end.sum_received is what the server got). */
export interface IperfResult {
  receivedBitsPerSecond: number;
  sentBitsPerSecond: number;
  retransmits: number;
  /** end.cpu_utilization_percent: host = the client (sender), remote = the server (receiver). */
  senderCpuPercent: number;
  receiverCpuPercent: number;
  /** What the client connected to (start.connected[0]). */
  remote: string;
  local: string;
  seconds: number;
  congestion: string;
}

/** The child processes a bench started and has not seen exit. */
export class Processes {
  private readonly live = new Set<ChildProcess>();

  spawn(argv: string[]): ChildProcess {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.live.add(child);
    child.once('exit', () => this.live.delete(child));
    child.once('error', () => this.live.delete(child));
    return child;
  }

  /** SIGKILL to every child still running, by pid (synchronous: fit for a signal handler). */
  killAll(): void {
    for (const child of this.live) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    this.live.clear();
  }
}

const inNetns = (netns: string, argv: string[]): string[] => ['nsenter', `--net=${netnsPath(netns)}`, '--', ...argv];

function collect(child: ChildProcess): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  return { out: () => out, err: () => err };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', reject);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error(`${what}: no answer within ${ms / 1000} s`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * One measurement: starts `iperf3 -s -1 -B serverIp` in the server's netns,
 * waits until it listens, runs the client against `dst` (the server's
 * address, or a ClusterIP that leads to it) and returns the client's
 * figures. The server exits by itself after the one test (-1).
 */
export async function iperfOnce(
  procs: Processes,
  p: { serverNetns: string; serverIp: string; clientNetns: string; dst: string; port?: number },
  s: IperfSettings,
): Promise<IperfResult> {
  const port = p.port ?? IPERF_PORT;
  const kill = (c: ChildProcess) => () => c.kill('SIGKILL');
  const server = procs.spawn(
    inNetns(p.serverNetns, [
      'iperf3', '-s', '-1', '-B', p.serverIp, '-p', String(port), '--forceflush',
      ...(s.affinity ? ['-A', String(s.affinity.server)] : []),
    ]),
  );
  const serverOut = collect(server);
  const serverExit = exited(server);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (serverOut.out().includes('Server listening')) resolve();
      };
      server.stdout?.on('data', check);
      check();
      serverExit.then(
        (code) => reject(new Error(`iperf3 server in ${p.serverNetns} exited (${code}) before listening: ${serverOut.err().trim() || serverOut.out().trim()}`)),
        reject,
      );
    }),
    5_000,
    `iperf3 server in ${p.serverNetns}`,
    kill(server),
  );

  const client = procs.spawn(
    inNetns(p.clientNetns, [
      'iperf3', '-c', p.dst, '-p', String(port), '-t', String(s.seconds), '-O', String(s.omit), '-P', String(s.streams),
      '-J', '--connect-timeout', '5000',
      ...(s.affinity ? ['-A', String(s.affinity.client)] : []),
    ]),
  );
  const clientOut = collect(client);
  const code = await withTimeout(exited(client), (s.seconds + s.omit + 20) * 1000, `iperf3 -c ${p.dst} in ${p.clientNetns}`, kill(client));
  await withTimeout(serverExit, 5_000, `iperf3 server in ${p.serverNetns} (after the test)`, kill(server)).catch(() => undefined);

  let json: any;
  try {
    json = JSON.parse(clientOut.out());
  } catch {
    throw new Error(`iperf3 -c ${p.dst} in ${p.clientNetns} exited ${code} without JSON: ${clientOut.err().trim()}`);
  }
  if (code !== 0 || json.error) {
    throw new Error(`iperf3 -c ${p.dst}:${port} in ${p.clientNetns} failed (exit ${code}): ${json.error ?? clientOut.err().trim()}`);
  }
  const end = json.end;
  const connected = json.start?.connected?.[0] ?? {};
  return {
    receivedBitsPerSecond: end.sum_received.bits_per_second,
    sentBitsPerSecond: end.sum_sent.bits_per_second,
    retransmits: end.sum_sent.retransmits ?? 0,
    senderCpuPercent: end.cpu_utilization_percent?.host_total ?? Number.NaN,
    receiverCpuPercent: end.cpu_utilization_percent?.remote_total ?? Number.NaN,
    remote: `${connected.remote_host}:${connected.remote_port}`,
    local: `${connected.local_host}:${connected.local_port}`,
    seconds: end.sum_received.seconds,
    congestion: end.sender_tcp_congestion ?? 'unknown',
  };
}
