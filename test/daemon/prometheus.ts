// A Prometheus text exposition (format 0.0.4) parsed into samples, for
// tests that scrape /metrics: `name{label="v",…}` → value.
export type Samples = Map<string, number>;

export function parsePrometheus(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return samples;
}

/** The value of `key` (`name` or `name{labels}`); throws when the exposition lacks it. */
export function sample(samples: Samples, key: string): number {
  const value = samples.get(key);
  if (value === undefined) throw new Error(`no sample ${key} among ${[...samples.keys()].filter((k) => k.startsWith(key.split('{')[0]!)).join(', ') || 'none of that name'}`);
  return value;
}
