// Typed IPAM errors. The CNI plugin maps them to CNI error codes, so each
// failure callers branch on has its own class, and every message names the
// object: the config field, the range set, the IP, the store path.

export class IpamError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The ipam config is wrong; `field` is its path, e.g. `ipam.ranges[0][1].rangeStart`,
 * and `value` what it held: `ipam.ranges[0][1].rangeStart "10.1.0.300": not an IP address`.
 */
export class IpamConfigError extends IpamError {
  constructor(
    readonly field: string,
    why: string,
    readonly value?: string,
  ) {
    super(value === undefined ? `${field}: ${why}` : `${field} "${value}": ${why}`);
  }
}

/** The request itself is wrong: a requested IP outside every range set, a bad container ID or ifname. */
export class IpamRequestError extends IpamError {}

/** A range set has no free address left. */
export class IpamExhaustedError extends IpamError {
  constructor(
    readonly rangeSetIndex: number,
    ranges: string,
  ) {
    super(`no free address in range set ${rangeSetIndex} (${ranges})`);
  }
}

/** A requested IP is held by someone else (or the same owner holds another IP in that range set). */
export class IpamConflictError extends IpamError {
  constructor(
    readonly ip: string,
    why: string,
    readonly owner?: { containerId: string; ifname: string },
  ) {
    super(`requested IP ${ip}: ${why}`);
  }
}

/** A filesystem or flock failure in the store, with the errno kept and the path named. */
export class IpamStoreError extends IpamError {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string;

  constructor(syscall: string, path: string, cause: unknown) {
    const e = cause as Partial<NodeJS.ErrnoException>;
    const code = typeof e?.code === 'string' ? e.code : 'EIO';
    // Node's fs errors carry a negative errno, the addon's a positive one.
    const errno = typeof e?.errno === 'number' ? Math.abs(e.errno) : 0;
    super(`ipam store: ${syscall} ${path}: ${reason(cause)}`, { cause });
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
    this.path = path;
  }
}

// The kernel's words and code without the syscall and path the message
// already names: Node writes "ENOENT: no such file or directory, open '…'",
// the addon "flock(LOCK_EX) /dir/lock: Bad file descriptor".
function reason(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const node = /^(E[A-Z0-9]+): ([^,]+)/.exec(cause.message);
  if (node) return `${node[2]} (${node[1]})`;
  const code = (cause as Partial<NodeJS.ErrnoException>).code;
  const colon = cause.message.lastIndexOf(': ');
  const text = colon < 0 ? cause.message : cause.message.slice(colon + 2);
  return code ? `${text} (${code})` : text;
}
