// 50 ADDs at once, then 50 DELs at once, each its own execution of the
// frontend binary (as a runtime starting 50 pods would), each pod its own
// netns: in-process mode (50 node processes contending for the IPAM flock),
// daemon mode (50 connections served concurrently by one process), and both
// at once on one store. Every ADD succeeds, no address is handed out twice,
// the kernel has what the results say, and the DELs leave nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { ipJson, isRoot } from '../support/netns.js';
import {
  cniEnv,
  endpointFiles,
  expectNothingLeft,
  ferryConf,
  ferryFixture,
  hostVeths,
  ipRecords,
  podAddrs,
  podNetns,
  prepareClients,
  runFrontend,
  startDaemon,
  type FerryFixture,
} from '../support/ferry.js';

const N = 50;

interface Storm {
  f: FerryFixture;
  mode: 'routed' | 'bridge';
  /** Socket per call index; undefined: in-process. */
  socketFor: (i: number) => string | undefined;
}

async function storm({ f, mode, socketFor }: Storm): Promise<void> {
  const conf = ferryConf(f, '1.0.0', { mode });
  const pods = Array.from({ length: N }, () => podNetns('fyx-pod'));
  const call = (verb: string, i: number) =>
    runFrontend(f, { socket: socketFor(i), env: cniEnv(verb, `storm-${i}`, pods[i]!), stdin: conf, timeoutMs: 55_000 });

  const adds = await Promise.all(pods.map((_, i) => call('ADD', i)));
  adds.forEach((r, i) => expect(r.status, `ADD ${i}: ${r.stdout}${r.stderr}`).toBe(0));
  const ips = adds.map((r) => r.json.ips.map((c: any) => c.address as string));
  const v4 = ips.map((a) => a[0]!);
  const v6 = ips.map((a) => a[1]!);
  expect(new Set(v4).size, 'distinct IPv4 addresses').toBe(N);
  expect(new Set(v6).size, 'distinct IPv6 addresses').toBe(N);
  for (const a of v4) expect(a).toMatch(new RegExp(`^${f.v4.replaceAll('.', '\\.')}\\.\\d+/(32|24)$`));

  // State and kernel agree with the results.
  const bare = ips.flat().map((a) => a.split('/')[0]!);
  expect(ipRecords(f)).toEqual([...bare].sort());
  expect(endpointFiles(f)).toHaveLength(N);
  expect(new Set(hostVeths(f)).size).toBe(N);
  pods.forEach((pod, i) => expect(podAddrs(pod).sort(), pod).toEqual([...ips[i]!].sort()));
  if (mode === 'routed') {
    const hostRoutes = ipJson<any[]>(f.node, ['-4', 'route', 'show']).filter((r) => /^fy/.test(r.dev));
    expect(hostRoutes).toHaveLength(N);
  }

  const dels = await Promise.all(pods.map((_, i) => call('DEL', i)));
  dels.forEach((r, i) => expect(r.status, `DEL ${i}: ${r.stdout}${r.stderr}`).toBe(0));
  expectNothingLeft(f, `${N} parallel DELs`);
  pods.forEach((pod) => expect(ipJson<any[]>(pod, ['link', 'show']).map((l) => l.ifname)).toEqual(['lo']));
}

describe.skipIf(!isRoot)(`${N} parallel ADDs and DELs through the frontend binary (needs root: namespaces, veths)`, () => {
  beforeAll(() => prepareClients(), 600_000);

  it('in-process mode (routed): 50 node processes, one IPAM store', async () => {
    const f = ferryFixture('fyx');
    await storm({ f, mode: 'routed', socketFor: () => undefined });
  }, 120_000);

  for (const mode of ['routed', 'bridge'] as const) {
    it(`daemon mode (${mode}): 50 concurrent connections to one daemon`, async () => {
      const f = ferryFixture('fyx');
      const daemon = await startDaemon(f);
      await storm({ f, mode, socketFor: () => daemon.socket });
    }, 60_000);
  }

  it('daemon and in-process at once (bridge): half the calls each, one store, one bridge', async () => {
    const f = ferryFixture('fyx');
    const daemon = await startDaemon(f);
    await storm({ f, mode: 'bridge', socketFor: (i) => (i % 2 === 0 ? daemon.socket : undefined) });
  }, 120_000);
});
