// The `ferry` command end to end: the inspection commands run as a separate
// process (node --import tsx engine/cli/ferry.ts …) against a dataplane
// pinned in a per-test directory, checked on stdout (JSON and tables),
// stderr and the exit code.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { join } from 'node:path';
import { BpfMap } from '../engine/bpf/index.js';
import { listServices, openPinnedMaps } from '../engine/dataplane/inspect.js';
import { lb4Maglev, lb4MaglevKey, MAPS } from '../engine/dataplane/layout.js';
import { pinDir } from './bpf/support.js';
import { listMaglevTables } from '../engine/dataplane/maglev-view.js';
import { addIPv6Sample, loadSample } from './dataplane/inspect-fixture.js';
import { isRoot } from './support/netns.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `ferry ARGS` from this checkout's TypeScript. */
function ferry(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'engine/cli/ferry.ts', ...args],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, FERRY_DEBUG: '' } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function ok(...args: string[]): Promise<string> {
  const run = await ferry(...args);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return run.stdout;
}

describe('ferry (no dataplane needed)', () => {
  it('keeps demo and daemon beside the inspection commands', async () => {
    const help = await ok('--help');
    for (const command of ['demo', 'daemon', 'services', 'endpoints', 'maglev', 'conntrack', 'nat', 'metrics']) expect(help).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect(await ok('conntrack', '--help')).toMatch(/list \[options\].*\n\s+flush \[options\]/s);
  });

  it('a missing pin root: exit 1, one line naming the path, no stack trace', async () => {
    const missing = '/sys/fs/bpf/ferry-cli-test-missing';
    for (const args of [['services'], ['endpoints', '-o', 'json'], ['maglev'], ['conntrack', 'list'], ['nat', 'list'], ['metrics']]) {
      const run = await ferry(...args, '--pin-root', missing);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(new RegExp(`^ferry ${args[0]}[a-z ]*: no ferry dataplane pinned at ${missing} \\(.*\\)\\n$`));
    }
  });

  it('bad arguments: exit 1 with the reason', async () => {
    const proto = await ferry('conntrack', 'list', '--proto', 'sctp');
    expect(proto.code).toBe(1);
    expect(proto.stderr).toMatch(/option '--proto <proto>' argument 'sctp' is invalid\. Allowed choices are tcp, udp, icmp/);
    const src = await ferry('conntrack', 'flush', '--src', '10.0.0', '--pin-root', '/nowhere');
    expect(src).toMatchObject({ code: 1, stdout: '', stderr: 'ferry conntrack flush: --src: not an IPv4 or IPv6 address: 10.0.0\n' });
    const output = await ferry('services', '-o', 'yaml');
    expect(output.code).toBe(1);
    expect(output.stderr).toMatch(/Allowed choices are table, json/);
  });
});

describe.skipIf(!isRoot)('ferry inspection commands on a pinned dataplane (needs root)', () => {
  it('services -o json is what the library reads; the table is aligned and colourless off a terminal', async () => {
    const { pinRoot } = await loadSample();
    const maps = openPinnedMaps(pinRoot);
    const expected = listServices(maps);
    maps.close();
    expect(JSON.parse(await ok('services', '--pin-root', pinRoot, '-o', 'json'))).toEqual(expected);

    const table = await ok('services', '--pin-root', pinRoot);
    expect(table).not.toContain('\x1b');
    expect(table).toBe(
      [
        'FRONTEND           SCOPE     REV-NAT  SLOT  ID  BACKEND          NOTE',
        '10.96.0.10:80/tcp  external        1     1   1  10.244.0.5:8080',
        '                                         2   2  10.244.0.6:8080',
        '10.96.0.53:53/udp  external        2     1   3  10.244.0.9:5353',
        '                                         2   7  MISSING          backend 7 is missing',
        '10.96.0.99:80/tcp  external        3     -   -  (no backends)    rev-NAT entry 3 is missing: replies are not translated',
        '',
      ].join('\n'),
    );
  });

  it('endpoints and nat list, as tables and JSON', async () => {
    const { pinRoot } = await loadSample();
    expect(await ok('endpoints', '--pin-root', pinRoot)).toBe(
      [
        'ID  BACKEND          PROTO  FLOWS  FRONTENDS',
        ' 1  10.244.0.5:8080  tcp        1  10.96.0.10:80/tcp',
        ' 2  10.244.0.6:8080  tcp        1  10.96.0.10:80/tcp',
        ' 3  10.244.0.9:5353  udp        1  10.96.0.53:53/udp',
        ' 4  10.244.0.7:8080  tcp        0  (none)',
        '',
      ].join('\n'),
    );
    const endpoints = JSON.parse(await ok('endpoints', '--pin-root', pinRoot, '-o', 'json')) as Array<{ id: number; frontends: string[] }>;
    expect(endpoints.map((e) => [e.id, e.frontends])).toEqual([
      [1, ['10.96.0.10:80/tcp']],
      [2, ['10.96.0.10:80/tcp']],
      [3, ['10.96.0.53:53/udp']],
      [4, []],
    ]);
    expect(await ok('nat', 'list', '--pin-root', pinRoot)).toBe(
      ['INDEX  SERVICE        FRONTENDS', '    1  10.96.0.10:80  10.96.0.10:80/tcp', '    2  10.96.0.53:53  10.96.0.53:53/udp', '    9  10.96.0.77:80  (unused)', ''].join('\n'),
    );
    expect(JSON.parse(await ok('nat', '--pin-root', pinRoot, '-o', 'json'))).toEqual([
      { index: 1, address: '10.96.0.10', port: 80, frontends: ['10.96.0.10:80/tcp'] },
      { index: 2, address: '10.96.0.53', port: 53, frontends: ['10.96.0.53:53/udp'] },
      { index: 9, address: '10.96.0.77', port: 80, frontends: [] },
    ]);
  });

  it('maglev: each table with its backends\' shares, as a table and JSON', async () => {
    const { lb, pinRoot } = await loadSample();
    expect(await ferry('maglev', '--pin-root', pinRoot)).toMatchObject({ code: 0, stdout: '', stderr: 'no Maglev tables (no service asks for maglev)\n' });
    // A 7-entry table for 10.96.0.10:80 (rev-NAT 1): backend 1 owns 4 entries, backend 2 three.
    lb.maglev.update(lb4MaglevKey.encode({ revNatIndex: 1, scope: 'external' }), lb4Maglev.encode({ seed: 0xabc, backendIds: [1, 2, 1, 2, 1, 2, 1] }));
    const maps = openPinnedMaps(pinRoot);
    const expected = listMaglevTables(maps);
    maps.close();
    expect(JSON.parse(await ok('maglev', '--pin-root', pinRoot, '-o', 'json'))).toEqual(expected);
    expect(await ok('maglev', '--pin-root', pinRoot)).toBe(
      [
        'FRONTEND           SCOPE     SIZE  SEED   ID  BACKEND          ENTRIES  VS M/N  NOTE',
        '10.96.0.10:80/tcp  external     7  0xabc   1  10.244.0.5:8080        4  +14.3%',
        '                                           2  10.244.0.6:8080        3  -14.3%',
        '',
      ].join('\n'),
    );
  });

  it('conntrack list with filters, then flush with filters', async () => {
    const { lb, pinRoot } = await loadSample();
    const udp = JSON.parse(await ok('conntrack', 'list', '--pin-root', pinRoot, '--proto', 'udp', '-o', 'json')) as Array<Record<string, unknown>>;
    expect(udp.map((e) => [e.dir, e.client, e.backendId, e.stale])).toEqual([
      ['forward', '10.244.0.2:5353', 3, true],
      ['reverse', '10.244.0.2:5353', 3, true],
      ['forward', '10.244.0.4:6000', 7, false],
    ]);
    const table = (await ok('conntrack', '--pin-root', pinRoot, '--src', '10.244.0.3')).split('\n');
    expect(table[0]).toBe('PROTO  DIR      SOURCE            DESTINATION       STATE  FLAGS  IDLE  EXPIRES  BACKEND            NAT');
    expect(table[1]).toMatch(/^tcp    forward  10\.244\.0\.3:40001  10\.96\.0\.10:80 +new +SYN +\d+(\.\d)?s +\d+s  2 10\.244\.0\.6:8080$/); // idle: 9.8s, then 10s on a slow run
    expect(table[2]).toMatch(/^tcp    reverse  10\.244\.0\.6:8080 +10\.244\.0\.3:40001 +new +SYN .* 2 10\.244\.0\.6:8080$/);
    expect(table).toHaveLength(4);
    const gone = await ok('conntrack', 'list', '--pin-root', pinRoot, '--backend', '7');
    expect(gone).toMatch(/udp +forward +10\.244\.0\.4:6000 .* 7 \(gone\)\n$/);

    const none = await ferry('conntrack', 'list', '--pin-root', pinRoot, '--dst', '10.1.2.3');
    expect(none).toEqual({ code: 0, stdout: '', stderr: 'no conntrack entries matching --dst 10.1.2.3\n' });

    expect(await ok('conntrack', 'flush', '--pin-root', pinRoot, '--src', '10.244.0.2')).toBe('deleted 4 conntrack entries matching --src 10.244.0.2\n');
    expect(lb.flows().map((f) => f.key.sport === 40001 || f.key.dport === 40001 || f.key.sport === 6000)).toEqual([true, true, true]);
    expect(JSON.parse(await ok('conntrack', 'flush', '--pin-root', pinRoot, '--backend', '10.244.0.6', '-o', 'json'))).toEqual({ deleted: 2 });
    expect(await ok('conntrack', 'flush', '--pin-root', pinRoot)).toBe('deleted 1 conntrack entry\n');
    expect(lb.flows()).toEqual([]);
  });

  it('IPv6 entries in every view: [address]:port in tables, the library\'s data in JSON', async () => {
    const { lb, pinRoot, writtenAt } = await loadSample();
    addIPv6Sample(lb, writtenAt);
    const maps = openPinnedMaps(pinRoot);
    const expected = listServices(maps);
    maps.close();
    expect(JSON.parse(await ok('services', '--pin-root', pinRoot, '-o', 'json'))).toEqual(expected);
    const services = (await ok('services', '--pin-root', pinRoot)).split('\n');
    expect(services).toContainEqual(expect.stringMatching(/^\[fd00:96::10\]:80\/tcp +external +5 +1 +21 +\[fd00::5\]:8080$/));
    expect(services).toContainEqual(expect.stringMatching(/^ +2 +22 +\[fd00::6\]:8080$/));
    expect(services).toContainEqual(expect.stringMatching(/^\[fd00:96::53\]:53\/udp .* 3 +10\.244\.0\.9:5353 +backend is IPv4, the frontend IPv6$/));

    const endpoints = (await ok('endpoints', '--pin-root', pinRoot)).split('\n');
    expect(endpoints).toContainEqual(expect.stringMatching(/^21 +\[fd00::5\]:8080 +tcp +1 +\[fd00:96::10\]:80\/tcp$/));
    expect(await ok('nat', 'list', '--pin-root', pinRoot)).toMatch(/^ +5 +\[fd00:96::10\]:80 +\[fd00:96::10\]:80\/tcp$/m);

    const flows = (await ok('conntrack', '--pin-root', pinRoot, '--src', 'fd00:244::2')).split('\n');
    expect(flows[1]).toMatch(/^tcp +forward +\[fd00:244::2\]:40000 +\[fd00:96::10\]:80 +established +SYN,ACK .* 21 \[fd00::5\]:8080$/);
    expect(flows[2]).toMatch(/^tcp +reverse +\[fd00::5\]:8080 +\[fd00:244::2\]:40000 /);
    expect(flows).toHaveLength(4);
    const snat = JSON.parse(await ok('conntrack', '--pin-root', pinRoot, '--backend', '[fd00::6]:8080', '-o', 'json')) as Array<Record<string, unknown>>;
    expect(snat.map((e) => [e.dir, e.client, e.snat])).toEqual([
      ['forward', '[2001:db8:1::100]:50000', '[2001:db8::1]:61000'],
      ['reverse', '[2001:db8:1::100]:50000', '[2001:db8::1]:61000'],
    ]);
    expect(await ok('conntrack', '--pin-root', pinRoot, '--dst', '2001:db8::1')).toMatch(/snat \[2001:db8::1\]:61000 client \[2001:db8:1::100\]:50000/);

    expect(await ok('metrics', '--pin-root', pinRoot)).toContain(`\nconntrack: 7 / ${lb.conntrack.maxEntries} entries (0.0%)\nconntrack6: 4 / ${lb.conntrack6.maxEntries} entries (0.0%)\n`);
    expect(await ok('metrics', '--pin-root', pinRoot, '-o', 'prometheus')).toContain('ferry_ct_entries 11\n');
    expect(await ok('conntrack', 'flush', '--pin-root', pinRoot, '--src', 'fd00:244::2')).toBe('deleted 2 conntrack entries matching --src fd00:244::2\n');
    expect([...lb.conntrack6.keys()]).toHaveLength(2);
  });

  it('a dataplane pinned without the IPv6 maps (an older ferry\'s) is read as IPv4 only', async () => {
    const { lb, pinRoot } = await loadSample();
    const old = pinDir();
    for (const [role, name] of Object.entries(MAPS)) {
      if (role.endsWith('6')) continue;
      const map = BpfMap.openPinned(join(pinRoot, name));
      map.pin(join(old, name));
      map.close();
    }
    expect(JSON.parse(await ok('services', '--pin-root', old, '-o', 'json'))).toHaveLength(3);
    expect(JSON.parse(await ok('conntrack', '--pin-root', old, '-o', 'json'))).toHaveLength(7);
    expect(JSON.parse(await ok('conntrack', 'gc', '--pin-root', old, '-o', 'json'))).toMatchObject({ scanned: 7, capacity: lb.conntrack.maxEntries });
    expect(await ok('metrics', '--pin-root', old)).toMatch(/\nconntrack: 4 \/ \d+ entries \(0\.0%\)\n$/);
  });

  it('conntrack gc removes the expired flow and the entry of the gone backend', async () => {
    const { lb, pinRoot } = await loadSample();
    const result = JSON.parse(await ok('conntrack', 'gc', '--pin-root', pinRoot, '-o', 'json'));
    // Both families' conntrack maps: their capacity together.
    const capacity = lb.conntrack.maxEntries + lb.conntrack6.maxEntries;
    expect(result).toEqual({ scanned: 7, expired: 2, orphaned: 1, withdrawn: 0, remaining: 4, capacity });
    expect(lb.flows().every((f) => f.key.proto === 'tcp')).toBe(true);
    expect(await ok('conntrack', 'gc', '--pin-root', pinRoot)).toBe(
      `scanned 4: deleted 0 expired, 0 orphaned (backend gone), 0 withdrawn (UDP, backend left its service); 4 of ${capacity} remain\n`,
    );
  });

  it('metrics: counters summed over CPUs and conntrack fill, as a table, JSON and Prometheus text', async () => {
    const { lb, pinRoot, translated } = await loadSample();
    const json = JSON.parse(await ok('metrics', '--pin-root', pinRoot, '-o', 'json'));
    expect(json.counters.translated).toBe(Number(translated));
    expect(json.counters.ct_created).toBe(0);
    expect(json.conntrack).toEqual({ entries: 7, maxEntries: lb.conntrack.maxEntries });
    const table = await ok('metrics', '--pin-root', pinRoot);
    expect(table).toMatch(new RegExp(`^translated +${translated}  packets$`, 'm'));
    expect(table).toMatch(/^ct_reselected +0  events$/m);
    expect(table).toContain(`\nconntrack: 7 / ${lb.conntrack.maxEntries} entries (0.0%)\n`);
    const prom = await ok('metrics', '--pin-root', pinRoot, '-o', 'prometheus');
    expect(prom).toContain(`ferry_lb_packets_total{outcome="translated"} ${translated}\n`);
    expect(prom).toContain('ferry_lb_events_total{event="ct_created"} 0\n');
    expect(prom).toContain('# TYPE ferry_ct_entries gauge\nferry_ct_entries 7\n');
  });
});
