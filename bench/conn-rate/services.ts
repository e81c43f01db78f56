// The Services the connection-rate bench loads at each scale: the measured
// one (ClusterIP MEASURED_IP:80 → the server pod's TARGET_PORT, where the
// connrate server listens) among N − 1 fillers,
// into ferry's maps and, the same Services, as kube-proxy's iptables rules
// with the measured Service's rule last in KUBE-SERVICES (the worst place
// for a linear walk). Each load is timed.
import { backendIdsIn } from '../../engine/dataplane/backend-slots.js';
import type { Dataplane } from '../../engine/dataplane/loader.js';
import type { Reconciler } from '../../engine/dataplane/reconcile.js';
import { desiredState } from '../../engine/dataplane/reconcile.js';
import { kubeProxyRules, restoreInNetns, type IptablesBackend } from '../dataplane/kube-proxy.js';
import { fillerServices, kubeService, modelCluster, type BenchService } from '../support/cluster.js';
import { RECONCILER_MAX_FRONTENDS, writeFillers } from '../support/fill-maps.js';

export const MEASURED_IP = '10.96.0.10';
export const MEASURED_PORT = 80;

function measured(server: { ip: string }): BenchService {
  return { name: 'measured', clusterIp: MEASURED_IP, endpoints: [server.ip] };
}

export interface Loaded {
  ms: number;
  /** How the Services got into the maps. */
  how: string;
}

export class FerryServices {
  /** Fillers the Reconciler programmed; beyond them, written directly. */
  #reconciled = 0;
  #direct = 0;
  /**
   * The backend id of the first filler written directly: the one after the
   * highest the Reconciler bound (ids are indices of the backends map, an
   * array sized for every filler: conn-rate.ts).
   */
  #firstDirectId = 0;

  constructor(
    private readonly dp: Dataplane,
    private readonly reconciler: Reconciler,
    private readonly server: { ip: string },
    private readonly fillerEndpoints: number,
  ) {}

  /** Makes `total` Services (the measured one among them) the maps' contents; scales only grow once past the Reconciler's reach. */
  load(total: number): Loaded {
    const fillers = fillerServices(total - 1, this.fillerEndpoints);
    const t0 = performance.now();
    if (total <= RECONCILER_MAX_FRONTENDS) {
      if (this.#direct > 0) throw new Error('scales must rise once fillers are written directly');
      const { services, endpoints } = modelCluster([measured(this.server), ...fillers]);
      this.reconciler.apply(desiredState(services, endpoints, { nodeName: 'bench' }));
      this.#reconciled = fillers.length;
      return { ms: performance.now() - t0, how: 'Reconciler (desiredState + apply)' };
    }
    if (this.fillerEndpoints !== 1) throw new Error('fillers past the Reconciler\'s reach have one endpoint');
    if (this.#direct === 0) this.#firstDirectId = backendIdsIn(this.dp.maps.backends).reduce((a, b) => Math.max(a, b), 0) + 1;
    writeFillers(this.dp.maps, fillers.slice(this.#reconciled + this.#direct), this.#firstDirectId + this.#direct);
    const added = fillers.length - this.#reconciled - this.#direct;
    this.#direct += added;
    return { ms: performance.now() - t0, how: `${this.#reconciled + 1} by the Reconciler, ${this.#direct} more written directly (rev-NAT indices are 16 bits)` };
  }
}

/** The same Services as kube-proxy's rules in the node netns; returns iptables-restore's wall time. */
export function loadIptables(node: string, backend: IptablesBackend, total: number, server: { ip: string }, fillerEndpoints: number): Loaded {
  const services = [...fillerServices(total - 1, fillerEndpoints), measured(server)].map((s) => kubeService(s));
  const ms = restoreInNetns(node, backend, kubeProxyRules(services), { noflush: false });
  return { ms, how: `iptables-${backend}-restore, the whole ruleset` };
}

/** kube-proxy's view of the measured Service, for its DNAT counter. */
export const measuredKube = (server: { ip: string }) => kubeService(measured(server));
