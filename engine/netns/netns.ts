// Network namespaces by name (/var/run/netns/NAME, as `ip netns` keeps them)
// or by any nsfs path (/proc/PID/ns/net). A Netns holds an open fd so the
// namespace cannot vanish under a handle that uses it.
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { native, type NativeError } from '../native/binding.js';

export const NETNS_RUN_DIR = '/var/run/netns';

/** Failure to create, open or delete a namespace; keeps errno and names the path. */
export class NetnsError extends Error {
  override readonly name = 'NetnsError';
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  constructor(
    readonly op: string,
    readonly path: string,
    cause: NativeError,
  ) {
    super(`${op} ${path}: ${cause.message.replace(/^.*?: /, '')}${cause.detail ? ` (${cause.detail})` : ''}`, { cause });
    this.errno = cause.errno;
    this.code = cause.code;
    this.syscall = cause.syscall;
  }
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;

/**
 * `NAME` → /var/run/netns/NAME; a path is returned as is. A name must be a
 * plain file name: "", "." and ".." would reach /var/run/netns itself or /run.
 */
export function netnsPath(op: string, nameOrPath: string): string {
  if (nameOrPath.includes('/')) return nameOrPath;
  const path = `${NETNS_RUN_DIR}/${nameOrPath}`;
  if (!NAME_RE.test(nameOrPath) || nameOrPath === '.' || nameOrPath === '..') {
    throw new NetnsError(op, path, invalid(`invalid namespace name "${nameOrPath}"`));
  }
  return path;
}

export class Netns {
  private closed = false;

  private constructor(
    /** An open nsfs descriptor; -1 never (use Netns.current()). */
    readonly fd: number,
    /** The path this was opened from. */
    readonly path: string,
    /** A short name for messages: the `ip netns` name, or the path. */
    readonly name: string,
  ) {}

  /** Equivalent to: `ip netns add NAME`; returns the namespace, open. */
  static async create(name: string): Promise<Netns> {
    const path = `${NETNS_RUN_DIR}/${name}`;
    if (!NAME_RE.test(name) || name === '.' || name === '..') {
      throw new NetnsError('ip netns add', path, invalid(`invalid namespace name "${name}"`));
    }
    try {
      await native.netnsCreate(name);
    } catch (e) {
      throw new NetnsError('ip netns add', path, e as NativeError);
    }
    return Netns.open(path);
  }

  /** Opens a namespace by `ip netns` name or nsfs path; checks that it is a network namespace. */
  static open(nameOrPath: string): Netns {
    const path = netnsPath('open netns', nameOrPath);
    try {
      const fd = native.netnsOpen(path);
      return new Netns(fd, path, path.startsWith(`${NETNS_RUN_DIR}/`) ? basename(path) : path);
    } catch (e) {
      throw new NetnsError('open netns', path, e as NativeError);
    }
  }

  /** The namespace ferry's process runs in (the host's, for a node agent). */
  static current(): Netns {
    return Netns.open('/proc/self/ns/net');
  }

  /**
   * Equivalent to: `ip netns delete NAME`. Throws NetnsError ENOENT when absent.
   * A directory is refused: its unmount would take every namespace under it along.
   */
  static delete(nameOrPath: string): void {
    const path = netnsPath('ip netns delete', nameOrPath);
    if (isDirectory(path)) {
      throw new NetnsError('ip netns delete', path, invalid('is a directory, not a network namespace'));
    }
    try {
      native.netnsDelete(path);
    } catch (e) {
      throw new NetnsError('ip netns delete', path, e as NativeError);
    }
  }

  /** Reads a per-namespace sysctl, e.g. `net.ipv4.ip_forward`. Equivalent to: `ip netns exec NS sysctl KEY`. */
  async sysctlGet(key: string): Promise<string> {
    try {
      return ((await native.sysctl(this.fd, this.name, sysctlPath(key))) ?? '').trim();
    } catch (e) {
      throw new NetnsError(`sysctl ${key} in netns`, this.name, e as NativeError);
    }
  }

  /** Writes a per-namespace sysctl. Equivalent to: `ip netns exec NS sysctl -w KEY=VALUE`. */
  async sysctlSet(key: string, value: string | number): Promise<void> {
    try {
      await native.sysctl(this.fd, this.name, sysctlPath(key), String(value));
    } catch (e) {
      throw new NetnsError(`sysctl -w ${key}=${value} in netns`, this.name, e as NativeError);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.closeFd(this.fd);
  }
}

/** `net.ipv4.conf.eth0.forwarding` → /proc/sys/net/ipv4/conf/eth0/forwarding (only net.*). */
export function sysctlPath(key: string): string {
  if (!/^net[./][A-Za-z0-9_.\-/]+$/.test(key) || key.includes('..')) {
    throw new NetnsError('sysctl', key, invalid(`"${key}" is not a per-namespace net.* sysctl`));
  }
  // Interface names may contain dots: with '/' separators (as sysctl(8) accepts) dots are kept.
  return `/proc/sys/${key.includes('/') ? key : key.replace(/\./g, '/')}`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // missing or unreadable: the unmount reports why
  }
}

function invalid(reason: string): NativeError {
  return Object.assign(new Error(`x: ${reason}`), { errno: 22, code: 'EINVAL', syscall: 'validate' });
}
