// Pods CNI ADD attached before any dataplane was pinned, hooked by what the
// daemon runs once it has loaded one (hookRecordedPods, plugin/daemon/
// pod-hooks.ts): from_pod on each pod's host veth (bpftool and tc as the
// oracles, run in the node namespace) and the pod's host routing entry;
// hooked pods left alone by a second run; a record whose veth is gone
// skipped by name; a record without the pod's MAC completed from the pod's
// side; a dual-stack pod's IPv6 entry (ferry_pod6) written, and written
// again when it is missing; a pod hooked by a cls_bpf filter (kernels
// without tcx) not hooked twice; and the records lock between the daemon
// and a CNI ADD in another process (flock(1) standing in for either).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { attachPinnedProgram } from '../../engine/dataplane/attach.js';
import { localPod4, localPod4Key, localPod6Key } from '../../engine/dataplane/layout.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { fromPodPin, linkPin } from '../../engine/dataplane/paths.js';
import { Handle } from '../../engine/handle.js';
import { RECORDS_LOCK_FILE } from '../../plugin/commands/records-lock.js';
import { hookRecordedPods, type PodHookSummary } from '../../plugin/daemon/pod-hooks.js';
import { ipJson, isRoot, run } from '../support/netns.js';
import { nodeFixture, type NodeFixture, type Pod } from './support.js';

const cleanups: Array<() => unknown> = [];
const defer = (c: () => unknown) => void cleanups.push(c);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** BPF_LINK_TYPE_TCX (Debian's bpftool 7.1 prints link types it does not know by number). */
const LINK_TYPE_TCX = 11;

interface Line {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A logger whose JSON lines land in `lines`. */
function capture(): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { log, lines };
}

/** The endpoint records' folder of the fixture's network (its CNI config's dataDir is `dir/state`, its name the prefix). */
const stateDir = (f: NodeFixture) => join(f.dir, 'state');
const recordsDir = (f: NodeFixture, prefix: string) => join(stateDir(f), 'endpoints', prefix);

/** The dataplane loaded and pinned at the fixture's pin root, as the daemon does at start, and a handle in the node namespace. */
async function loadOn(f: NodeFixture): Promise<{ dp: Dataplane; node: Handle }> {
  const dp = await loadDataplane(f.pinRoot);
  defer(() => dp.close());
  const node = await Handle.open(f.netns);
  defer(() => node.close());
  return { dp, node };
}

function hook(f: NodeFixture, node: Handle, log: pino.Logger): Promise<PodHookSummary> {
  return hookRecordedPods({ node, pinRoot: f.pinRoot, cniDataDir: stateDir(f), log });
}

/** The tcx link pinned for `veth`, by bpftool: its id, or undefined when none is pinned there. */
function pinnedLink(f: NodeFixture, veth: string): { id: number; type: number | string; prog_id: number } | undefined {
  try {
    return JSON.parse(run('bpftool', ['-j', 'link', 'show', 'pinned', linkPin(f.pinRoot, veth)]));
  } catch {
    return undefined;
  }
}

const fromPodId = (f: NodeFixture): number => (JSON.parse(run('bpftool', ['-j', 'prog', 'show', 'pinned', fromPodPin(f.pinRoot)])) as { id: number }).id;

/** The filters at `veth`'s ingress in the node namespace, by tc (the per-priority lines without options left out). */
function tcFilters(f: NodeFixture, veth: string): Array<{ options?: { bpf_name?: string } }> {
  const out = run('tc', ['-n', f.ns, '-j', 'filter', 'show', 'dev', veth, 'ingress']).trim();
  return (out === '' ? [] : (JSON.parse(out) as Array<{ options?: { bpf_name?: string } }>)).filter((x) => x.options !== undefined);
}

/** `bpftool net show dev VETH` inside the node namespace: what tc and (newer bpftools) tcx run there. */
function netShow(f: NodeFixture, veth: string): string {
  return run('nsenter', [`--net=/var/run/netns/${f.ns}`, 'bpftool', '-j', 'net', 'show', 'dev', veth]);
}

/** The pod's host routing entry (ferry_pod4), decoded. */
function localPod(dp: Dataplane, pod: Pod) {
  const v = dp.maps.localPods.lookup(localPod4Key.encode({ address: pod.ip }));
  return v === undefined ? undefined : localPod4.decode(v);
}

/** The pod's IPv6 host routing entry (ferry_pod6), decoded. */
function localPod6(dp: Dataplane, pod: Pod) {
  const v = dp.maps.localPods6.lookup(localPod6Key.encode({ address: pod.ip6! }));
  return v === undefined ? undefined : localPod4.decode(v);
}

const linkOf = (ns: string, name: string) => ipJson<Array<{ ifindex: number; address: string }>>(ns, ['link', 'show', 'dev', name])[0]!;

describe.skipIf(!isRoot)('hooking the pods recorded by CNI ADD to a dataplane loaded after them (needs root)', () => {
  it('attaches from_pod and registers each pod; hooked pods are left alone by a second run', { timeout: 60_000 }, async () => {
    const f = nodeFixture('ph', defer);
    const a = await f.addPod('a', { namespace: 'default', name: 'web-a' });
    const b = await f.addPod('b', { namespace: 'shop', name: 'cart-b' });
    // ADD found no dataplane: the pods are plainly routed, and its warning says the daemon hooks them when it starts.
    const cniLog = readFileSync(join(f.dir, 'cni.log'), 'utf8');
    expect(cniLog).toContain(`no eBPF dataplane pinned at ${f.pinRoot}: the pod is plainly routed, without Services, until the ferry daemon starts`);
    for (const p of [a, b]) {
      expect(pinnedLink(f, p.hostVeth)).toBeUndefined();
      expect(tcFilters(f, p.hostVeth)).toEqual([]);
    }

    const { dp, node } = await loadOn(f);
    const { log, lines } = capture();
    expect(await hook(f, node, log)).toEqual({ hooked: 2, alreadyHooked: 0, vethGone: 0, failed: 0 });

    const program = fromPodId(f);
    for (const [p, label, name] of [[a, 'a', 'default/web-a'], [b, 'b', 'shop/cart-b']] as const) {
      // from_pod runs on the veth through the tcx link pinned for it (bpftool), and nothing through tc.
      const link = pinnedLink(f, p.hostVeth);
      expect(link).toMatchObject({ prog_id: program });
      expect([LINK_TYPE_TCX, 'tcx']).toContain(link!.type);
      expect(netShow(f, p.hostVeth)).not.toContain('clsact');
      // Host routing delivers to the pod through this veth, with the MACs iproute2 reports.
      const veth = linkOf(f.ns, p.hostVeth);
      expect(localPod(dp, p)).toEqual({ ifindex: veth.ifindex, hostMac: veth.address, podMac: linkOf(p.ns, 'eth0').address });
      // One info line per pod, naming it.
      const line = lines.find((l) => l.level === 30 && l.containerId === `ph-${label}`);
      expect(line).toMatchObject({ pod: name, hostVeth: p.hostVeth });
      expect(line!.msg).toContain(`hooked pod ${name} (container ph-${label})`);
      expect(line!.msg).toContain(p.hostVeth);
    }
    expect(lines.at(-1)).toMatchObject({ level: 30, hooked: 2, alreadyHooked: 0 });
    expect(lines.at(-1)!.msg).toMatch(/^recorded pods: 2 hooked/);

    // A second run (a restarted daemon): nothing changes, no link is replaced.
    const before = [a, b].map((p) => pinnedLink(f, p.hostVeth)!.id);
    const again = capture();
    expect(await hook(f, node, again.log)).toEqual({ hooked: 0, alreadyHooked: 2, vethGone: 0, failed: 0 });
    expect([a, b].map((p) => pinnedLink(f, p.hostVeth)!.id)).toEqual(before);
    expect(again.lines.filter((l) => l.level >= 30)).toHaveLength(1); // the summary alone
  });

  it('skips a record whose host veth is gone, naming the pod, and hooks the others', { timeout: 60_000 }, async () => {
    const f = nodeFixture('ph', defer);
    const a = await f.addPod('a');
    const gone = await f.addPod('gone', { namespace: 'default', name: 'old-pod' });
    run('ip', ['-n', f.ns, 'link', 'del', gone.hostVeth]); // the pod went without a DEL
    const { dp, node } = await loadOn(f);
    const { log, lines } = capture();
    expect(await hook(f, node, log)).toEqual({ hooked: 1, alreadyHooked: 0, vethGone: 1, failed: 0 });
    const warning = lines.find((l) => l.level === 40);
    expect(warning).toMatchObject({ pod: 'default/old-pod', containerId: 'ph-gone', hostVeth: gone.hostVeth });
    expect(warning!.msg).toContain(`pod default/old-pod (container ph-gone): its host veth ${gone.hostVeth} is gone`);
    expect(pinnedLink(f, gone.hostVeth)).toBeUndefined();
    expect(localPod(dp, gone)).toBeUndefined();
    expect(pinnedLink(f, a.hostVeth)).toBeDefined();
    // The record stays for DEL (or GC) to remove.
    expect(readdirSync(recordsDir(f, 'ph'))).toContain('ph-gone_eth0.json');
  });

  it('registers a dual-stack pod’s IPv6 address too (ferry_pod6), and writes a missing IPv6 entry again', { timeout: 60_000 }, async () => {
    const f = nodeFixture('ph', defer, { dualStack: true });
    const a = await f.addPod('a');
    const b = await f.addPod('b');
    const { dp, node } = await loadOn(f);
    expect(await hook(f, node, capture().log)).toEqual({ hooked: 2, alreadyHooked: 0, vethGone: 0, failed: 0 });
    for (const p of [a, b]) {
      expect(p.ip6).toMatch(/^fd00:244::/);
      const veth = linkOf(f.ns, p.hostVeth);
      const entry = { ifindex: veth.ifindex, hostMac: veth.address, podMac: linkOf(p.ns, 'eth0').address };
      expect(localPod(dp, p)).toEqual(entry);
      expect(localPod6(dp, p)).toEqual(entry);
    }
    // b's IPv6 entry lost (its IPv4 one and from_pod still there): b alone is hooked again.
    expect(dp.maps.localPods6.delete(localPod6Key.encode({ address: b.ip6! }))).toBe(true);
    const link = pinnedLink(f, b.hostVeth)!.id;
    expect(await hook(f, node, capture().log)).toEqual({ hooked: 1, alreadyHooked: 1, vethGone: 0, failed: 0 });
    expect(localPod6(dp, b)?.ifindex).toBe(linkOf(f.ns, b.hostVeth).ifindex);
    expect(pinnedLink(f, b.hostVeth)!.id).toBe(link);
    expect(await hook(f, node, capture().log)).toEqual({ hooked: 0, alreadyHooked: 2, vethGone: 0, failed: 0 });
  });

  it("reads the pod's MAC in its namespace when the record has none (records from before ferry kept it)", { timeout: 60_000 }, async () => {
    const f = nodeFixture('ph', defer);
    const a = await f.addPod('a');
    const path = join(recordsDir(f, 'ph'), 'ph-a_eth0.json');
    const record = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(record.mac).toBe(linkOf(a.ns, 'eth0').address); // ADD records it now
    delete record.mac;
    delete record.pinRoot;
    writeFileSync(path, JSON.stringify(record));
    const { dp, node } = await loadOn(f);
    expect(await hook(f, node, capture().log)).toMatchObject({ hooked: 1, failed: 0 });
    expect(localPod(dp, a)?.podMac).toBe(linkOf(a.ns, 'eth0').address);
  });

  it('leaves a pod hooked by a cls_bpf filter (kernels without tcx) with that one filter, and registers it', { timeout: 60_000 }, async () => {
    const f = nodeFixture('ph', defer);
    const a = await f.addPod('a');
    const { dp, node } = await loadOn(f);
    // What ADD does where the kernel has no tcx: a filter under clsact, nothing pinned.
    await attachPinnedProgram({ netns: f.netns, ifindex: linkOf(f.ns, a.hostVeth).ifindex, programPin: fromPodPin(f.pinRoot), linkPin: linkPin(f.pinRoot, a.hostVeth), mode: 'tc' });
    expect(tcFilters(f, a.hostVeth)).toHaveLength(1);
    expect(await hook(f, node, capture().log)).toEqual({ hooked: 1, alreadyHooked: 0, vethGone: 0, failed: 0 });
    const filters = tcFilters(f, a.hostVeth);
    expect(filters).toHaveLength(1);
    expect(filters[0]!.options!.bpf_name).toMatch(/^from_pod:/);
    expect(pinnedLink(f, a.hostVeth)).toBeUndefined();
    expect(localPod(dp, a)?.ifindex).toBe(linkOf(f.ns, a.hostVeth).ifindex);
    expect(await hook(f, node, capture().log)).toEqual({ hooked: 0, alreadyHooked: 1, vethGone: 0, failed: 0 });
    expect(tcFilters(f, a.hostVeth)).toHaveLength(1);
  });
});

/** flock(1) holding `path` (shared or exclusive) for `ms` in another process; resolves once it holds it. */
async function holdLock(path: string, mode: '-s' | '-x', ms: number): Promise<{ released: Promise<unknown>; holding: () => boolean }> {
  const child = spawn('flock', [mode, path, '-c', `echo held; sleep ${ms / 1000}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  defer(() => child.kill());
  const released = once(child, 'exit');
  await Promise.race([once(child.stdout!, 'data'), released.then(() => Promise.reject(new Error(`flock ${mode} ${path} exited before holding it`)))]);
  return { released, holding: () => child.exitCode === null && child.signalCode === null };
}

/** `promise`, and whether it has settled yet. */
function watch<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  const p = promise.finally(() => (settled = true));
  return { promise: p, settled: () => settled };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('the records lock between the daemon and CNI calls (needs root)', () => {
  it('an ADD waits while the daemon hooks the recorded pods (exclusive); the daemon waits for an ADD in flight (shared)', { timeout: 60_000 }, async () => {
    const f = nodeFixture('pl', defer);
    await f.addPod('a');
    const lock = join(recordsDir(f, 'pl'), RECORDS_LOCK_FILE);

    // The daemon (another process here) holds the lock exclusive for 1.5 s: an ADD waits for it.
    const daemon = await holdLock(lock, '-x', 1500);
    const add = watch(f.addPod('b'));
    await sleep(700);
    expect(add.settled()).toBe(false);
    await daemon.released;
    await add.promise;

    // An ADD in flight (another process) holds it shared for 1.5 s: the daemon reads the records only after it.
    const inFlight = await holdLock(lock, '-s', 1500);
    const { node } = await loadOn(f);
    const hooking = watch(hook(f, node, capture().log));
    await sleep(700);
    expect(hooking.settled()).toBe(false);
    await inFlight.released;
    expect(await hooking.promise).toEqual({ hooked: 2, alreadyHooked: 0, vethGone: 0, failed: 0 });
  });

  it('CNI calls hold it shared: ADDs run side by side, beside another shared holder', { timeout: 60_000 }, async () => {
    const f = nodeFixture('pl', defer);
    mkdirSync(recordsDir(f, 'pl'), { recursive: true });
    const held = await holdLock(join(recordsDir(f, 'pl'), RECORDS_LOCK_FILE), '-s', 30_000);
    // Shared with another holder: these do not wait for it.
    const pods = await Promise.all([f.addPod('a'), f.addPod('b')]);
    expect(held.holding()).toBe(true);
    expect(new Set(pods.map((p) => p.ip)).size).toBe(2);
  });
});
