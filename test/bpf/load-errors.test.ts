// Failures name what failed and keep the kernel's errno: a verifier
// rejection with its log, a missing object file, a missing interface.
import { describe, expect, it } from 'vitest';

import { attachTc, BpfError, BpfObject } from '../../engine/bpf/index.js';
import { isRoot, makeNetns } from '../support/netns.js';
import { bpfObject, defer, openNetns, pinDir } from './support.js';

async function rejection(promise: Promise<unknown>): Promise<BpfError> {
  try {
    await promise;
  } catch (e) {
    return e as BpfError;
  }
  throw new Error('expected a rejection');
}

describe.skipIf(!isRoot)('BPF errors (needs root: BPF, namespaces)', () => {
  it('surfaces the verifier log and errno when a program is rejected', async () => {
    const spec = BpfObject.open(bpfObject('test_invalid'));
    expect(spec.programs.map((p) => p.name)).toEqual(['test_invalid_unchecked_read']);
    const error = await rejection(spec.load());
    expect(error).toBeInstanceOf(BpfError);
    expect(error.code).toBe('EACCES');
    expect(error.errno).toBe(13);
    expect(error.syscall).toBe('BPF_PROG_LOAD');
    expect(error.object).toMatch(/test_invalid\.o program test_invalid_unchecked_read$/);
    expect(error.verifierLog).toMatch(/invalid access to packet/);
    expect(error.message).toMatch(/invalid access to packet|outside of the packet/);
    // A failed load releases everything: nothing to close, and no second try.
    expect(() => spec.programs).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('gives ENOENT naming the path for a missing object file', () => {
    const path = '/nonexistent/ferry/missing.o';
    expect(() => BpfObject.open(path)).toThrow(
      expect.objectContaining({ code: 'ENOENT', errno: 2, syscall: 'bpf_object__open_file', object: path }),
    );
  });

  it('names the interface index and keeps errno when attaching to a missing interface', async () => {
    const ns = openNetns(makeNetns('ferry-bpf-err'));
    const collection = await BpfObject.open(bpfObject('smoke_counter'), { pinRoot: pinDir() }).load();
    defer(() => collection.close());
    const program = collection.program('smoke_ingress');
    for (const mode of ['auto', 'tc'] as const) {
      const error = await rejection(attachTc({ netns: ns, ifindex: 9999, direction: 'ingress', program, mode }));
      expect(error).toBeInstanceOf(BpfError);
      expect(error.code).toBe('ENODEV');
      expect(error.errno).toBe(19);
      expect(error.object).toContain('ifindex 9999 ingress');
      expect(error.object).toContain(ns.name);
    }
  });

  it('validates attach arguments before crossing into C++', async () => {
    const collection = await BpfObject.open(bpfObject('smoke_counter'), { pinRoot: pinDir() }).load();
    defer(() => collection.close());
    const program = collection.program('smoke_ingress');
    await expect(attachTc({ ifindex: 0, direction: 'ingress', program })).rejects.toThrow(RangeError);
    await expect(attachTc({ ifindex: 1, direction: 'sideways' as never, program })).rejects.toThrow(TypeError);
    await expect(attachTc({ ifindex: 1, direction: 'ingress', program, mode: 'xdp' as never })).rejects.toThrow(TypeError);
    expect(() => collection.program('nope')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
