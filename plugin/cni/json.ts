// Decoding stdin's JSON with an error that says where it went wrong. V8's
// JSON.parse messages give no position for some errors ("Unexpected token
// '}', "…" is not valid JSON") and quote the input back; ferry reports a
// line, column and offset instead, found by a small scanner of its own.
import { decodingFailure, quote } from './errors.js';

/**
 * Deepest nesting accepted. No CNI config or result comes near it (they are
 * 5–6 deep); the limit keeps every later recursive walk of the value (zod,
 * pino, JSON.stringify) far from the stack limit, whatever arrives on stdin.
 */
export const MAX_JSON_DEPTH = 64;

interface Problem {
  offset: number;
  reason: string;
}

/** Parses `text`; CniError 6 naming `what`, the reason and the position when it is not JSON. */
export function decodeJson(text: string, what: string): unknown {
  const problem = scanJson(text);
  if (problem) {
    const { line, column } = lineColumn(text, problem.offset);
    throw decodingFailure(`${what} is not valid JSON: ${problem.reason} at line ${line}, column ${column} (offset ${problem.offset})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    // The scanner and V8 disagree: report V8's words, cut short (they quote the input).
    throw decodingFailure(`${what} is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

type State = 'value' | 'valueOrClose' | 'key' | 'keyOrClose' | 'colon' | 'commaOrClose' | 'done';

/**
 * The first syntax error in `text` by RFC 8259 (what JSON.parse accepts), or
 * nesting deeper than MAX_JSON_DEPTH; undefined when there is none.
 * Iterative, so deep input cannot overflow the stack.
 */
export function scanJson(text: string): Problem | undefined {
  const stack: number[] = []; // 0x7b '{' or 0x5b '['
  let state: State = 'value';
  let i = 0;
  const n = text.length;
  const after = (): State => (stack.length ? 'commaOrClose' : 'done');
  const unexpected = (what: string): Problem => ({ offset: i, reason: `${what}, found ${describe(text, i)}` });

  for (;;) {
    while (i < n && isWhitespace(text.charCodeAt(i))) i++;
    if (i >= n) {
      if (state === 'done') return undefined;
      return { offset: i, reason: n === 0 || text.trim() === '' ? 'empty input' : 'unexpected end of input' };
    }
    const c = text.charCodeAt(i);
    switch (state) {
      case 'done':
        return unexpected('expected end of input after the JSON value');
      case 'colon':
        if (c !== 0x3a) return unexpected("expected ':' after property name");
        i++;
        state = 'value';
        break;
      case 'commaOrClose': {
        const open = stack[stack.length - 1]!;
        const close = open === 0x7b ? 0x7d : 0x5d;
        if (c === 0x2c) {
          i++;
          state = open === 0x7b ? 'key' : 'value';
        } else if (c === close) {
          i++;
          stack.pop();
          state = after();
        } else {
          return unexpected(`expected ',' or '${String.fromCharCode(close)}'`);
        }
        break;
      }
      case 'key':
      case 'keyOrClose':
        if (state === 'keyOrClose' && c === 0x7d) {
          i++;
          stack.pop();
          state = after();
        } else if (c === 0x22) {
          const p = scanString(text, i);
          if (typeof p !== 'number') return p;
          i = p;
          state = 'colon';
        } else {
          return unexpected(state === 'key' ? 'expected a property name in double quotes' : "expected a property name in double quotes or '}'");
        }
        break;
      case 'value':
      case 'valueOrClose':
        if (state === 'valueOrClose' && c === 0x5d) {
          i++;
          stack.pop();
          state = after();
        } else if (c === 0x7b || c === 0x5b) {
          if (stack.length >= MAX_JSON_DEPTH) return { offset: i, reason: `nesting deeper than ${MAX_JSON_DEPTH} levels` };
          stack.push(c);
          i++;
          state = c === 0x7b ? 'keyOrClose' : 'valueOrClose';
        } else if (c === 0x22) {
          const p = scanString(text, i);
          if (typeof p !== 'number') return p;
          i = p;
          state = after();
        } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          const p = scanNumber(text, i);
          if (typeof p !== 'number') return p;
          i = p;
          state = after();
        } else {
          const literal = ['true', 'false', 'null'].find((w) => text.startsWith(w, i));
          if (!literal) return unexpected(state === 'value' ? 'expected a JSON value' : "expected a JSON value or ']'");
          i += literal.length;
          state = after();
        }
        break;
    }
  }
}

/** Index just past the string starting at `start` (a '"'), or the problem in it. */
function scanString(text: string, start: number): number | Problem {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return { offset: i, reason: `control character ${describe(text, i)} in string` };
    if (c === 0x5c) {
      const e = text[i + 1];
      if (e === undefined) break;
      if (e === 'u') {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return { offset: i, reason: 'bad \\u escape in string' };
        i += 6;
        continue;
      }
      if (!'"\\/bfnrt'.includes(e)) return { offset: i, reason: `bad escape ${quote(`\\${e}`)} in string` };
      i += 2;
      continue;
    }
    i++;
  }
  return { offset: start, reason: 'unterminated string' };
}

/** Index just past the number starting at `start`, or the problem in it. */
function scanNumber(text: string, start: number): number | Problem {
  const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  m.lastIndex = start;
  const match = m.exec(text);
  if (!match || match[0] === '-') return { offset: start, reason: 'malformed number' };
  const end = start + match[0].length;
  // "1." / "1e" / "01": the regex stopped early; the next character belongs to a malformed number.
  const next = text.charCodeAt(end);
  if (next === 0x2e || next === 0x65 || next === 0x45 || (next >= 0x30 && next <= 0x39)) {
    return { offset: end, reason: 'malformed number' };
  }
  return end;
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function describe(text: string, i: number): string {
  const cp = text.codePointAt(i);
  return cp === undefined ? 'end of input' : quote(String.fromCodePoint(cp));
}
