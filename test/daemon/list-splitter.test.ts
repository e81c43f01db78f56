// ListSplitter (plugin/daemon/list-splitter.ts): a list's items and the
// rest of it come out as JSON.parse reads the whole text, however the text
// is cut into chunks.
import { describe, expect, it } from 'vitest';
import { ListSplitter } from '../../plugin/daemon/list-splitter.js';

/** The items (parsed) and the rest of `text` written in chunks of `size` characters. */
function split(text: string, size: number): { items: unknown[]; rest: unknown } {
  const items: unknown[] = [];
  const splitter = new ListSplitter((item) => items.push(JSON.parse(item)));
  for (let i = 0; i < text.length; i += size) splitter.write(text.slice(i, i + size));
  return { items, rest: splitter.end() };
}

/** What the splitter must give for `text`: the parsed items, and the document with "items" emptied. */
function expected(text: string): { items: unknown[]; rest: unknown } {
  const whole = JSON.parse(text) as { items?: unknown };
  if (!Array.isArray(whole.items)) return { items: [], rest: whole };
  return { items: whole.items, rest: { ...whole, items: [] } };
}

const LIST = JSON.stringify({
  kind: 'EndpointSliceList',
  apiVersion: 'discovery.k8s.io/v1',
  metadata: { resourceVersion: '42', items: ['not', 'these'] },
  items: [
    {
      metadata: { name: 'web-a', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' }, annotations: { note: 'a "quoted" {brace} [bracket], comma \\ backslash' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }],
    },
    { metadata: { name: 'ünïcødé-✓', items: [{}] }, endpoints: [] },
    { metadata: { name: 'empty' } },
  ],
});

describe('ListSplitter', () => {
  it('gives the items and the rest as JSON.parse does, at any chunk size', () => {
    for (const size of [1, 2, 3, 7, 64, LIST.length]) expect(split(LIST, size)).toEqual(expected(LIST));
  });

  it('hands each item on as soon as it is complete (at the comma after it)', () => {
    const seen: string[] = [];
    const splitter = new ListSplitter((item) => seen.push((JSON.parse(item) as { metadata: { name: string } }).metadata.name));
    const first = LIST.indexOf('}]},') + 4;
    splitter.write(LIST.slice(0, first));
    expect(seen).toEqual(['web-a']);
    splitter.write(LIST.slice(first));
    expect(seen).toEqual(['web-a', 'ünïcødé-✓', 'empty']);
  });

  it('takes whitespace, members in any order, an empty list and items that are not an array', () => {
    const texts = [
      ' { "items" : [ {"a":1} ,\n\t{"b":[2,{"c":"}"}]} ] , "metadata" : {"resourceVersion":"7"} } ',
      '{"kind":"ServiceList","items":[]}',
      '{"kind":"ServiceList","items":null}',
      '{"kind":"ServiceList"}',
      '{"items":["x",3,null,[1,2]]}',
    ];
    for (const text of texts) for (const size of [1, 5, text.length]) expect(split(text, size)).toEqual(expected(text));
  });

  it('fails on what is not JSON', () => {
    for (const text of ['{"items":[{"a":1}', '{"items":[{"a":1},]}', '{"items":[,{"a":1}]}', '{"items":[{"a":}]}', '{"kind":"x",}']) {
      expect(() => split(text, 3), text).toThrow(SyntaxError);
    }
  });
});
