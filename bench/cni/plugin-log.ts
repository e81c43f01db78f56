// ferry's own view of each request: the plugin logs `ms` (time spent in
// runCni, from the request's arrival to its answer) on every "ADD done" /
// "DEL done" line of its logFile. Reading the lines a phase wrote, by byte
// offset, attributes them to that phase's calls by netns.
import { openSync, readSync, closeSync, statSync } from 'node:fs';

export interface PluginLogEntry {
  cmd: string;
  netns: string;
  ms: number;
  pid: number;
}

/** The log's current size: a phase's lines lie between its offsets before and after. */
export function logOffset(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The "… done" entries written between two offsets. */
export function readDone(file: string, from: number, to: number): PluginLogEntry[] {
  if (to <= from) return [];
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(to - from);
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  const out: PluginLogEntry[] = [];
  for (const line of buf.toString('utf8').split('\n')) {
    if (!line.includes(' done"')) continue;
    try {
      const e = JSON.parse(line) as Partial<PluginLogEntry> & { msg?: string };
      if (typeof e.ms === 'number' && typeof e.netns === 'string' && e.msg?.endsWith(' done')) {
        out.push({ cmd: e.cmd ?? e.msg.split(' ')[0]!, netns: e.netns, ms: e.ms, pid: e.pid ?? 0 });
      }
    } catch {
      // not a JSON line
    }
  }
  return out;
}
