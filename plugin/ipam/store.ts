// host-local's on-disk store, read and written the same way, so ferry can
// take over a node's /var/lib/cni/networks/<network> and host-local could
// read ferry's: one file per allocated IP, named by the IP and holding
// "containerId\r\nifname"; last_reserved_ip.<range set index> for round
// robin; a `lock` file whose flock serializes every allocation.
//
// Every method but withLock expects the caller to hold the lock (the
// allocator does); reads without it see whole records, never half-written ones.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { canonicalAddress } from './address.js';
import { IpamRequestError, IpamStoreError } from './errors.js';
import { withFileLock } from './lock.js';
import { type Owner, checkOwner, formatRecord, ownedBy, parseRecord } from './record.js';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';
const LOCK_FILE = 'lock';
const LAST_RESERVED_PREFIX = 'last_reserved_ip.';
// Temporary names start with '.', which no IP does, so no reader takes them for records.
const TEMP_PREFIX = '.tmp-';

export interface IpamRecord extends Owner {
  ip: string;
}

/** A file named by an IP whose content is not a record (a crashed writer, a hand edit). */
export interface InvalidRecord {
  ip: string;
  path: string;
  reason: string;
}

export class IpamStore {
  /** `${dataDir}/${networkName}`; created on first withLock. */
  readonly dir: string;

  constructor(
    readonly networkName: string,
    dataDir: string = DEFAULT_DATA_DIR,
  ) {
    if (networkName === '' || networkName === '.' || networkName === '..' || networkName.includes('/') || networkName.includes('\0')) {
      throw new IpamRequestError(`network name "${networkName}": may not be empty, "." or "..", or contain '/'`);
    }
    this.dir = join(dataDir, networkName);
  }

  /** Runs fn holding the store's exclusive lock; other processes' allocations wait. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await fsCall('mkdir', this.dir, () => mkdir(this.dir, { recursive: true, mode: 0o755 }));
    return withFileLock(join(this.dir, LOCK_FILE), fn);
  }

  /**
   * Records `ip` as owned by (containerId, ifname); false when it already is
   * someone's. Also remembers it as the last IP reserved in its range set.
   */
  async reserve(ip: string, containerId: string, ifname: string, rangeSetIndex: number): Promise<boolean> {
    const name = fileName(ip);
    const why = checkOwner({ containerId, ifname });
    if (why) throw new IpamRequestError(`reserve ${name}: ${why}`);
    // The record is written whole under a temporary name, synced, then
    // link()ed to its IP's name. link fails with EEXIST when the name is
    // taken, so it claims the IP as atomically as O_EXCL does, and the record
    // appears with its content: a crash leaves either no record or a whole
    // one (and maybe a temp file), never an empty file that holds an IP for
    // no one. (O_EXCL create-then-write would leave exactly that.)
    //
    // Synchronous on purpose: a reservation runs under the store's lock, so
    // nothing could overlap it anyway, and a dozen tiny file operations done
    // directly cost far less than a dozen round trips through libuv's pool.
    const path = join(this.dir, name);
    const made = this.writeTemp(formatRecord({ containerId, ifname }), { durable: true });
    try {
      linkSync(made, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new IpamStoreError('link', path, e);
    } finally {
      try {
        unlinkSync(made);
      } catch {
        // already gone
      }
    }
    try {
      this.syncDir();
      // A round-robin hint, not a claim: it needs no fsync (host-local syncs nothing).
      this.replace(`${LAST_RESERVED_PREFIX}${rangeSetIndex}`, name);
    } catch (e) {
      // The caller sees a failure, so it must not be left holding the IP.
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
      throw e;
    }
    return true;
  }

  /** The last IP reserved in a range set, for round robin; undefined when none or unreadable. */
  async lastReserved(rangeSetIndex: number): Promise<string | undefined> {
    const path = join(this.dir, `${LAST_RESERVED_PREFIX}${rangeSetIndex}`);
    const text = await readOrUndefined(path);
    return text === undefined ? undefined : canonicalAddress(text.trim());
  }

  /** Who holds `ip`; undefined when it is free. Throws when the file is there but is not a record. */
  async owner(ip: string): Promise<Owner | undefined> {
    const path = join(this.dir, fileName(ip));
    const text = await readOrUndefined(path);
    if (text === undefined) return undefined;
    const parsed = parseRecord(text);
    if (typeof parsed === 'string') throw new IpamStoreError('parse', path, new Error(`not a record: ${parsed}`));
    return parsed;
  }

  /** IPs held by (containerId, ifname), including ones recorded without ifname for that container. */
  async findByOwner(containerId: string, ifname: string): Promise<string[]> {
    return (await this.list()).filter((r) => ownedBy(r, containerId, ifname)).map((r) => r.ip);
  }

  /** Removes the record of `ip`; false when there was none. */
  async release(ip: string): Promise<boolean> {
    const path = join(this.dir, fileName(ip));
    try {
      await unlink(path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new IpamStoreError('unlink', path, e);
    }
  }

  /** Releases every IP of (containerId, ifname); returns them (none is fine: DEL is idempotent). */
  async releaseByOwner(containerId: string, ifname: string): Promise<string[]> {
    const released: string[] = [];
    for (const ip of await this.findByOwner(containerId, ifname)) {
      if (await this.release(ip)) released.push(ip);
    }
    return released;
  }

  /** Every readable record. Files that are not records are skipped; scan() reports them. */
  async list(): Promise<IpamRecord[]> {
    return (await this.scan()).records;
  }

  /** Records, and the IP-named files whose content could not be read as one. */
  async scan(): Promise<{ records: IpamRecord[]; invalid: InvalidRecord[] }> {
    const records: IpamRecord[] = [];
    const invalid: InvalidRecord[] = [];
    let entries;
    try {
      // Synchronous on purpose: a few hundred tiny local files read in well
      // under a millisecond, while the async path queues each read on libuv's
      // pool (which concurrent ADDs keep busy) and made ADD grow with pod count.
      entries = readdirSync(this.dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records, invalid };
      throw new IpamStoreError('readdir', this.dir, e);
    }
    for (const entry of entries) {
      // `lock`, last_reserved_ip.N, temp files and anything else not named by an IP.
      const ip = canonicalAddress(entry.name);
      if (ip === undefined) continue;
      const path = join(this.dir, entry.name);
      if (ip !== entry.name) {
        invalid.push({ ip, path, reason: `not the canonical name of ${ip}` });
        continue;
      }
      if (!entry.isFile()) {
        invalid.push({ ip, path, reason: 'not a regular file' });
        continue;
      }
      let text;
      try {
        text = readOrUndefinedSync(path);
      } catch (e) {
        invalid.push({ ip, path, reason: (e as Error).message });
        continue;
      }
      if (text === undefined) continue; // released while we listed
      const parsed = parseRecord(text);
      if (typeof parsed === 'string') invalid.push({ ip, path, reason: parsed });
      else records.push({ ip, ...parsed });
    }
    return { records, invalid };
  }

  /** Removes temp files a crashed writer left; only safe under the lock. */
  async removeStaleTemps(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new IpamStoreError('readdir', this.dir, e);
    }
    const stale = names.filter((n) => n.startsWith(TEMP_PREFIX)).map((n) => join(this.dir, n));
    for (const path of stale) await unlink(path).catch(() => undefined);
    return stale;
  }

  // Writes content to a fresh temporary file, synced, and returns its path.
  // Writes `content` to a new temporary file in the store and returns its path.
  private writeTemp(content: string, options: { durable: boolean }): string {
    const path = join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    const fd = fsSync('open', path, () => openSync(path, 'wx', 0o644));
    try {
      fsSync('write', path, () => writeSync(fd, content));
      if (options.durable) fsSync('fsync', path, () => fsyncSync(fd));
    } catch (e) {
      closeSync(fd);
      try {
        unlinkSync(path);
      } catch {
        // never created
      }
      throw e;
    }
    fsSync('close', path, () => closeSync(fd));
    return path;
  }

  // Replaces a small file atomically (rename over it).
  private replace(name: string, content: string): void {
    const path = join(this.dir, name);
    const made = this.writeTemp(content, { durable: false });
    try {
      fsSync('rename', path, () => renameSync(made, path));
    } catch (e) {
      try {
        unlinkSync(made);
      } catch {
        // already gone
      }
      throw e;
    }
  }

  // Makes a new directory entry durable, so a reservation survives power loss.
  private syncDir(): void {
    const fd = fsSync('open', this.dir, () => openSync(this.dir, 'r'));
    try {
      fsSync('fsync', this.dir, () => fsyncSync(fd));
    } finally {
      closeSync(fd);
    }
  }
}

// The file an IP is recorded in: its canonical form, as Go's net.IP.String
// writes it (no escaping is needed on Linux).
function fileName(ip: string): string {
  const name = canonicalAddress(ip);
  if (name === undefined) throw new IpamRequestError(`"${ip}": not an IP address`);
  return name;
}

function readOrUndefinedSync(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IpamStoreError('read', path, e);
  }
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IpamStoreError('read', path, e);
  }
}

function fsSync<T>(syscall: string, path: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw new IpamStoreError(syscall, path, e);
  }
}

async function fsCall<T>(syscall: string, path: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw new IpamStoreError(syscall, path, e);
  }
}
