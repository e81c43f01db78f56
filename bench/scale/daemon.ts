// The daemon the scale bench measures: what `ferry daemon --kubeconfig`
// runs for its Services (plugin/daemon/node.ts) — the dataplane loaded and
// pinned, a Reconciler adopting the maps, K8sApiSource's informers feeding
// ServiceSync — with the load balancer's maps sized for the cluster (the
// daemon's --map-capacity; lb.o's 65,536 entries do not hold 10k Services
// with 100k endpoints). No CNI socket, health or metrics
// server: they do nothing here. The bench runs this file transpiled to
// plain JavaScript against dist/ (support/compile.ts), as the daemon runs,
// not under tsx, whose loader would add its own memory.
//
//   node scale-daemon.mjs KUBECONFIG PIN_ROOT SERVICE_ENTRIES BACKENDS MIN_SYNC_MS
import pino from 'pino';
import { loadDataplane } from '../../engine/dataplane/loader.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import { K8sApiSource, loadKubeConfig } from '../../plugin/daemon/k8s-source.js';
import { ServiceSync } from '../../plugin/daemon/services.js';

const [kubeconfig, pinRoot, serviceEntries, backends, minSyncMs] = process.argv.slice(2);
const log = pino({ name: 'ferry-daemon' });
// As node.ts: the informers list while the dataplane loads.
let sync: ServiceSync | undefined;
const source = new K8sApiSource({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfig! }), nodeName: 'bench', log, onChange: () => sync?.schedule() });
source.start();
const dp = await loadDataplane(pinRoot, undefined, { maxEntries: { services: Number(serviceEntries), backends: Number(backends) } });
log.info({ pinRoot, services: dp.maps.services.maxEntries, backends: dp.maps.backends.maxEntries, memory: process.memoryUsage() }, 'dataplane loaded');
const reconciler = await Reconciler.adopt(dp.maps);
sync = new ServiceSync({
  path: source,
  nodeName: 'bench',
  reconciler,
  maps: dp.maps,
  log,
  minSyncPeriodMs: Number(minSyncMs),
  // Where the memory is after each sync: the V8 heap beside the RSS the bench reads;
  // with --daemon-node-args=--expose-gc, also what is live after a full GC.
  hooks: {
    synced: () => {
      log.info({ memory: process.memoryUsage() }, 'memory');
      if (typeof globalThis.gc === 'function') {
        globalThis.gc();
        log.info({ live: process.memoryUsage() }, 'memory after a full GC');
      }
    },
  },
});
if (source.ready) sync.schedule();

process.once('SIGTERM', () => {
  void Promise.all([sync?.close(), source.close()]).finally(() => {
    dp.close();
    process.exit(0);
  });
});
