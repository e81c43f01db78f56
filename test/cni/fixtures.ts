// Shared inputs for the plugin/cni tests: configs, environments, fake verbs.
import pino from 'pino';
import type { CniHandlers, CniRequest } from '../../plugin/cni/request.js';
import { emptyResult, type Result } from '../../plugin/cni/result.js';

/** A logger that writes nothing, so tests never touch /var/log/ferry. */
export const silent = pino({ level: 'silent' });

/** A valid ferry config of `cniVersion`, with `extra` merged over it. */
export function conf(cniVersion = '1.1.0', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion,
    name: 'k8s-pod-network',
    type: 'ferry',
    ipam: { type: 'ferry', ranges: [[{ subnet: '10.244.1.0/24', gateway: '10.244.1.1' }], [{ subnet: 'fd00:10:244:1::/64' }]] },
    ...extra,
  };
}

export const stdin = (cniVersion = '1.1.0', extra: Record<string, unknown> = {}) => JSON.stringify(conf(cniVersion, extra));

/** The environment kubelet (through containerd) gives an ADD. */
export function env(command = 'ADD', extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: '8f1b2c3d4e5f',
    CNI_NETNS: '/var/run/netns/cni-1234',
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=8f1b2c3d4e5f;K8S_POD_UID=0d3c',
    CNI_PATH: '/opt/cni/bin',
    ...extra,
  };
}

/** What ferry's ADD would build for one pod: the pod's eth0, the host veth, a v4 and a v6 address. */
export function podResult(netns = '/var/run/netns/cni-1234'): Result {
  return {
    ...emptyResult(),
    interfaces: [
      { name: 'fer8f1b2c3d', mac: '4e:2a:11:22:33:44' },
      { name: 'eth0', mac: '0a:58:0a:f4:01:05', mtu: 1450, sandbox: netns },
    ],
    ips: [
      { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 1 },
      { address: 'fd00:10:244:1::5/64', interface: 1 },
    ],
    routes: [
      { dst: '0.0.0.0/0', gw: '169.254.1.1', mtu: 1450, scope: 0 },
      { dst: '::/0', gw: 'fe80::1', table: 254 },
    ],
    dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] },
  };
}

/** Handlers that record their requests and succeed; `over` replaces any of them. */
export function fakeHandlers(over: Partial<CniHandlers> = {}): CniHandlers & { calls: CniRequest[] } {
  const calls: CniRequest[] = [];
  return {
    calls,
    add: async (req) => {
      calls.push(req);
      return podResult(req.netns);
    },
    del: async (req) => void calls.push(req),
    check: async (req) => void calls.push(req),
    status: async (req) => void calls.push(req),
    gc: async (req) => void calls.push(req),
    ...over,
  };
}
