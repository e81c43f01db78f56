// Program-cost bench: what ferry's from_pod costs per packet, measured with
// BPF_PROG_RUN on crafted frames, at 10 and at 100k Services, beside a
// reference program that does the least a pod-to-pod datapath does.
//
//   make bench-prog-cost   (node --import tsx bench/prog-cost.ts [options]; --help lists them)
//
// Cases (prog-cost/cases.ts says how each is timed): a packet of an
// established Service flow, the first packet of a new flow (backend picked
// at random; by Maglev), a plain pod→pod packet, each delivered into a local
// pod as host routing does. References (prog-cost/reference.bpf.c, compiled here):
// nop, what the test-run loop adds to each run; floor_redirect (one hash
// lookup, the MACs rewritten, bpf_redirect_peer()), floor_ct_insert
// (one conntrack-like entry of a new key written) and floor_hash_insert (the
// same into a small plain hash: the cheapest insert there is). Scales alternate round
// by round; medians over the rounds are reported. Raw figures go to
// build/bench/prog-cost-<timestamp>.json.
//
// Needs root and `make` (build/bpf/lb.o). BPF_PROG_RUN sends nothing
// anywhere; the objects are loaded under a pin root of the run's own,
// removed at the end, on failure and on Ctrl-C.
import { join } from 'node:path';
import { Command } from 'commander';
import { BpfObject, makePinDir, removePinDir } from '../engine/bpf/index.js';
import { OBJECT_FILE } from '../engine/dataplane/layout.js';
import { bpfObjectPath } from '../engine/dataplane/paths.js';
import { BATCH, FRONTENDS, LOCAL_PODS, measureCases, measureReference, MEASURED_SERVICES, POD, type CaseResult, type Reference } from './prog-cost/cases.js';
import { LbUnderTest } from './prog-cost/fixture.js';
import { renderProgCost } from './prog-cost/report.js';
import { Cleanup } from './support/cleanup.js';
import { environment, integer, integers, printEnvironment, REPO_ROOT, requireRoot, say, thousands, writeRaw } from './support/cli.js';
import { compileBpf } from './support/compile.js';

interface Options {
  scales: number[];
  calls: number;
  rounds: number;
}

function parseOptions(): Options {
  const program = new Command('bench/prog-cost.ts')
    .description("ns per packet of ferry's from_pod under BPF_PROG_RUN, at 10 and at 100k Services, beside a reference program")
    .option('--scales <list>', 'Services in the maps, comma-separated', integers(MEASURED_SERVICES), [10, 100_000])
    .option('--calls <n>', `BPF_PROG_RUN calls per case and round, ${BATCH} runs each`, integer(10), 1_000)
    .option('--rounds <n>', 'rounds over all scales (the median is reported)', integer(1), 3);
  program.parse();
  return program.opts<Options>();
}

/** The floor program's one peer: the pod address the frames go to, on some ifindex. */
function floorPeer(): [Buffer, Buffer] {
  const key = Buffer.from(POD.address.split('.').map(Number));
  const value = Buffer.alloc(16);
  value.writeUInt32LE(1, 0); // ifindex (host order); the test run redirects nowhere
  value.set([0x02, 0, 0, 0, 0, 0x02], 4); // the pod's MAC
  value.set([0x02, 0, 0, 0, 0, 0x01], 10); // the gateway's
  return [key, value];
}

async function main(): Promise<void> {
  const o = parseOptions();
  requireRoot('program-cost');
  const cleanup = new Cleanup();
  try {
    const referenceObject = compileBpf(join(REPO_ROOT, 'bench/prog-cost/reference.bpf.c'), 'prog-cost-reference.o');
    const pinRoot = makePinDir('ferry-bench-prog-cost');
    cleanup.add(`remove the BPF pins under ${pinRoot}`, () => removePinDir(pinRoot));
    const maxScale = Math.max(...o.scales);
    const lb = await LbUnderTest.load(process.env.LB_OBJ ?? bpfObjectPath(OBJECT_FILE), join(pinRoot, 'lb'), maxScale);
    cleanup.add('close lb.o', () => lb.close());
    const reference = await BpfObject.open(referenceObject).load();
    cleanup.add('close the reference programs', () => reference.close());
    const [peerKey, peerValue] = floorPeer();
    reference.map('floor_peers').update(peerKey, peerValue);
    for (const s of FRONTENDS) lb.addService(s);
    for (const address of LOCAL_PODS) lb.addLocalPod(address);

    const started = new Date();
    const env = environment();
    const runs: Array<{ round: number; scale: number; serviceEntries: number; reference: Reference; cases: CaseResult[] }> = [];
    for (let round = 0; round < o.rounds; round++) {
      // Scales in alternating order: rising, then falling.
      for (const scale of round % 2 === 0 ? o.scales : [...o.scales].reverse()) {
        lb.setFillers(scale - MEASURED_SERVICES);
        const serviceEntries = lb.serviceEntries;
        const ref = await measureReference(
          { nop: reference.program('nop'), floor: reference.program('floor_redirect'), ctInsert: reference.program('floor_ct_insert'), hashInsert: reference.program('floor_hash_insert') },
          { ctInsert: reference.map('floor_ct'), hashInsert: reference.map('floor_hash') },
          o.calls,
        );
        const cases = await measureCases(lb, o.calls);
        runs.push({ round, scale, serviceEntries, reference: ref, cases });
        say(`  round ${round + 1}/${o.rounds}, ${thousands(scale)} Services: ${cases.map((c) => `${c.key} ${c.ns.toFixed(0)} ns`).join(', ')}; floor ${ref.floor} ns, nop ${ref.nop} ns`);
      }
    }
    const file = writeRaw('prog-cost', started, { started: started.toISOString(), environment: env, options: o, capacity: lb.capacity, runs });
    printEnvironment(`from_pod per packet (BPF_PROG_RUN), ${started.toISOString()}`, env);
    console.log(`  lb.o loaded with services map ${thousands(lb.capacity.services)} and backends map ${thousands(lb.capacity.backends)} entries (room for ${thousands(maxScale)} Services; the object declares 65,536)`);
    console.log(`  ${o.rounds} rounds; per case and round ${thousands(o.calls)} BPF_PROG_RUN calls of ${BATCH} runs (${thousands(o.calls * BATCH)} packets); ns per packet = median over the calls`);
    console.log(`\n${renderProgCost(o.scales, runs)}`);
    console.log(`\nraw figures: ${file}`);
  } finally {
    cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/prog-cost.ts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
