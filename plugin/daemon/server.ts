// The daemon's CNI endpoint: a unix socket in a root-only directory. Each
// connection carries one CNI call from the frontend binary; calls run
// concurrently (IPAM takes its own lock; netlink requests queue per socket).
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { decodeRequest, encodeResponse, type CniCall } from './wire.js';

export const DEFAULT_CNI_SOCKET = '/run/ferry/cni.sock';

export type CniExecutor = (call: CniCall) => Promise<{ stdout: string; exitCode: number }>;

export async function serveCni(socketPath: string, execute: CniExecutor, log: Logger): Promise<net.Server> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  chmodSync(dirname(socketPath), 0o700);
  // A socket file is either stale (a daemon that died) or another daemon's:
  // removing a live one would leave that daemon running and unreachable.
  if (await answers(socketPath)) throw new Error(`CNI socket ${socketPath}: another ferry daemon is listening on it`);
  rmSync(socketPath, { force: true });
  const server = net.createServer((conn) => {
    let buf = Buffer.alloc(0);
    let answered = false;
    conn.on('data', (chunk) => {
      if (answered) return;
      buf = Buffer.concat([buf, chunk]);
      let call: CniCall | undefined;
      try {
        call = decodeRequest(buf);
      } catch (e) {
        log.warn({ err: e }, 'rejected a malformed CNI frame');
        conn.destroy();
        return;
      }
      if (call === undefined) return;
      answered = true;
      execute(call).then(
        ({ stdout, exitCode }) => conn.end(encodeResponse(exitCode, stdout)),
        (e) => {
          log.error({ err: e }, 'CNI call failed outside the protocol handler');
          conn.destroy();
        },
      );
    });
    conn.on('error', (e) => log.debug({ err: e }, 'CNI connection error'));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  log.info({ socket: socketPath }, 'serving CNI calls');
  return server;
}

/** Whether something accepts connections on the unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
