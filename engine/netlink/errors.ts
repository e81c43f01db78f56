// Netlink errors keep the kernel's errno and its extended-ack text, and name
// the operation and object, e.g.
//   `ip link add veth0 in netns node-1: File exists (EEXIST): kernel says "..."`.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

// libuv's table, keyed by negative errno: [code, message]. It lacks some
// errnos netlink returns (ENOMSG, EBADMSG, EINPROGRESS…) and calls 95 ENOTSUP.
const systemErrors = getSystemErrorMap();

// Linux's names for every errno Node knows, first name wins (EAGAIN before
// EWOULDBLOCK); 95 is EOPNOTSUPP, as the kernel and strerrorname_np(3) spell it.
const errnoNames = new Map<number, string>([[constants.errno.EOPNOTSUPP, 'EOPNOTSUPP']]);
for (const [name, errno] of Object.entries(constants.errno)) if (!errnoNames.has(errno)) errnoNames.set(errno, name);

// Where libuv's text is about sockets but rtnetlink means the feature is missing.
const texts = new Map<number, string>([[constants.errno.EOPNOTSUPP, 'operation not supported']]);

/** `ENOENT` for 2, and so on; `E<n>` when the number is unknown. */
export function errnoCode(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** libuv's strerror-like text: `file already exists` for 17; `errno <n>` when unknown. */
export function errnoText(errno: number): string {
  return texts.get(errno) ?? systemErrors.get(-errno)?.[1] ?? `errno ${errno}`;
}

/** An error from the kernel (or from ferry acting for it) about one rtnetlink operation. */
export class NetlinkError extends Error {
  override readonly name: string = 'NetlinkError';
  readonly errno: number;
  readonly code: string;
  readonly syscall = 'netlink';
  /** What was being done, in `ip` terms: `ip link add`. */
  readonly op: string;
  /** The object it was done to: `veth0 in netns node-1`. */
  readonly object: string;
  readonly extack: string | undefined;

  constructor(op: string, object: string, errno: number, extack?: string) {
    const code = errnoCode(errno);
    super(`${op} ${object}: ${errnoText(errno)} (${code})${extack ? `: kernel says "${extack}"` : ''}`);
    this.op = op;
    this.object = object;
    this.errno = errno;
    this.code = code;
    this.extack = extack;
  }
}

/** A link named in a request does not exist (ENODEV): callers branch on it. */
export class LinkNotFoundError extends NetlinkError {
  override readonly name = 'LinkNotFoundError';
}

/** The object already exists (EEXIST). */
export class ExistsError extends NetlinkError {
  override readonly name = 'ExistsError';
}

/** The object to delete or read does not exist (ESRCH/ENOENT/EADDRNOTAVAIL). */
export class NotFoundError extends NetlinkError {
  override readonly name = 'NotFoundError';
}

/** Builds the most specific error class for an errno. */
export function netlinkError(op: string, object: string, errno: number, extack?: string): NetlinkError {
  switch (errnoCode(errno)) {
    case 'ENODEV':
      return new LinkNotFoundError(op, object, errno, extack);
    case 'EEXIST':
      return new ExistsError(op, object, errno, extack);
    case 'ESRCH':
    case 'ENOENT':
    case 'EADDRNOTAVAIL':
      return new NotFoundError(op, object, errno, extack);
    default:
      return new NetlinkError(op, object, errno, extack);
  }
}

/** Invalid input caught before anything was sent (EINVAL), naming the field. */
export class InvalidArgumentError extends NetlinkError {
  override readonly name = 'InvalidArgumentError';
  constructor(op: string, object: string, reason: string) {
    super(op, object, constants.errno.EINVAL, reason);
    this.message = `${op} ${object}: ${reason} (EINVAL)`;
  }
}
