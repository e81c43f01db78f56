// The store on disk: host-local's format byte for byte, whole records only,
// unreadable files reported rather than fatal.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IpamRequestError, IpamStoreError } from '../../plugin/ipam/errors.js';
import { DEFAULT_DATA_DIR, IpamStore } from '../../plugin/ipam/store.js';
import { tempDataDir } from './tmpdir.js';

function store(): IpamStore {
  return new IpamStore('net1', tempDataDir());
}

describe('IpamStore', () => {
  it('lives at dataDir/network, /var/lib/cni/networks by default (not created until used)', () => {
    expect(new IpamStore('k8s-pod-network').dir).toBe(join(DEFAULT_DATA_DIR, 'k8s-pod-network'));
    const dataDir = tempDataDir();
    expect(new IpamStore('net1', dataDir).dir).toBe(join(dataDir, 'net1'));
  });

  it.each(['', '.', '..', 'a/b', '../x'])('refuses network name %j', (name) => {
    expect(() => new IpamStore(name, tempDataDir())).toThrow(IpamRequestError);
  });

  it('writes host-local records: file named by the IP, "id\\r\\nifname", last_reserved_ip.N', async () => {
    const s = store();
    await s.withLock(async () => {
      expect(await s.reserve('10.1.0.7', 'c1', 'eth0', 0)).toBe(true);
      expect(await s.reserve('fd00:0:0::0:7', 'c1', 'eth0', 1)).toBe(true);
    });
    expect(readFileSync(join(s.dir, '10.1.0.7'), 'utf8')).toBe('c1\r\neth0');
    expect(readFileSync(join(s.dir, 'fd00::7'), 'utf8')).toBe('c1\r\neth0');
    expect(readFileSync(join(s.dir, 'last_reserved_ip.0'), 'utf8')).toBe('10.1.0.7');
    expect(readFileSync(join(s.dir, 'last_reserved_ip.1'), 'utf8')).toBe('fd00::7');
    expect(readdirSync(s.dir).sort()).toEqual(['10.1.0.7', 'fd00::7', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
    expect(await s.lastReserved(0)).toBe('10.1.0.7');
    expect(await s.lastReserved(2)).toBeUndefined();
  });

  it('reserve is exclusive: a taken IP is refused and keeps its owner', async () => {
    const s = store();
    await s.withLock(async () => {
      expect(await s.reserve('10.1.0.7', 'c1', 'eth0', 0)).toBe(true);
      expect(await s.reserve('10.1.0.7', 'c2', 'eth0', 0)).toBe(false);
    });
    expect(await s.owner('10.1.0.7')).toEqual({ containerId: 'c1', ifname: 'eth0' });
    expect(await s.owner('10.1.0.8')).toBeUndefined();
  });

  it('refuses owners that cannot be written in a record', async () => {
    const s = store();
    await s.withLock(async () => {
      await expect(s.reserve('10.1.0.7', 'c 1', 'eth0', 0)).rejects.toThrow(IpamRequestError);
      await expect(s.reserve('10.1.0.7', 'c1', '', 0)).rejects.toThrow(IpamRequestError);
      await expect(s.reserve('10.1.0.300', 'c1', 'eth0', 0)).rejects.toThrow('"10.1.0.300": not an IP address');
    });
  });

  it('finds and releases by owner; a second release finds nothing', async () => {
    const s = store();
    await s.withLock(async () => {
      await s.reserve('10.1.0.2', 'c1', 'eth0', 0);
      await s.reserve('fd00::2', 'c1', 'eth0', 1);
      await s.reserve('10.1.0.3', 'c1', 'net1', 0);
      await s.reserve('10.1.0.4', 'c2', 'eth0', 0);
    });
    expect((await s.findByOwner('c1', 'eth0')).sort()).toEqual(['10.1.0.2', 'fd00::2']);
    expect((await s.releaseByOwner('c1', 'eth0')).sort()).toEqual(['10.1.0.2', 'fd00::2']);
    expect(await s.releaseByOwner('c1', 'eth0')).toEqual([]);
    expect(await s.release('10.1.0.4')).toBe(true);
    expect(await s.release('10.1.0.4')).toBe(false);
    expect(await s.list()).toEqual([{ ip: '10.1.0.3', containerId: 'c1', ifname: 'net1' }]);
  });

  it('reads records host-local wrote, including old ones without ifname', async () => {
    const s = store();
    mkdirSync(s.dir, { recursive: true });
    writeFileSync(join(s.dir, '10.1.0.2'), 'c1\r\neth0');
    writeFileSync(join(s.dir, '10.1.0.3'), 'c2\n'); // pre-ifname host-local
    writeFileSync(join(s.dir, 'last_reserved_ip.0'), '10.1.0.3');
    writeFileSync(join(s.dir, 'lock'), '');
    const records = (await s.list()).sort((a, b) => a.ip.localeCompare(b.ip));
    expect(records).toEqual([
      { ip: '10.1.0.2', containerId: 'c1', ifname: 'eth0' },
      { ip: '10.1.0.3', containerId: 'c2', ifname: '' },
    ]);
    // An ifname-less record belongs to its container on any interface, as in host-local.
    expect(await s.findByOwner('c2', 'eth0')).toEqual(['10.1.0.3']);
    expect(await s.lastReserved(0)).toBe('10.1.0.3');
  });

  it('reports files that are not records instead of failing', async () => {
    const s = store();
    mkdirSync(s.dir, { recursive: true });
    writeFileSync(join(s.dir, '10.1.0.2'), 'c1\r\neth0');
    writeFileSync(join(s.dir, '10.1.0.3'), ''); // a writer that crashed after O_EXCL
    writeFileSync(join(s.dir, '10.1.0.4'), 'a\r\nb\r\nc');
    writeFileSync(join(s.dir, 'fd00:0::5'), 'c5\r\neth0'); // not canonical
    mkdirSync(join(s.dir, '10.1.0.6'));
    writeFileSync(join(s.dir, 'README'), 'not an IP, ignored');
    const { records, invalid } = await s.scan();
    expect(records).toEqual([{ ip: '10.1.0.2', containerId: 'c1', ifname: 'eth0' }]);
    expect(invalid.map((i) => [i.ip, i.reason]).sort()).toEqual([
      ['10.1.0.3', 'empty'],
      ['10.1.0.4', '3 lines, expected "containerId\\r\\nifname"'],
      ['10.1.0.6', 'not a regular file'],
      ['fd00::5', 'not the canonical name of fd00::5'],
    ]);
    expect(await s.list()).toEqual(records);
    await expect(s.owner('10.1.0.3')).rejects.toThrow(IpamStoreError);
  });

  it('a missing directory is an empty store', async () => {
    const s = store();
    expect(await s.list()).toEqual([]);
    expect(await s.releaseByOwner('c1', 'eth0')).toEqual([]);
    expect(await s.lastReserved(0)).toBeUndefined();
    expect(existsSync(s.dir)).toBe(false);
  });

  it('leaves no temp files behind, and removes those a crash left', async () => {
    const s = store();
    await s.withLock(async () => {
      await s.reserve('10.1.0.2', 'c1', 'eth0', 0);
      await s.reserve('10.1.0.2', 'c2', 'eth0', 0);
    });
    expect(readdirSync(s.dir).filter((n) => n.startsWith('.'))).toEqual([]);
    writeFileSync(join(s.dir, '.tmp-1-abc'), 'c9\r\neth0');
    expect(await s.list()).toHaveLength(1);
    await s.withLock(() => s.removeStaleTemps());
    expect(readdirSync(s.dir).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('store errors keep errno and name the path', async () => {
    const dataDir = tempDataDir();
    writeFileSync(join(dataDir, 'file'), '');
    const s = new IpamStore('net1', join(dataDir, 'file'));
    const e = await s.withLock(async () => undefined).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IpamStoreError);
    const err = e as IpamStoreError;
    expect(err.code).toBe('ENOTDIR');
    expect(err.errno).toBeGreaterThan(0);
    expect(err.path).toBe(s.dir);
    expect(err.message).toBe(`ipam store: mkdir ${s.dir}: not a directory (ENOTDIR)`);
  });
});
