// Small programs a bench builds for itself at run time (a C client, a BPF
// reference program, a TypeScript entry point run as plain JavaScript),
// into build/bench/bin, again only when a source is newer than the output.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './cli.js';

const BIN_DIR = join(REPO_ROOT, 'build/bench/bin');

function stale(out: string, sources: readonly string[]): boolean {
  if (!existsSync(out)) return true;
  const built = statSync(out).mtimeMs;
  return sources.some((s) => statSync(s).mtimeMs > built);
}

/** Runs `argv` (which writes `out`) when `out` is older than any of `sources`; returns `out`. */
function buildIfStale(out: string, sources: readonly string[], argv: readonly string[]): string {
  if (!stale(out, sources)) return out;
  mkdirSync(dirname(out), { recursive: true });
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`building ${out} failed: ${argv.join(' ')}\n${String((e as { stderr?: Buffer }).stderr ?? e)}`);
  }
  return out;
}

/** A C program: `cc -O2 -Wall -Wextra -Werror`. */
export function compileC(source: string, name: string): string {
  const out = join(BIN_DIR, name);
  return buildIfStale(out, [source], ['cc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', out, source]);
}

/** A BPF object, compiled as bpf/bpf.mk compiles ferry's (against build/bpf/vmlinux.h). */
export function compileBpf(source: string, name: string): string {
  const out = join(BIN_DIR, name);
  const vmlinux = join(REPO_ROOT, 'build/bpf/vmlinux.h');
  if (!existsSync(vmlinux)) throw new Error(`${vmlinux} is missing (run make)`);
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86';
  return buildIfStale(out, [source, vmlinux], ['clang', '-O2', '-g', '-Wall', '-Werror', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, `-I${dirname(vmlinux)}`, '-c', source, '-o', out]);
}

/**
 * A bench's TypeScript entry point as plain JavaScript that runs on `make`'s
 * dist/ (no tsx loader in the process): `source` transpiled alone, its
 * imports of engine/ and plugin/ pointed at dist/. Only for files whose
 * other imports are packages.
 */
export function transpileEntry(source: string, name: string): string {
  const out = join(BIN_DIR, name);
  if (!stale(out, [source])) return out;
  const js = ts.transpileModule(readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    fileName: source,
  }).outputText;
  const rewritten = js.replace(/from '(?:\.\.\/)+((?:engine|plugin)\/[^']+)'/g, (_, path: string) => `from '${join(REPO_ROOT, 'dist', path)}'`);
  if (/from '\.\.?\//.test(rewritten)) throw new Error(`${source}: imports other than engine/, plugin/ and packages cannot run from ${out}`);
  mkdirSync(BIN_DIR, { recursive: true });
  writeFileSync(out, rewritten);
  return out;
}
