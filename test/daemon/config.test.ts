// The daemon's settings (plugin/daemon/config.ts, flags.ts): kube-proxy's
// defaults, a YAML file with flags over it, and errors that name the field
// or the flag. No root needed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadDaemonConfig, parseDuration, parseListenAddress } from '../../plugin/daemon/config.js';
import { daemonConfigFromFlags, nodeDaemonOptions } from '../../plugin/daemon/flags.js';

describe('daemon settings', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
    file = join(dir, 'daemon.yaml');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to kube-proxy\'s bind addresses and periods', () => {
    expect(loadDaemonConfig(undefined)).toEqual({
      cniSocket: '/run/ferry/cni.sock',
      pinRoot: '/sys/fs/bpf/ferry',
      cniDataDir: '/var/lib/ferry',
      mapCapacity: 65_536,
      mapCapacity6: 65_536,
      inCluster: false,
      nodeName: hostname(),
      nodePortAddresses: [],
      masqueradeAll: false,
      minSyncPeriod: 100,
      syncPeriod: 30_000,
      configSyncPeriod: 15 * 60_000,
      healthzBindAddress: '0.0.0.0:10256',
      metricsBindAddress: '127.0.0.1:10249',
      conntrackGCInterval: 30_000,
      logLevel: 'info',
      vxlanVNI: 1,
      vxlanPort: 8472,
      vxlanDevice: 'ferry.vxlan',
    });
  });

  it('node network: mode and VXLAN settings from the file and flags, checked', () => {
    writeFileSync(file, ['services: /etc/ferry/services', 'nodeNetwork: vxlan', 'vxlanVNI: 42'].join('\n'));
    const options = nodeDaemonOptions(daemonConfigFromFlags({ config: file, vxlanPort: '4789' }));
    expect(options.nodeNetwork).toEqual({ mode: 'vxlan', vxlan: { device: 'ferry.vxlan', vni: 42, port: 4789 } });
    expect(nodeDaemonOptions(loadDaemonConfig(undefined, { services: '/x' })).nodeNetwork).toBeUndefined();
    expect(() => daemonConfigFromFlags({ config: file, vxlanVni: 'abc' })).toThrow(/^--vxlan-vni: Expected number, received nan$/);
    expect(() => daemonConfigFromFlags({ nodeNetwork: 'vxlan' })).toThrow(/^--node-network: needs the Node objects: services, kubeconfig or inCluster$/);
    expect(() => daemonConfigFromFlags({ services: '/x', nodeNetwork: 'bgp' })).toThrow(/^--node-network: Invalid enum value\. Expected 'direct' \| 'vxlan', received 'bgp'$/);
  });

  it("the CNI's records folder: the CNI config's dataDir default, from the file or the flag, an absolute path", () => {
    writeFileSync(file, 'cniDataDir: /srv/ferry\n');
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file })).cniDataDir).toBe('/srv/ferry');
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file, cniDataDir: '/var/lib/ferry-b' })).cniDataDir).toBe('/var/lib/ferry-b');
    expect(() => daemonConfigFromFlags({ cniDataDir: 'var/lib/ferry' })).toThrow(/^--cni-data-dir: "var\/lib\/ferry" is not an absolute path$/);
    writeFileSync(file, 'cniDataDir: ""\n');
    expect(() => loadDaemonConfig(file)).toThrow(`config ${file}: cniDataDir: "" is not an absolute path`);
  });

  it('map capacity from the file or the flag, checked', () => {
    writeFileSync(file, 'mapCapacity: 131072\n');
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file })).mapCapacity).toBe(131_072);
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file, mapCapacity: '262144' })).mapCapacity).toBe(262_144);
    expect(() => daemonConfigFromFlags({ mapCapacity: 'lots' })).toThrow(/^--map-capacity: Expected number, received nan$/);
    writeFileSync(file, 'mapCapacity: 100\n');
    expect(() => loadDaemonConfig(file)).toThrow(`config ${file}: mapCapacity: Number must be greater than or equal to 8192`);
    // The IPv6 maps' own setting, named alike.
    writeFileSync(file, 'mapCapacity: 131072\nmapCapacity6: 262144\n');
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file }))).toMatchObject({ mapCapacity: 131_072, mapCapacity6: 262_144 });
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file, mapCapacity6: '65536' })).mapCapacity6).toBe(65_536);
    expect(() => daemonConfigFromFlags({ mapCapacity6: '10' })).toThrow(/^--map-capacity6: Number must be greater than or equal to 1024$/);
  });

  it('cluster CIDRs: IPv4 and IPv6 mixed, from the file or the flag; a bad one, or one too many of a family, is named', () => {
    // Unset: attachUplink()'s default (DEFAULT_CLUSTER_CIDRS, both families).
    expect(nodeDaemonOptions(loadDaemonConfig(undefined)).clusterCidrs).toBeUndefined();
    writeFileSync(file, 'clusterCIDR: 10.244.0.0/16,fd00:10:244::/56\n');
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file })).clusterCidrs).toEqual(['10.244.0.0/16', 'fd00:10:244::/56']);
    expect(nodeDaemonOptions(daemonConfigFromFlags({ config: file, clusterCidr: 'fd00:1::/64, 10.0.0.0/8' })).clusterCidrs).toEqual(['fd00:1::/64', '10.0.0.0/8']);
    // Four of each family fit, in any order; a fifth IPv6 one is named.
    const four6 = ['fd00:1::/64', 'fd00:2::/64', 'fd00:3::/64', 'fd00:4::/64'];
    const four4 = ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16', '10.4.0.0/16'];
    expect(nodeDaemonOptions(daemonConfigFromFlags({ clusterCidr: [...four6, ...four4].join(',') })).clusterCidrs).toHaveLength(8);
    expect(() => daemonConfigFromFlags({ clusterCidr: [...four6, '10.0.0.0/8', 'fd00:5::/64'].join(',') })).toThrow(
      /^--cluster-cidr: node_cfg\.cluster_cidrs6: fd00:5::\/64 is one IPv6 cluster CIDR too many: at most 4 of each family$/,
    );
    expect(() => daemonConfigFromFlags({ clusterCidr: [...four4, '10.5.0.0/16'].join(',') })).toThrow(/10\.5\.0\.0\/16 is one IPv4 cluster CIDR too many/);
    expect(() => daemonConfigFromFlags({ clusterCidr: '10.244.0.0/16,fd00:10:244::1/56' })).toThrow(/^--cluster-cidr: node_cfg\.cluster_cidrs6\[0\]: fd00:10:244::1\/56 has host bits set/);
    writeFileSync(file, 'clusterCIDR: 10.244.0.0/16,fd00::/64,10.96.0.0\n');
    expect(() => loadDaemonConfig(file)).toThrow(`config ${file}: clusterCIDR: "10.96.0.0" is not a CIDR like 10.244.0.0/16 or fd00:10:244::/56`);
  });

  it('reads the file, and flags override it; an empty address turns a server off', () => {
    writeFileSync(
      file,
      ['kubeconfig: /etc/kubernetes/ferry.conf', 'nodeName: node-a', 'minSyncPeriod: 1s', 'syncPeriod: 1m30s', 'healthzBindAddress: "[::]:10256"', 'metricsBindAddress: ""', 'nodePortAddresses: [192.168.0.0/16]'].join('\n'),
    );
    const config = daemonConfigFromFlags({ config: file, nodeName: 'node-b', nodeportAddresses: '10.0.0.0/8, 172.16.0.0/12', gcInterval: '5s' });
    expect(config).toMatchObject({
      kubeconfig: '/etc/kubernetes/ferry.conf',
      nodeName: 'node-b',
      minSyncPeriod: 1000,
      syncPeriod: 90_000,
      healthzBindAddress: '[::]:10256',
      metricsBindAddress: undefined,
      nodePortAddresses: ['10.0.0.0/8', '172.16.0.0/12'],
      conntrackGCInterval: 5000,
    });
    expect(nodeDaemonOptions(config)).toMatchObject({ api: { kubeconfig: '/etc/kubernetes/ferry.conf' }, nodeName: 'node-b', minSyncPeriodMs: 1000, syncPeriodMs: 90_000, gcIntervalMs: 5000 });
    expect(nodeDaemonOptions(config).metricsBindAddress).toBeUndefined();
  });

  it('names the bad field: the file\'s key, or the flag that set it', () => {
    writeFileSync(file, 'syncPeriod: soon\nnodePortAddresses: [10.0.0.0/8, 10.1.2.3]\nmasqueradeAll: true\nminSyncPeriods: 1s\n');
    expect(() => loadDaemonConfig(file)).toThrow(
      `config ${file}: nodePortAddresses[1]: "10.1.2.3" is not a CIDR like 10.244.0.0/16; ` +
        `config ${file}: masqueradeAll: true is not supported: ferry's dataplane masquerades no ClusterIP traffic; ` +
        `config ${file}: syncPeriod: "soon" is not a duration like 100ms, 30s or 1m30s; ` +
        `config ${file}: unknown setting minSyncPeriods`,
    );
    writeFileSync(file, 'healthzBindAddress: 0.0.0.0:10256\n');
    expect(() => daemonConfigFromFlags({ config: file, healthzBindAddress: '10256', gcInterval: '0' })).toThrow('--healthz-bind-address: "10256" is not HOST:PORT; --gc-interval: must be more than 0');
    expect(() => daemonConfigFromFlags({ services: '/srv', inCluster: true })).toThrow('--services: the file source excludes the API server source');
    expect(() => daemonConfigFromFlags({ kubeconfig: true }, {})).toThrow('--kubeconfig without a path needs $KUBECONFIG');
    expect(daemonConfigFromFlags({ kubeconfig: true }, { KUBECONFIG: '/k' }).kubeconfig).toBe('/k');
    expect(daemonConfigFromFlags({ gcInterval: '3600000' }).conntrackGCInterval, 'bare milliseconds, as before').toBe(3_600_000);
    writeFileSync(file, '- a list\n');
    expect(() => loadDaemonConfig(file)).toThrow(`config ${file}: must be a mapping of settings, not a list`);
    expect(() => loadDaemonConfig(join(dir, 'missing.yaml'))).toThrow(/missing\.yaml: ENOENT/);
  });

  it('parses Go durations and listen addresses', () => {
    expect(['0', '250ms', '1.5s', '2m', '1h2m3s', '500us'].map(parseDuration)).toEqual([0, 250, 1500, 120_000, 3_723_000, 0.5]);
    for (const bad of ['', '10', '1d', 's', '-1s']) expect(() => parseDuration(bad), bad).toThrow('is not a duration');
    expect(parseListenAddress('127.0.0.1:10249')).toEqual({ host: '127.0.0.1', port: 10249 });
    expect(parseListenAddress('[::1]:10256')).toEqual({ host: '::1', port: 10256 });
    expect(parseListenAddress(':10256')).toEqual({ host: '0.0.0.0', port: 10256 });
    for (const bad of ['10256', 'host:70000', '::1:10256']) expect(() => parseListenAddress(bad), bad).toThrow('is not HOST:PORT');
  });
});
