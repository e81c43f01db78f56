// stdin JSON: errors with a position, and a depth limit.
import { describe, expect, it } from 'vitest';
import { CniError } from '../../plugin/cni/errors.js';
import { decodeJson, MAX_JSON_DEPTH, scanJson } from '../../plugin/cni/json.js';
import { mutateText, Rng, validConfig } from './fuzz-inputs.js';

function problem(text: string): string {
  try {
    decodeJson(text, 'network config');
  } catch (e) {
    expect((e as CniError).code).toBe(6);
    return (e as CniError).msg;
  }
  throw new Error(`decoded ${text}`);
}

describe('decodeJson', () => {
  it('decodes JSON', () => {
    expect(decodeJson(' {"a": [1, -2.5e3, "x\\u00e9", true, null]} ', 'x')).toEqual({ a: [1, -2500, 'xé', true, null] });
  });

  it('says where the JSON breaks', () => {
    expect(problem('{"cniVersion": "1.1.0", "name": }')).toBe(
      'network config is not valid JSON: expected a JSON value, found "}" at line 1, column 33 (offset 32)',
    );
    expect(problem('{\n  "a": 1\n  "b": 2\n}')).toBe(`network config is not valid JSON: expected ',' or '}', found "\\"" at line 3, column 3 (offset 13)`);
    expect(problem('{"a": 1')).toMatch(/unexpected end of input at line 1, column 8 \(offset 7\)$/);
    expect(problem('')).toMatch(/empty input at line 1, column 1/);
    expect(problem('{"a": "x\u0001"}')).toMatch(/control character "\\u0001" in string at line 1, column 9/);
    expect(problem('[1,]')).toMatch(/expected a JSON value, found "]" at line 1, column 4/);
    expect(problem('{"a":01}')).toMatch(/malformed number at line 1, column 7/);
    expect(problem('{"a":1.}')).toMatch(/malformed number/);
    expect(problem('{"a":-}')).toMatch(/malformed number/);
    expect(problem('{"a":"\\x"}')).toMatch(/bad escape "\\\\x" in string/);
    expect(problem('{"a":"\\u12"}')).toMatch(/bad \\u escape/);
    expect(problem('{"a":"abc')).toMatch(/unterminated string at line 1, column 6/);
    expect(problem('{} {}')).toMatch(/expected end of input after the JSON value, found "{" at line 1, column 4/);
    expect(problem("{'a': 1}")).toMatch(/expected a property name in double quotes or '}'/);
    expect(problem('{"a" 1}')).toMatch(/expected ':' after property name/);
    expect(problem('tru')).toMatch(/expected a JSON value, found "t"/);
  });

  it('refuses nesting deeper than the limit, without recursion', () => {
    const ok = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);
    expect(scanJson(ok)).toBeUndefined();
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(problem(deep)).toBe(`network config is not valid JSON: nesting deeper than ${MAX_JSON_DEPTH} levels at line 1, column ${MAX_JSON_DEPTH + 1} (offset ${MAX_JSON_DEPTH})`);
  });

  it('agrees with JSON.parse on what is JSON', () => {
    const samples = ['1', '"x"', 'null', '[]', '{}', ' [ 1 , { "a" : [ ] } ] ', '1e5', '-0', '0.5E-3', '"\\ud800"', '[1 2]', '{"a":1,}', '"\t"', '+1', '.5', 'NaN', '"\\/"'];
    for (const s of samples) {
      let parses = true;
      try {
        JSON.parse(s);
      } catch {
        parses = false;
      }
      expect([s, scanJson(s) === undefined]).toEqual([s, parses]);
    }
  });

  it('agrees with JSON.parse on 20,000 damaged configs', () => {
    const r = new Rng(7);
    for (let n = 0; n < 20_000; n++) {
      let text = JSON.stringify(validConfig(r));
      for (let k = 1 + r.int(3); k > 0; k--) text = mutateText(r, text);
      const problem = scanJson(text);
      // The scanner may refuse more (depth), never less.
      if (problem?.reason.startsWith('nesting deeper')) continue;
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      if ((problem === undefined) !== parses) expect.fail(`sample ${n}: JSON.parse ${parses ? 'accepts' : 'refuses'} ${JSON.stringify(text.slice(0, 300))}`);
    }
  });
});
