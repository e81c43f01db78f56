// The one loader of ferry's native addon, and the typed face of what it
// exports. Arguments are validated in TypeScript before they cross into C++.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Error thrown by the addon: the kernel's errno and the object it was about. */
export interface NativeError extends Error {
  errno: number;
  code: string;
  syscall: string;
  object?: string;
  /** Extra text, e.g. the BPF verifier log. */
  detail?: string;
}

export interface NativeNetlinkSocket {
  send(datagram: Buffer): void;
  addMembership(group: number): void;
  close(): void;
}

/** A program in an opened (not yet loaded) ELF object, as libbpf parsed it. */
export interface NativeProgramSpec {
  name: string;
  section: string;
  /** libbpf's name for the program type: 'sched_cls', 'xdp', ... */
  type: string;
  autoload: boolean;
}

/** A map in an opened ELF object, as libbpf parsed it. */
export interface NativeMapSpec {
  name: string;
  /** libbpf's name for the map type: 'array', 'hash', 'percpu_array', ... */
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** libbpf's own .data/.rodata/.bss/.kconfig maps. */
  internal: boolean;
  /** Where load() pins it (maps declared with LIBBPF_PIN_BY_NAME). */
  pinPath?: string;
}

/** One struct bpf_object; its fds live until close(). */
export interface NativeBpfObject {
  programs(): NativeProgramSpec[];
  maps(): NativeMapSpec[];
  /** Before load(): the map's max_entries (bpf_map__set_max_entries). */
  setMaxEntries(name: string, maxEntries: number): void;
  /** Creates (and pins) maps and loads programs; rejects with the verifier log in `detail`. */
  load(): Promise<void>;
  programFd(name: string): number;
  mapFd(name: string): number;
  close(): void;
}

/** A live map, from its fd (BPF_OBJ_GET_INFO_BY_FD). */
export interface NativeMapInfo {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

/** A live program, from its fd. */
export interface NativeProgInfo {
  id: number;
  name: string;
  type: string;
  /** Hex of the kernel's program tag (hash of the instructions). */
  tag: string;
}

export type NativeTcAttachment =
  | { mode: 'tcx'; linkFd: number }
  | { mode: 'tc'; handle: number; priority: number; tcxErrno?: number };

export interface NativeTestRunResult {
  /** The program's return value as the kernel reports it (u32). */
  retval: number;
  /** Mean run time per repetition, in nanoseconds. */
  duration: number;
  data: Buffer;
}

/**
 * BPF exports. Map operations copy exactly key_size / value_size bytes
 * to or from the Buffers they are given: callers (engine/bpf/map.ts) must
 * check the sizes first. `label` names the object in errors.
 */
export interface NativeBpf {
  BpfObject: new (path: string, pinRoot?: string) => NativeBpfObject;
  bpfMapLookup(fd: number, key: Buffer, valueOut: Buffer, label: string): boolean;
  bpfMapUpdate(fd: number, key: Buffer, value: Buffer, flags: number, label: string): void;
  bpfMapDelete(fd: number, key: Buffer, label: string): boolean;
  bpfMapNextKey(fd: number, key: Buffer | null, nextOut: Buffer, label: string): boolean;
  bpfMapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags: number, label: string): number;
  bpfMapLookupBatch(
    fd: number,
    inBatch: Buffer | null,
    outBatch: Buffer,
    keysOut: Buffer,
    valuesOut: Buffer,
    count: number,
    label: string,
  ): { count: number; done: boolean };
  bpfMapInfo(fd: number, label: string): NativeMapInfo;
  bpfProgInfo(fd: number, label: string): NativeProgInfo;
  /** BPF_ANY / BPF_NOEXIST / BPF_EXIST from the kernel headers. */
  bpfUpdateFlags: { any: number; noexist: number; exist: number };
  bpfObjPin(fd: number, path: string, label: string): void;
  bpfObjGet(path: string): number;
  /** Mounts bpffs at an existing directory unless it already is one; true when it mounted. */
  bpffsEnsure(path: string): boolean;
  bpfTcAttach(
    nsFd: number,
    nsName: string,
    ifindex: number,
    direction: 'ingress' | 'egress',
    progFd: number,
    mode: 'auto' | 'tcx' | 'tc',
    progLabel: string,
  ): Promise<NativeTcAttachment>;
  bpfTcDetach(
    nsFd: number,
    nsName: string,
    ifindex: number,
    direction: 'ingress' | 'egress',
    handle: number,
    priority: number,
  ): Promise<void>;
  /** Detaches a link and closes its fd (closed even when detaching fails). */
  bpfLinkDetach(linkFd: number, label: string): void;
  bpfProgTestRun(
    fd: number,
    data: Buffer,
    dataOutSize: number,
    ctx: Buffer | null,
    repeat: number,
    label: string,
  ): Promise<NativeTestRunResult>;
}

export interface NativeBinding extends NativeBpf {
  netnsCreate(name: string): Promise<string>;
  netnsDelete(path: string): void;
  netnsOpen(path: string): number;
  closeFd(fd: number): void;
  sysctl(nsFd: number, nsName: string, path: string, value?: string): Promise<string | undefined>;
  /**
   * Calls fn (which must only create sockets, synchronously) with the calling
   * thread in another namespace, and moves the thread back before returning.
   */
  runInNetnsSync<T>(nsFd: number, nsName: string, fn: () => T): T;
  /** Moves the calling worker thread into a namespace; refused on the main thread. */
  enterNetnsOnThisThread(nsFd: number, nsName: string): void;
  netlinkOpen(nsFd: number, nsName: string, protocol: number): Promise<number>;
  NetlinkSocket: new (
    fd: number,
    name: string,
    onMessages: (datagrams: Buffer[]) => void,
    onError: (error: NativeError) => void,
  ) => NativeNetlinkSocket;
  /**
   * Waits (on the libuv pool) for flock(fd, LOCK_EX or LOCK_SH); EINTR is
   * retried. The lock belongs to the open file description, so another open
   * of the same file, even in this process, waits too. `label` (the path)
   * names the object in errors; "fd N" otherwise.
   */
  flock(fd: number, exclusive: boolean, label?: string): Promise<void>;
  /** flock(fd, LOCK_UN), synchronously (unlocking never waits). */
  /** flock with LOCK_NB: false when someone else holds the lock. */
  tryFlock(fd: number, exclusive: boolean, label?: string): boolean;
  funlock(fd: number, label?: string): void;
}

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (isFerryRoot(dir)) return dir;
    if (dirname(dir) === dir) throw new Error(`ferry: cannot find the package root above ${start}`);
  }
}

/** A checkout or an installation: the package.json of the package named ferry. */
function isFerryRoot(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'ferry';
  } catch {
    return false;
  }
}

function load(): NativeBinding {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  // The Makefile copies node-gyp's output here and removes node-gyp's build tree.
  const path = join(root, 'build', 'addon', 'ferry.node');
  if (!existsSync(path)) {
    throw new Error(`ferry: native addon not built (${path} is missing); run \`make\` at ${root}`);
  }
  return createRequire(import.meta.url)(path) as NativeBinding;
}

export const native: NativeBinding = load();
