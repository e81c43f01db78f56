// The connrate client and server (connrate.c, compiled by the bench) inside
// pod namespaces, entered with `nsenter --net`: one server per server pod
// for the whole run, one client process per measurement. Processes are
// tracked by bench/dataplane/iperf.ts's Processes, so a cleanup kills them.
import type { Processes } from '../dataplane/iperf.js';
import { TARGET_PORT } from '../support/cluster.js';
import { netnsPath } from '../support/netns.js';

/** The server listens on the Services' target port… */
export const SERVER_PORT = TARGET_PORT;
/**
 * …and, for connections straight to the pod, on another port: ferry
 * tracks only translated flows, and a direct connection reusing a recent
 * ClusterIP connection's tuple (client port and backend) would find that
 * flow's reverse entry, still alive after the RST, and have its SYN/ACK
 * rewritten to come from the ClusterIP.
 */
export const DIRECT_PORT = TARGET_PORT + 1;

/** connrate client's JSON line. */
export interface ConnRun {
  connections: number;
  failures: number;
  seconds: number;
  p50_ns: number;
  p90_ns: number;
  p99_ns: number;
  min_ns: number;
  max_ns: number;
}

/** Starts `connrate server IP PORT CPU` in the pod; resolves once it listens. */
export function startServer(procs: Processes, binary: string, pod: { netns: string; ip: string }, port: number, cpu: number | undefined): Promise<void> {
  const child = procs.spawn(['nsenter', `--net=${netnsPath(pod.netns)}`, '--', binary, 'server', pod.ip, String(port), ...(cpu === undefined ? [] : [String(cpu)])]);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`connrate server in ${pod.netns} did not listen within 5 s: ${err}`)), 5000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`connrate server in ${pod.netns} exited (${code}): ${err.trim()}`));
    });
  });
}

/** One measurement: `connrate client DST PORT SECONDS CPU` in the client pod. */
export function runClient(procs: Processes, binary: string, clientNetns: string, dst: { address: string; port: number }, seconds: number, cpu: number | undefined): Promise<ConnRun> {
  const what = `connrate client → ${dst.address}:${dst.port} in ${clientNetns}`;
  const child = procs.spawn(['nsenter', `--net=${netnsPath(clientNetns)}`, '--', binary, 'client', dst.address, String(dst.port), String(seconds), ...(cpu === undefined ? [] : [String(cpu)])]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${what} exited (${code}): ${err.trim()}`));
      const run = JSON.parse(out) as ConnRun;
      if (run.connections === 0) return reject(new Error(`${what}: no connection succeeded (${run.failures} failed)`));
      resolve(run);
    });
  });
}

export const connPerSecond = (r: ConnRun): number => r.connections / r.seconds;
