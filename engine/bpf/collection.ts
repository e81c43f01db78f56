// A loaded object: its live programs and maps by name. The collection owns
// every fd in it; close() releases them all (pinned maps stay pinned until
// unpinned), and nothing taken from it may be used afterwards.
import { native, type NativeBpfObject, type NativeMapSpec, type NativeProgramSpec } from '../native/binding.js';
import { BpfError, bpfError, wrapNative } from './errors.js';
import { BpfMap } from './map.js';
import { BpfProgram } from './program.js';

export class BpfCollection {
  readonly path: string;
  readonly programs: ReadonlyMap<string, BpfProgram>;
  readonly maps: ReadonlyMap<string, BpfMap>;
  readonly #native: NativeBpfObject;
  #closed = false;

  private constructor(path: string, handle: NativeBpfObject) {
    this.path = path;
    this.#native = handle;
    this.programs = new Map();
    this.maps = new Map();
  }

  /** Made by BpfObject.load(); not for direct use. */
  static fromLoaded(
    path: string,
    handle: NativeBpfObject,
    programs: NativeProgramSpec[],
    maps: NativeMapSpec[],
  ): BpfCollection {
    const collection = new BpfCollection(path, handle);
    const programsByName = collection.programs as Map<string, BpfProgram>;
    const mapsByName = collection.maps as Map<string, BpfMap>;
    wrapNative(() => {
      for (const spec of programs) {
        const fd = handle.programFd(spec.name);
        const info = { ...native.bpfProgInfo(fd, `program ${spec.name}`), name: spec.name };
        programsByName.set(spec.name, new BpfProgram(fd, info, { owner: collection }));
      }
      for (const spec of maps) {
        const fd = handle.mapFd(spec.name);
        const info = { ...native.bpfMapInfo(fd, `map ${spec.name}`), name: spec.name };
        const options = spec.pinPath !== undefined ? { owner: collection, pinPath: spec.pinPath } : { owner: collection };
        mapsByName.set(spec.name, new BpfMap(fd, info, options));
      }
    });
    return collection;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The program called `name`; throws ENOENT naming it when absent. */
  program(name: string): BpfProgram {
    const program = this.programs.get(name);
    if (program === undefined) throw bpfError(BpfError, 'ENOENT', 'program', `${name} in ${this.path}`, 'no such program');
    return program;
  }

  /** The map called `name`; throws ENOENT naming it when absent. */
  map(name: string): BpfMap {
    const map = this.maps.get(name);
    if (map === undefined) throw bpfError(BpfError, 'ENOENT', 'map', `${name} in ${this.path}`, 'no such map');
    return map;
  }

  /** Closes every program and map fd; idempotent. Pins are left in place. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }
}
