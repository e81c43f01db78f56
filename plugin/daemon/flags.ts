// `ferry daemon`'s flags for the settings config.ts checks. A flag overrides
// the config file (--config); without either, config.ts's default applies,
// which --help shows. Commander gets no defaults of its own: they would hide
// the file's values.
import type { Command } from 'commander';
import { ConfigError, DEFAULTS, FLAGS, loadDaemonConfig, type DaemonConfig, type DaemonConfigInput } from './config.js';
import { DEFAULT_CLUSTER_CIDRS } from '../../engine/dataplane/uplink.js';
import type { NodeDaemonOptions } from './node.js';

/** What commander hands the action for these flags. */
export interface DaemonFlagValues {
  config?: string;
  cniSocket?: string;
  pinRoot?: string;
  cniDataDir?: string;
  mapCapacity?: string;
  mapCapacity6?: string;
  services?: string;
  kubeconfig?: string | true;
  inCluster?: boolean;
  nodeName?: string;
  uplink?: string;
  clusterCidr?: string;
  nodeportAddresses?: string;
  minSyncPeriod?: string;
  syncPeriod?: string;
  configSyncPeriod?: string;
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  gcInterval?: string;
  logLevel?: string;
  nodeNetwork?: string;
  vxlanVni?: string;
  vxlanPort?: string;
  vxlanDevice?: string;
}

const dflt = (value: string) => `(default: ${value})`;

export function addDaemonSettingFlags(command: Command): Command {
  return command
    .option('--config <file>', 'YAML file of the settings below (README: "Daemon settings"); flags override it')
    .option(`${FLAGS.cniSocket} <path>`, `unix socket the CNI frontend connects to ${dflt(DEFAULTS.cniSocket)}`)
    .option(`${FLAGS.pinRoot} <dir>`, `where the dataplane is pinned on bpffs ${dflt(DEFAULTS.pinRoot)}`)
    .option(`${FLAGS.cniDataDir} <dir>`, `the CNI config's dataDir: the routed pods ADD recorded there are hooked to the dataplane at start ${dflt(DEFAULTS.cniDataDir)}`)
    .option(`${FLAGS.mapCapacity} <n>`, `entries of the services map (a frontend and its backends) and the backends map ${dflt(String(DEFAULTS.mapCapacity))}`)
    .option(`${FLAGS.mapCapacity6} <n>`, `the same for the IPv6 maps (IPv6 Services) ${dflt(String(DEFAULTS.mapCapacity6))}`)
    .option(`${FLAGS.services} <path>`, 'YAML/JSON file or folder of v1 Services and discovery.k8s.io/v1 EndpointSlices (watched)')
    .option(`${FLAGS.kubeconfig} [path]`, 'take Services, EndpointSlices and Nodes from the API server in this kubeconfig (no value: $KUBECONFIG)')
    .option(FLAGS.inCluster, "take them from the API server, with the pod's service account")
    .option(`${FLAGS.nodeName} <name>`, `this node's name, for traffic policy Local ${dflt('the host name')}`)
    .option(`${FLAGS.uplink} <ifname>`, 'attach from_uplink there; its global IPv4 and IPv6 addresses are the node addresses')
    .option(`${FLAGS.clusterCIDR} <cidrs>`, `the pod CIDRs, comma-separated, IPv4 and IPv6 (at most 4 each): pods' traffic leaving through the uplink to outside them is masqueraded ${dflt(DEFAULT_CLUSTER_CIDRS.join(','))}`)
    .option(`${FLAGS.nodePortAddresses} <cidrs>`, 'comma-separated CIDRs picking the node addresses NodePorts are served on (default: all)')
    .option(`${FLAGS.minSyncPeriod} <duration>`, `quiet time after a change before the maps are synced ${dflt(DEFAULTS.minSyncPeriod)}`)
    .option(`${FLAGS.syncPeriod} <duration>`, `/healthz fails when a change waits 2 × this for a sync ${dflt(DEFAULTS.syncPeriod)}`)
    .option(`${FLAGS.configSyncPeriod} <duration>`, `full sync from the API server source's store this often ${dflt(DEFAULTS.configSyncPeriod)}`)
    .option(`${FLAGS.healthzBindAddress} <host:port>`, `kube-proxy's /healthz and /livez; '' turns it off ${dflt(DEFAULTS.healthzBindAddress)}`)
    .option(`${FLAGS.metricsBindAddress} <host:port>`, `Prometheus /metrics; '' turns it off ${dflt(DEFAULTS.metricsBindAddress)}`)
    .option(`${FLAGS.conntrackGCInterval} <duration>`, `conntrack GC interval ${dflt(DEFAULTS.conntrackGCInterval)}`)
    .option(`${FLAGS.logLevel} <level>`, `fatal, error, warn, info, debug, trace or silent ${dflt(DEFAULTS.logLevel)}`)
    .option(`${FLAGS.nodeNetwork} <mode>`, "direct or vxlan: reach other nodes' pod CIDRs (from the Node objects) by routes or an overlay (default: off)")
    .option(`${FLAGS.vxlanVNI} <n>`, `vxlan mode: VXLAN network identifier ${dflt(String(DEFAULTS.vxlanVNI))}`)
    .option(`${FLAGS.vxlanPort} <n>`, `vxlan mode: UDP port ${dflt(String(DEFAULTS.vxlanPort))}`)
    .option(`${FLAGS.vxlanDevice} <name>`, `vxlan mode: the device's name, the CNI config's vxlanDevice ${dflt(DEFAULTS.vxlanDevice)}`);
}

/** The settings of --config with the flags over them; throws a ConfigError naming the flag or field. */
export function daemonConfigFromFlags(values: DaemonFlagValues, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  let kubeconfig = values.kubeconfig;
  if (kubeconfig === true) {
    kubeconfig = env.KUBECONFIG;
    if (kubeconfig === undefined || kubeconfig === '') throw new ConfigError(`${FLAGS.kubeconfig} without a path needs $KUBECONFIG`);
  }
  const flags: DaemonConfigInput = {
    cniSocket: values.cniSocket,
    pinRoot: values.pinRoot,
    cniDataDir: values.cniDataDir,
    mapCapacity: values.mapCapacity === undefined ? undefined : Number(values.mapCapacity),
    mapCapacity6: values.mapCapacity6 === undefined ? undefined : Number(values.mapCapacity6),
    services: values.services,
    kubeconfig,
    inCluster: values.inCluster,
    nodeName: values.nodeName,
    uplink: values.uplink,
    clusterCIDR: values.clusterCidr,
    nodePortAddresses: values.nodeportAddresses?.split(',').map((c) => c.trim()).filter((c) => c !== ''),
    minSyncPeriod: values.minSyncPeriod,
    syncPeriod: values.syncPeriod,
    configSyncPeriod: values.configSyncPeriod,
    healthzBindAddress: values.healthzBindAddress,
    metricsBindAddress: values.metricsBindAddress,
    // --gc-interval took bare milliseconds before it took durations.
    conntrackGCInterval: values.gcInterval !== undefined && /^\d+$/.test(values.gcInterval) ? `${values.gcInterval}ms` : values.gcInterval,
    logLevel: values.logLevel as DaemonConfigInput['logLevel'],
    nodeNetwork: values.nodeNetwork as DaemonConfigInput['nodeNetwork'],
    vxlanVNI: values.vxlanVni === undefined ? undefined : Number(values.vxlanVni),
    vxlanPort: values.vxlanPort === undefined ? undefined : Number(values.vxlanPort),
    vxlanDevice: values.vxlanDevice,
  };
  return loadDaemonConfig(values.config, flags);
}

/** startNodeDaemon()'s options for checked settings (all but the log). */
export function nodeDaemonOptions(c: DaemonConfig): NodeDaemonOptions {
  return {
    cniSocket: c.cniSocket,
    pinRoot: c.pinRoot,
    cniDataDir: c.cniDataDir,
    mapCapacity: c.mapCapacity,
    mapCapacity6: c.mapCapacity6,
    nodeName: c.nodeName,
    ...(c.services !== undefined && { services: c.services }),
    ...(c.kubeconfig !== undefined && { api: { kubeconfig: c.kubeconfig } }),
    ...(c.inCluster && { api: { inCluster: true } }),
    ...(c.uplink !== undefined && { uplink: c.uplink }),
    ...(c.clusterCIDR !== undefined && { clusterCidrs: c.clusterCIDR }),
    nodePortAddresses: c.nodePortAddresses,
    minSyncPeriodMs: c.minSyncPeriod,
    syncPeriodMs: c.syncPeriod,
    configSyncPeriodMs: c.configSyncPeriod,
    healthzBindAddress: c.healthzBindAddress,
    metricsBindAddress: c.metricsBindAddress,
    gcIntervalMs: c.conntrackGCInterval,
    ...(c.nodeNetwork !== undefined && { nodeNetwork: { mode: c.nodeNetwork, vxlan: { device: c.vxlanDevice, vni: c.vxlanVNI, port: c.vxlanPort } } }),
  };
}
