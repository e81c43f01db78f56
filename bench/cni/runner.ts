// The bench's in-namespace runner. bench/cni.ts starts one per contender
// inside that contender's node netns and a private mount namespace (libcni's
// result cache, /var/lib/cni, bind-mounted to a temp dir), so each cnitool
// process it times is spawned directly: no nsenter, unshare or mount in the
// measured interval.
//
//   node --import tsx bench/cni/runner.ts CNITOOL
//
// Reads batches (protocol.ts) on stdin, one per line, and answers each on
// stdout; NETCONFPATH, CNI_PATH, CNI_IFNAME … come from its environment.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Batch, BatchResult, CallTiming, CniCommand } from './protocol.js';

const cnitool = process.argv[2];
if (!cnitool) {
  process.stderr.write('usage: runner.ts CNITOOL\n');
  process.exit(2);
}

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function call(command: CniCommand, network: string, netns: string, t0: number): Promise<CallTiming> {
  return new Promise((resolve) => {
    const start = nowMs();
    const child = spawn(cnitool!, [command, network, netns], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let end = 0;
    let status = -1;
    // 'exit' is when the process ended; 'close' (all output read) may come later.
    child.once('exit', (code, signal) => {
      end = nowMs();
      status = code ?? (signal ? 128 : -1);
    });
    child.once('error', (e) => {
      resolve({ netns, ms: nowMs() - start, startMs: start - t0, endMs: nowMs() - t0, status: -1, error: e.message });
    });
    child.once('close', () => {
      const stdout = Buffer.concat(out).toString('utf8');
      const timing: CallTiming = { netns, ms: end - start, startMs: start - t0, endMs: end - t0, status };
      if (status !== 0) {
        timing.error = `${Buffer.concat(err).toString('utf8').trim()}\n${stdout.trim()}`.trim();
      } else if (command === 'add') {
        try {
          const ip = (JSON.parse(stdout) as { ips?: { address: string }[] }).ips?.[0]?.address;
          if (ip) timing.ip = ip;
        } catch {
          // the timing stands without the address
        }
      }
      resolve(timing);
    });
  });
}

async function runBatch(batch: Batch): Promise<BatchResult> {
  const t0 = nowMs();
  const calls = await Promise.all(batch.netns.map((ns) => call(batch.command, batch.network, ns, t0)));
  const wallMs = Math.max(...calls.map((c) => c.endMs)) - Math.min(...calls.map((c) => c.startMs));
  return { id: batch.id, wallMs, calls };
}

// Batches arrive one at a time (the driver waits for each answer).
const lines = createInterface({ input: process.stdin });
let queue: Promise<void> = Promise.resolve();
lines.on('line', (line) => {
  if (line.trim() === '') return;
  queue = queue.then(async () => {
    const result = await runBatch(JSON.parse(line) as Batch);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });
});
lines.on('close', () => void queue.then(() => process.exit(0)));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
