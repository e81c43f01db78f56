// zod's issues as CNI error text that names the key path and what was wrong:
// `mtu: expected number, got string`, `ipam.ranges[0][0].subnet "10.0.0.0":
// expected an address with a /prefix`.
import { z } from 'zod';
import { CniError, quote } from './errors.js';

/**
 * A zod check that runs `problem` on the value and, when it names one, adds
 * an issue carrying the value (so the message can quote it).
 */
export function refineWith<T>(problem: (value: T) => string | undefined) {
  return (value: T, ctx: z.RefinementCtx): void => {
    const why = problem(value);
    if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: why, params: { value } });
  };
}

/** `ipam.ranges[0][1].subnet`; keys that are not identifiers are bracketed below the top level. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (out === '') out = part;
    else out += /^[A-Za-z_$][\w$]*$/.test(part) ? `.${part}` : `[${JSON.stringify(part)}]`;
  }
  return out || '(top level)';
}

/** The value at `path` in `input`, for messages that quote it. */
function valueAt(input: unknown, path: readonly (string | number)[]): unknown {
  let v = input;
  for (const part of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string | number, unknown>)[part];
  }
  return v;
}

/** One issue as one line; `base` is where `input` sits in the document (e.g. ['prevResult']). */
export function describeIssue(issue: z.ZodIssue, input: unknown, base: readonly (string | number)[] = []): string {
  const path = formatPath([...base, ...issue.path]);
  const value = valueAt(input, issue.path);
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.received === 'undefined') return `${path}: required`;
      if (issue.expected === 'integer' && issue.received === 'float') return `${path}: expected an integer, got ${quote(value)}`;
      // zod spells an enum's expected type `'routed' | 'bridge'`.
      if (issue.expected.includes(' | ')) {
        const options = issue.expected.split(' | ').map((o) => (/^'.*'$/.test(o) ? quote(o.slice(1, -1)) : o));
        return `${path}: expected one of ${options.join(', ')}, got ${issue.received}`;
      }
      return `${path}: expected ${issue.expected}, got ${issue.received}`;
    case z.ZodIssueCode.invalid_literal:
      return `${path}: expected ${quote(issue.expected)}, got ${quote(value)}`;
    case z.ZodIssueCode.invalid_enum_value:
      return `${path}: expected one of ${issue.options.map((o) => quote(o)).join(', ')}, got ${quote(value)}`;
    case z.ZodIssueCode.too_small:
      if (issue.type === 'array') return `${path}: must have at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}`;
      if (issue.type === 'string') return `${path}: must not be empty`;
      return `${path}: must be at least ${issue.minimum}, got ${quote(value)}`;
    case z.ZodIssueCode.too_big:
      if (issue.type === 'array') return `${path}: must have at most ${issue.maximum} entries`;
      if (issue.type === 'string') return `${path}: must be at most ${issue.maximum} characters`;
      return `${path}: must be at most ${issue.maximum}, got ${quote(value)}`;
    case z.ZodIssueCode.not_finite:
      return `${path}: must be a finite number`;
    case z.ZodIssueCode.custom: {
      const params = issue.params as { value?: unknown } | undefined;
      return params && 'value' in params ? `${path} ${quote(params.value)}: ${issue.message}` : `${path}: ${issue.message}`;
    }
    default:
      return `${path}: ${issue.message}`;
  }
}

/**
 * A CniError with `code` for a failed parse: the first issue is the message;
 * when there are more, all of them are the details, one per line.
 */
export function issuesError(code: number, error: z.ZodError, input: unknown, base: readonly (string | number)[] = []): CniError {
  const lines = error.issues.map((i) => describeIssue(i, input, base));
  return new CniError(code, lines[0] ?? 'invalid', lines.length > 1 ? lines.join('\n') : undefined);
}
