// A node for end-to-end dataplane tests: the dataplane loaded and pinned as
// the daemon does it, a node namespace, and pods attached by ferry's CNI ADD
// (routed mode, which hooks from_pod onto each host veth). Everything made
// is undone by the caller's cleanups, last first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane, type Dataplane } from '../../engine/dataplane/loader.js';
import { Netns } from '../../engine/netns/netns.js';
import { runCni } from '../../plugin/cni/index.js';
import { createHandlers } from '../../plugin/commands/handlers.js';
import { makeNetns } from '../support/netns.js';

export interface Pod {
  netns: Netns;
  ip: string;
  hostVeth: string;
}

export interface PodNode {
  dp: Dataplane;
  node: Netns;
  add(label: string): Promise<Pod>;
  del(label: string, pod: Pod): Promise<void>;
}

/**
 * `prefix` names the namespaces (keep it short: names are ≤ 15 characters
 * with a random part). With `ebpf: false` the dataplane is loaded but CNI ADD
 * does not attach it: pods routed by the stack alone.
 */
export async function podNode(cleanups: Array<() => unknown>, prefix: string, options: { ebpf?: boolean } = {}): Promise<PodNode> {
  const pinRoot = makePinDir(`ferry-${prefix}`);
  cleanups.push(() => removePinDir(pinRoot));
  const dp = await loadDataplane(pinRoot);
  cleanups.push(() => dp.close());
  const state = mkdtempSync(join(tmpdir(), `ferry-${prefix}-`));
  cleanups.push(() => rmSync(state, { recursive: true, force: true }));
  const node = Netns.open(makeNetns(`${prefix}-node`));
  cleanups.push(() => node.close());
  const handlers = createHandlers({ nodeNetns: node });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: prefix,
    type: 'ferry',
    logFile: join(state, 'cni.log'),
    dataDir: join(state, 'state'),
    ...(options.ebpf !== false && { ebpf: { pinRoot } }),
    ipam: { type: 'ferry', dataDir: join(state, 'ipam'), ranges: [[{ subnet: '10.244.0.0/24' }]] },
  });
  const call = async (command: 'ADD' | 'DEL', label: string, netns: Netns) => {
    const env = { CNI_COMMAND: command, CNI_CONTAINERID: `${prefix}-${label}`, CNI_NETNS: netns.path, CNI_IFNAME: 'eth0' };
    const out = await runCni({ env, stdin: conf }, handlers);
    expect(out.exitCode, out.stdout).toBe(0);
    return out.stdout;
  };
  const add = async (label: string): Promise<Pod> => {
    const netns = Netns.open(makeNetns(`${prefix}-${label}`));
    cleanups.push(() => netns.close());
    const result = JSON.parse(await call('ADD', label, netns)) as { interfaces: Array<{ name: string }>; ips: Array<{ address: string }> };
    return { netns, ip: result.ips[0]!.address.split('/')[0]!, hostVeth: result.interfaces[0]!.name };
  };
  const del = async (label: string, pod: Pod) => {
    await call('DEL', label, pod.netns);
  };
  return { dp, node, add, del };
}
