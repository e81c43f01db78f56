// The daemon's HTTP servers (healthz, metrics, one per healthCheckNodePort):
// listening in the namespace the daemon runs in, closed together with their
// open connections (keep-alive clients would hold close() up otherwise).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpListener {
  /** The port it listens on (the kernel's pick when 0 was asked for). */
  port: number;
  close(): Promise<void>;
}

/** Starts `handler` on host:port; a failure names `what` and the address and keeps the errno code. */
export async function listenHttp(what: string, host: string, port: number, handler: http.RequestListener): Promise<HttpListener> {
  const server = http.createServer(handler);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`${what} on ${host.includes(':') ? `[${host}]` : host}:${port}: ${err.message}`), { code: err.code, errno: err.errno, syscall: err.syscall });
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
