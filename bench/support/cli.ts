// What the scale benches share on the command line and in their output:
// option parsers, progress lines on stderr, the environment a run was
// measured in, and where the raw figures go.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from 'commander';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RAW_DIR = join(REPO_ROOT, 'build/bench');

/** A commander parser for an integer ≥ min. */
export function integer(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
    return n;
  };
}

/** A commander parser for a comma-separated list of integers ≥ min. */
export function integers(min: number) {
  return (v: string): number[] => v.split(',').map((x) => integer(min)(x.trim()));
}

/** Progress, on stderr (stdout carries the tables). */
export const say = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** A command's trimmed stdout, or 'unknown'. */
export function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function requireRoot(bench: string): void {
  if (process.getuid?.() !== 0) throw new Error(`the ${bench} bench needs root (network namespaces, BPF)`);
}

export function requireCommands(commands: readonly string[]): void {
  for (const c of commands) if (sh('sh', ['-c', `command -v ${c}`]) === 'unknown') throw new Error(`${c} is not installed (run make deps)`);
}

/** What the figures were measured on and with. */
export function environment(): Record<string, string> {
  const dirty = sh('git', ['-C', REPO_ROOT, 'status', '--porcelain']) !== '';
  return {
    kernel: sh('uname', ['-r']),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    ferry: `${sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'])}${dirty ? ' (uncommitted changes)' : ''}`,
    'load average (1 min) at the start': loadavg()[0]!.toFixed(1),
  };
}

export function printEnvironment(title: string, env: Record<string, string>): void {
  console.log(`\n${title}`);
  for (const [k, v] of Object.entries(env)) console.log(`  ${k}: ${v}`);
}

/** Writes the raw figures to build/bench/<bench>-<time>.json; returns the path. */
export function writeRaw(bench: string, started: Date, data: unknown, dir = RAW_DIR): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${bench}-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/** `1,234` */
export const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Milliseconds with a sensible number of digits. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return '—';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
