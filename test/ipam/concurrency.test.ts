// Concurrent allocations never hand out one IP twice: 50 OS processes, and
// 50 calls in one process, against one store. The range holds exactly 50
// addresses, so a double allocation would also show up as an exhaustion.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { allocate, release } from '../../plugin/ipam/allocator.js';
import type { IpamConfig } from '../../plugin/ipam/config.js';
import { IpamStore } from '../../plugin/ipam/store.js';
import { tempDataDir } from './tmpdir.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const client = join(here, 'fixtures', 'ipam-client.ts');
const N = 50;
const config: IpamConfig = { type: 'ferry', ranges: [[{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.59' }]] };

function runClient(job: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', client, JSON.stringify(job)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`ipam-client ${JSON.stringify(job)} exited ${code}: ${err}`));
    });
  });
}

function recordFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n !== 'lock' && !n.startsWith('last_reserved_ip.'));
}

describe('concurrent allocation', () => {
  it(`${N} processes allocate ${N} distinct IPs, then release them all`, { timeout: 180_000 }, async () => {
    const dataDir = tempDataDir();
    const ids = Array.from({ length: N }, (_, i) => `ctr-${i}`);
    const base = { dataDir, network: 'net1', ifname: 'eth0', config };

    const allocated = (await Promise.all(ids.map((containerId) => runClient({ ...base, op: 'allocate', containerId })))) as Array<
      Array<{ ip: string }>
    >;
    const ips = allocated.map((a) => a[0]!.ip);
    expect(new Set(ips).size).toBe(N);
    const store = new IpamStore('net1', dataDir);
    expect(recordFiles(store.dir)).toHaveLength(N);
    const owners = new Map((await store.list()).map((r) => [r.ip, r.containerId]));
    ids.forEach((id, i) => expect(owners.get(ips[i]!)).toBe(id));

    const released = (await Promise.all(ids.map((containerId) => runClient({ ...base, op: 'release', containerId })))) as string[][];
    expect(released.flat().sort()).toEqual([...ips].sort());
    expect(recordFiles(store.dir)).toEqual([]);
  });

  // IPs stay distinct even without the lock (reserve() claims with link(),
  // which fails on a taken name); what the lock adds is that the check
  // "does this owner hold an IP already?" and the reservation are one step.
  it('20 processes repeating one ADD get one IP and leave one record', { timeout: 180_000 }, async () => {
    const dataDir = tempDataDir();
    const job = { dataDir, network: 'net1', ifname: 'eth0', config, op: 'allocate', containerId: 'same' };
    const allocated = (await Promise.all(Array.from({ length: 20 }, () => runClient(job)))) as Array<Array<{ ip: string }>>;
    expect(new Set(allocated.map((a) => a[0]!.ip))).toEqual(new Set(['10.1.0.10']));
    expect(recordFiles(new IpamStore('net1', dataDir).dir)).toEqual(['10.1.0.10']);
  });

  it(`${N} allocations in one process with Promise.all, each through its own store and fd`, async () => {
    const dataDir = tempDataDir();
    const ids = Array.from({ length: N }, (_, i) => `ctr-${i}`);
    const allocated = await Promise.all(
      ids.map((containerId) => allocate(new IpamStore('net1', dataDir), config, { containerId, ifname: 'eth0' })),
    );
    const ips = allocated.map((a) => a[0]!.ip);
    expect(new Set(ips).size).toBe(N);
    const store = new IpamStore('net1', dataDir);
    expect(recordFiles(store.dir)).toHaveLength(N);

    await expect(allocate(store, config, { containerId: 'one-too-many', ifname: 'eth0' })).rejects.toThrow('no free address');
    const released = await Promise.all(ids.map((id) => release(new IpamStore('net1', dataDir), id, 'eth0')));
    expect(released.flat().sort()).toEqual([...ips].sort());
    expect(recordFiles(store.dir)).toEqual([]);
  });
});
