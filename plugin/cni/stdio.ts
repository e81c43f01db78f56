// The process side of the protocol: stdin in, stdout and the exit code out.
// Everything else happens in runCni, which tests call without a process.
import { errorOutput, runCni, type CniOutput, type RunOptions } from './dispatch.js';
import { ioFailure } from './errors.js';
import type { CniHandlers } from './request.js';

/** Far above any config or prevResult (kilobytes); keeps a runaway writer from filling memory. */
export const MAX_STDIN_BYTES = 16 * 1024 * 1024;

/**
 * All of stdin as UTF-8 (invalid bytes become U+FFFD, as Go's decoder
 * treats them). '' when stdin is a terminal: someone ran `CNI_COMMAND=VERSION
 * ferry` by hand, and waiting for input would hang. CniError 5 on a read error
 * or more than `maxBytes`.
 */
export function readStdin(stream: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin, maxBytes = MAX_STDIN_BYTES): Promise<string> {
  if (stream.isTTY) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: Error) => {
      stream.removeAllListeners('data');
      reject(err);
    };
    stream.on('data', (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > maxBytes) {
        fail(ioFailure(`stdin is larger than ${maxBytes} bytes; a network config is a few kilobytes`));
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        return;
      }
      chunks.push(b);
    });
    stream.on('error', (e: Error) => fail(ioFailure(`reading the network config from stdin: ${e.message}`, undefined, e)));
    stream.on('end', () => resolve(new TextDecoder('utf-8').decode(Buffer.concat(chunks))));
  });
}

/**
 * main() of the ferry CNI binary: reads stdin, runs the verb, writes stdout,
 * sets process.exitCode (rather than calling process.exit, which could cut
 * stdout short). Returns the output too.
 */
export async function cniMain(handlers: CniHandlers, options: RunOptions = {}): Promise<CniOutput> {
  let out: CniOutput;
  try {
    const stdin = await readStdin();
    out = await runCni({ env: process.env, stdin }, handlers, options);
  } catch (e) {
    out = errorOutput(e);
  }
  process.stdout.write(out.stdout);
  process.exitCode = out.exitCode;
  return out;
}
