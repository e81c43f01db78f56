// The one loader of ferry's native addon, and the typed face of what it
// exports. Arguments are validated in TypeScript before they cross into C++.
import { existsSync } from 'node:fs';
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

export interface NativeBinding {
  netnsCreate(name: string): Promise<string>;
  netnsDelete(path: string): void;
  netnsOpen(path: string): number;
  closeFd(fd: number): void;
  sysctl(nsFd: number, nsName: string, path: string, value?: string): Promise<string | undefined>;
  netlinkOpen(nsFd: number, nsName: string, protocol: number): Promise<number>;
  NetlinkSocket: new (
    fd: number,
    name: string,
    onMessages: (datagrams: Buffer[]) => void,
    onError: (error: NativeError) => void,
  ) => NativeNetlinkSocket;
}

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'addon'))) return dir;
    if (dirname(dir) === dir) throw new Error(`ferry: cannot find the package root above ${start}`);
  }
}

function load(): NativeBinding {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  const path = join(root, 'addon', 'build', 'Release', 'ferry.node');
  if (!existsSync(path)) {
    throw new Error(`ferry: native addon not built (${path} is missing); run \`make\` at ${root}`);
  }
  return createRequire(import.meta.url)(path) as NativeBinding;
}

export const native: NativeBinding = load();
