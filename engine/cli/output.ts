// How the `ferry` command prints: aligned, borderless tables for people
// (kubectl-style, colour only on a terminal), JSON for scripts, durations
// in a short human form, and errors as one line on stderr with exit code 1.
import Table from 'cli-table3';

export type OutputFormat = 'table' | 'json';

/** Colour only on a terminal, and never with NO_COLOR set (https://no-color.org). */
export function useColour(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR;
}

const SGR = { bold: [1, 22], yellow: [33, 39], red: [31, 39], dim: [2, 22] } as const;

/** Wraps `text` in an SGR colour when stdout is a terminal; unchanged otherwise. */
export function paint(style: keyof typeof SGR, text: string): string {
  if (!useColour() || text === '') return text;
  const [on, off] = SGR[style];
  return `\x1b[${on}m${text}\x1b[${off}m`;
}

const NO_BORDERS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '  ',
} as const;

/** Columns aligned, two spaces apart, upper-case headings; no trailing blanks. */
export function renderTable(head: string[], rows: Array<Array<string | number>>, options: { alignRight?: number[] } = {}): string {
  const table = new Table({
    head: head.map((h) => paint('bold', h)),
    chars: NO_BORDERS,
    style: { 'padding-left': 0, 'padding-right': 0, head: [], border: [], compact: true },
    colAligns: head.map((_, i) => (options.alignRight?.includes(i) ? 'right' : 'left')),
  });
  for (const row of rows) table.push(row.map(String));
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** `850ms`, `12.3s`, `5m12s`, `5h59m`, `2d3h`. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (abs < 1000) return `${sign}${Math.round(abs)}ms`;
  if (abs < 60_000) return `${sign}${(abs / 1000).toFixed(abs < 10_000 ? 1 : 0)}s`;
  const s = Math.floor(abs / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86_400) return `${sign}${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${sign}${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

/**
 * Runs a command's action: an error becomes `ferry <command>: <message>` on
 * stderr and exit code 1, without a stack trace (FERRY_DEBUG=1 shows it).
 */
export function action<A extends unknown[]>(name: string, fn: (...args: A) => void | Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      process.stderr.write(`ferry ${name}: ${message}\n`);
      if (process.env.FERRY_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
      process.exitCode = 1;
    }
  };
}
