// Chaining: a plugin given a prevResult must output it "with any possible
// modifications made by that plugin included" (SPEC.md, ADD Success).
import type { Result } from './result.js';

/**
 * `prev` followed by `mine`: interfaces, ips and routes appended, and the
 * `interface` indices of mine's ips moved past prev's interfaces so they
 * still point at mine's. DNS: mine's fields where set, prev's otherwise.
 * Without a prev, mine unchanged (copied).
 */
export function appendResult(prev: Result | undefined, mine: Result): Result {
  const base = prev?.interfaces.length ?? 0;
  return {
    interfaces: [...(prev?.interfaces ?? []), ...mine.interfaces].map((i) => ({ ...i })),
    ips: [
      ...(prev?.ips ?? []).map((c) => ({ ...c })),
      ...mine.ips.map((c) => (c.interface === undefined ? { ...c } : { ...c, interface: c.interface + base })),
    ],
    routes: [...(prev?.routes ?? []), ...mine.routes].map((r) => ({ ...r })),
    dns: {
      ...(prev?.dns ?? {}),
      ...Object.fromEntries(Object.entries(mine.dns).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0) && v !== '')),
    },
  };
}
