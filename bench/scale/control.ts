// The scale bench's hands on the two child processes: the API server it
// drives over IPC (apiserver.ts), and the daemon's pinned maps, read to see
// when a change has reached them.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BpfMap } from '../../engine/bpf/index.js';
import { isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import { backendId, lb4Backend, lb4Key, lb4Service, MAPS } from '../../engine/dataplane/layout.js';
import { SERVICE_PORT, type BenchService } from '../support/cluster.js';
import { netnsPath } from '../support/netns.js';
import type { FromApiServer, ToApiServer } from './apiserver.js';

/** The API server child, in the node netns. */
export class ApiServerProcess {
  readonly #child: ChildProcess;
  readonly #stderr: string[] = [];
  #waiting: Array<{ op: FromApiServer['op']; resolve: (m: FromApiServer) => void; reject: (e: Error) => void }> = [];

  constructor(nodeNetns: string, script: string) {
    this.#child = spawn('nsenter', [`--net=${netnsPath(nodeNetns)}`, '--', process.execPath, '--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.#child.stderr!.setEncoding('utf8').on('data', (d: string) => this.#stderr.push(d));
    this.#child.on('message', (m: FromApiServer) => {
      const i = this.#waiting.findIndex((w) => w.op === m.op);
      if (i >= 0) this.#waiting.splice(i, 1)[0]!.resolve(m);
    });
    this.#child.once('exit', (code) => {
      for (const w of this.#waiting.splice(0)) w.reject(new Error(`the API server exited (${code}): ${this.#stderr.join('').slice(-2000)}`));
    });
  }

  /** The next message `op` from the server (within `ms`). */
  next<T extends FromApiServer['op']>(op: T, ms = 60_000): Promise<Extract<FromApiServer, { op: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the API server sent no ${op} within ${ms} ms: ${this.#stderr.join('').slice(-2000)}`)), ms);
      this.#waiting.push({
        op,
        resolve: (m) => (clearTimeout(timer), resolve(m as Extract<FromApiServer, { op: T }>)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  send(m: ToApiServer): void {
    this.#child.send(m);
  }

  /** Changes one Service's EndpointSlice; resolves with the hrtime (ns) its watch event went out. */
  async updateSlice(index: number, addresses: string[]): Promise<bigint> {
    const emitted = this.next('emitted');
    this.send({ op: 'slice', index, addresses });
    return BigInt((await emitted).at);
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

/** The daemon's services and backends maps, opened from their pins. */
export class PinnedServiceMaps {
  readonly services: BpfMap;
  readonly backends: BpfMap;

  constructor(pinRoot: string) {
    this.services = BpfMap.openPinned(join(pinRoot, MAPS.services));
    this.backends = BpfMap.openPinned(join(pinRoot, MAPS.backends));
  }

  /** The backend addresses `s`'s slots 1…slots name now. */
  backendsOf(s: BenchService, slots: number): string[] {
    const out: string[] = [];
    for (let slot = 1; slot <= slots; slot++) {
      const entry = this.services.lookup(lb4Key.encode({ address: s.clusterIp, port: SERVICE_PORT, proto: 'tcp', slot, scope: 'external' }));
      const backend = entry && this.backends.lookup(backendId.encode(lb4Service.decode(entry).backendId));
      if (backend && !isEmptyBackend(backend)) out.push(lb4Backend.decode(backend).address);
    }
    return out;
  }

  /** Polls every millisecond until `s`'s slots name `address`; resolves with the hrtime (ns) it was first seen. */
  async waitForBackend(s: BenchService, slots: number, address: string, timeoutMs = 30_000): Promise<bigint> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.backendsOf(s, slots).includes(address)) return process.hrtime.bigint();
      if (performance.now() > deadline) throw new Error(`${address} did not reach ${s.name}'s slots within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Entries in the services map (slot 0 and backend slots). */
  countServiceEntries(): number {
    let n = 0;
    for (const _ of this.services.keys()) n++;
    return n;
  }

  close(): void {
    this.services.close();
    this.backends.close();
  }
}
