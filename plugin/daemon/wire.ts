// The frame the CNI frontend (plugin/frontend/ferry-cni.c) and the daemon
// exchange over the unix socket, little endian:
//   request:  u32 nenv, nenv × (u32 len, "KEY=VALUE"), u32 stdin_len, stdin
//   response: i32 exit_code, u32 stdout_len, stdout

export interface CniCall {
  env: Record<string, string>;
  stdin: string;
}

/** Limits that keep a malformed or hostile frame from exhausting memory. */
const MAX_ENV = 256;
const MAX_FIELD = 1 << 20;

/**
 * Incrementally decodes a request; returns undefined until the frame is
 * complete. Throws on a frame that breaks the limits.
 */
export function decodeRequest(buf: Buffer): CniCall | undefined {
  let pos = 0;
  const u32 = (): number | undefined => {
    if (pos + 4 > buf.length) return undefined;
    const v = buf.readUInt32LE(pos);
    pos += 4;
    return v;
  };
  const bytes = (len: number): Buffer | undefined => {
    if (len > MAX_FIELD) throw new Error(`frame field of ${len} bytes exceeds ${MAX_FIELD}`);
    if (pos + len > buf.length) return undefined;
    const b = buf.subarray(pos, pos + len);
    pos += len;
    return b;
  };
  const n = u32();
  if (n === undefined) return undefined;
  if (n > MAX_ENV) throw new Error(`frame carries ${n} environment variables, more than ${MAX_ENV}`);
  const env: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const len = u32();
    if (len === undefined) return undefined;
    const kv = bytes(len);
    if (kv === undefined) return undefined;
    const text = kv.toString('utf8');
    const eq = text.indexOf('=');
    if (eq > 0) env[text.slice(0, eq)] = text.slice(eq + 1);
  }
  const stdinLen = u32();
  if (stdinLen === undefined) return undefined;
  const stdin = bytes(stdinLen);
  if (stdin === undefined) return undefined;
  return { env, stdin: stdin.toString('utf8') };
}

export function encodeRequest(call: CniCall): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const entries = Object.entries(call.env);
  u32(entries.length);
  for (const [k, v] of entries) {
    const kv = Buffer.from(`${k}=${v}`, 'utf8');
    u32(kv.length);
    parts.push(kv);
  }
  const stdin = Buffer.from(call.stdin, 'utf8');
  u32(stdin.length);
  parts.push(stdin);
  return Buffer.concat(parts);
}

export function encodeResponse(exitCode: number, stdout: string): Buffer {
  const out = Buffer.from(stdout, 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32LE(exitCode, 0);
  head.writeUInt32LE(out.length, 4);
  return Buffer.concat([head, out]);
}
