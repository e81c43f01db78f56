// Netns against iproute2 and the filesystem: what ferry creates `ip netns`
// sees, what it deletes is gone, and sysctls it writes change only the
// namespace they were written in. The host's namespace is only ever read.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { native } from '../../engine/native/binding.js';
import { Netns, NetnsError, NETNS_RUN_DIR, sysctlPath } from '../../engine/netns/netns.js';
import { inNetns, ipJson, isRoot, makeNetns, run, uniqueName } from '../support/netns.js';

// Namespaces made through ferry (makeNetns tracks only the ones made with `ip`).
const made = new Set<string>();
const opened: Netns[] = [];

function name(prefix: string): string {
  const n = uniqueName(prefix);
  made.add(n);
  return n;
}

async function create(prefix: string): Promise<Netns> {
  const ns = await Netns.create(name(prefix));
  opened.push(ns);
  return ns;
}

afterEach(() => {
  for (const ns of opened.splice(0)) ns.close();
  for (const n of made) {
    if (existsSync(`${NETNS_RUN_DIR}/${n}`)) run('ip', ['netns', 'del', n]);
  }
  made.clear();
});

/** The thrown error, for assertions on its fields. */
async function failure(fn: () => unknown): Promise<NetnsError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NetnsError);
    return e as NetnsError;
  }
  throw new Error('expected a NetnsError, but nothing was thrown');
}

const netnsList = (): string[] =>
  run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((l) => l !== '');

const hostForwarding = (): string => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();

describe('sysctlPath (no root needed)', () => {
  it('maps dotted and slashed net.* keys under /proc/sys', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv4/conf/vxlan.calico/forwarding')).toBe('/proc/sys/net/ipv4/conf/vxlan.calico/forwarding');
  });

  it.each(['kernel.hostname', 'net/../../etc', 'net.ipv4..x', 'vm.swappiness', 'net', 'net.', '/proc/sys/net/ipv4/ip_forward', 'net.ipv4.ip forward'])(
    'refuses %j',
    async (key) => {
      const e = await failure(() => sysctlPath(key));
      expect(e).toMatchObject({ errno: 22, code: 'EINVAL' });
      expect(e.message).toContain(key);
    },
  );
});

describe.skipIf(!isRoot)('Netns (needs root: creates network namespaces)', () => {
  it('create makes /var/run/netns/NAME that `ip netns` lists and `ip -n` works in; delete removes it', async () => {
    const ns = await create('fns');
    expect(ns.path).toBe(`${NETNS_RUN_DIR}/${ns.name}`);
    expect(ns.fd).toBeGreaterThanOrEqual(0);
    expect(existsSync(ns.path)).toBe(true);
    expect(netnsList()).toContain(ns.name);
    const links = ipJson<Array<{ ifname: string }>>(ns.name, ['link', 'show']);
    expect(links.map((l) => l.ifname)).toEqual(['lo']);

    ns.close();
    ns.close(); // idempotent
    Netns.delete(ns.name);
    expect(existsSync(ns.path)).toBe(false);
    expect(netnsList()).not.toContain(ns.name);
  });

  it('create makes a namespace distinct from the host and from each other', async () => {
    const a = await create('fns');
    const b = await create('fns');
    const inode = (path: string) => run('stat', ['-L', '-c', '%i', path]).trim();
    const host = inode('/proc/self/ns/net');
    expect(inode(a.path)).not.toBe(host);
    expect(inode(a.path)).not.toBe(inode(b.path));
  });

  it('delete takes a path as well as a name, and a deleted namespace cannot be opened', async () => {
    const ns = await create('fns');
    ns.close();
    Netns.delete(ns.path);
    expect(existsSync(ns.path)).toBe(false);
    const e = await failure(() => Netns.open(ns.name));
    expect(e).toMatchObject({ code: 'ENOENT', errno: 2, path: ns.path });
  });

  it('creating an existing name fails with EEXIST naming the path and leaves the first intact', async () => {
    const ns = await create('fns');
    const e = await failure(() => Netns.create(ns.name));
    expect(e).toMatchObject({ errno: 17, code: 'EEXIST', path: ns.path });
    expect(e.message).toContain(ns.path);
    // Still exactly one entry, still a working namespace.
    expect(readdirSync(NETNS_RUN_DIR).filter((n) => n === ns.name)).toHaveLength(1);
    expect(ipJson<Array<{ ifname: string }>>(ns.name, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
    ns.close();
    Netns.delete(ns.name);
    expect(existsSync(ns.path)).toBe(false);
    expect(netnsList()).not.toContain(ns.name);
  });

  it.each(['a/b', '..', '.', '', 'a b'])('create refuses the name %j and creates nothing', async (bad) => {
    const e = await failure(() => Netns.create(bad));
    expect(e).toMatchObject({ errno: 22, code: 'EINVAL' });
    expect(e.message).toContain(`"${bad}"`);
    if (!bad.startsWith('.') && bad !== '') expect(existsSync(`${NETNS_RUN_DIR}/${bad}`)).toBe(false);
  });

  it('open by name and by path reach the same namespace; a fresh fd each time', async () => {
    const ns = await create('fns');
    const byName = Netns.open(ns.name);
    const byPath = Netns.open(ns.path);
    opened.push(byName, byPath);
    expect(byName.path).toBe(ns.path);
    expect(byName.name).toBe(ns.name);
    expect(byPath.name).toBe(ns.name);
    expect(new Set([ns.fd, byName.fd, byPath.fd]).size).toBe(3);
  });

  it('open of a namespace made with `ip netns add` works', () => {
    const n = makeNetns('fns');
    const ns = Netns.open(n);
    opened.push(ns);
    expect(ns.name).toBe(n);
  });

  it('current() opens the namespace this process runs in, named by its path', () => {
    const ns = Netns.current();
    opened.push(ns);
    expect(ns.path).toBe('/proc/self/ns/net');
    expect(ns.name).toBe('/proc/self/ns/net');
  });

  it('open of a missing path fails with ENOENT naming the path', async () => {
    const path = `${NETNS_RUN_DIR}/${uniqueName('fns-missing')}`;
    const e = await failure(() => Netns.open(path));
    expect(e).toMatchObject({ errno: 2, code: 'ENOENT', path });
    expect(e.message).toContain(path);
  });

  it('open of a regular file fails with EINVAL "not a network namespace"', async () => {
    const e = await failure(() => Netns.open('/etc/hostname'));
    expect(e).toMatchObject({ errno: 22, code: 'EINVAL', path: '/etc/hostname' });
    expect(e.message).toContain('/etc/hostname');
    expect(e.message).toContain('not a network namespace');
  });

  it('open of another kind of namespace fails with EINVAL', async () => {
    const e = await failure(() => Netns.open('/proc/self/ns/uts'));
    expect(e).toMatchObject({ errno: 22, code: 'EINVAL' });
    expect(e.message).toContain('not a network namespace');
  });

  // These would unmount /var/run/netns (every namespace under it) or /run if
  // they got through, so the native call is stubbed out to make sure they cannot.
  it.each(['.', '..', '', NETNS_RUN_DIR, `${NETNS_RUN_DIR}/`, `${NETNS_RUN_DIR}/..`, '/tmp'])(
    'delete refuses %j without unmounting anything',
    async (bad) => {
      const unmount = vi.spyOn(native, 'netnsDelete').mockImplementation(() => {
        throw new Error(`netnsDelete(${bad}) must not be reached`);
      });
      try {
        const e = await failure(() => Netns.delete(bad));
        expect(e).toMatchObject({ errno: 22, code: 'EINVAL' });
        expect(unmount).not.toHaveBeenCalled();
      } finally {
        unmount.mockRestore();
      }
    },
  );

  it.each(['.', '..', ''])('open refuses the name %j', async (bad) => {
    const e = await failure(() => Netns.open(bad));
    expect(e).toMatchObject({ errno: 22, code: 'EINVAL' });
  });

  it('delete of a missing namespace fails with ENOENT naming the path', async () => {
    const n = uniqueName('fns-missing');
    const e = await failure(() => Netns.delete(n));
    expect(e).toMatchObject({ errno: 2, code: 'ENOENT', path: `${NETNS_RUN_DIR}/${n}` });
    expect(e.message).toContain(n);
  });

  it('sysctlSet changes net.ipv4.ip_forward in the namespace only, as sysctl(8) there sees it', async () => {
    const hostBefore = hostForwarding();
    const ns = await create('fns');
    expect(await ns.sysctlGet('net.ipv4.ip_forward')).toBe('0');
    await ns.sysctlSet('net.ipv4.ip_forward', 1);
    expect(await ns.sysctlGet('net.ipv4.ip_forward')).toBe('1');
    expect(inNetns(ns.name, 'sysctl', ['-n', 'net.ipv4.ip_forward']).trim()).toBe('1');
    expect(hostForwarding()).toBe(hostBefore);

    // The slash form reaches the same file; setting back is seen by the oracle too.
    await ns.sysctlSet('net/ipv4/ip_forward', '0');
    expect(await ns.sysctlGet('net/ipv4/ip_forward')).toBe('0');
    expect(inNetns(ns.name, 'sysctl', ['-n', 'net.ipv4.ip_forward']).trim()).toBe('0');
    expect(hostForwarding()).toBe(hostBefore);
  });

  it('sysctls of one test namespace do not leak into another', async () => {
    const a = await create('fns');
    const b = await create('fns');
    await a.sysctlSet('net.ipv4.conf.all.forwarding', 1);
    expect(await a.sysctlGet('net.ipv4.conf.all.forwarding')).toBe('1');
    expect(await b.sysctlGet('net.ipv4.conf.all.forwarding')).toBe('0');
    expect(inNetns(b.name, 'sysctl', ['-n', 'net.ipv4.conf.all.forwarding']).trim()).toBe('0');
  });

  it.each(['kernel.hostname', 'net/../../etc', 'net.ipv4.../x'])('sysctlSet/Get refuse the key %j', async (key) => {
    const ns = await create('fns');
    const set = await failure(() => ns.sysctlSet(key, 'x'));
    expect(set).toMatchObject({ errno: 22, code: 'EINVAL' });
    expect(set.message).toContain(key);
    const get = await failure(() => ns.sysctlGet(key));
    expect(get).toMatchObject({ errno: 22, code: 'EINVAL' });
  });

  it('a key that does not exist fails with ENOENT naming the key and the namespace', async () => {
    const ns = await create('fns');
    const e = await failure(() => ns.sysctlGet('net.ipv4.no_such_key'));
    expect(e).toMatchObject({ errno: 2, code: 'ENOENT' });
    expect(e.message).toContain('net.ipv4.no_such_key');
    expect(e.message).toContain(ns.name);
  });

  it('a value the kernel refuses keeps its errno', async () => {
    const ns = await create('fns');
    const e = await failure(() => ns.sysctlSet('net.ipv4.ip_forward', 'not-a-number'));
    expect(e.code).toBe('EINVAL');
    expect(await ns.sysctlGet('net.ipv4.ip_forward')).toBe('0');
  });
});
