// ferry's network config: defaults, and the code and key path of each error.
import { describe, expect, it } from 'vitest';
import { checkSupported, parseNetConf } from '../../plugin/cni/config.js';
import type { CniError } from '../../plugin/cni/errors.js';
import { conf } from './fixtures.js';

function failure(f: () => unknown): [number, string] {
  try {
    f();
  } catch (e) {
    return [(e as CniError).code, (e as CniError).msg];
  }
  throw new Error('no error');
}
const parseError = (o: unknown) => failure(() => parseNetConf(typeof o === 'string' ? o : JSON.stringify(o)));
const supportError = (o: Record<string, unknown>) => failure(() => checkSupported(parseNetConf(JSON.stringify(o))));

describe('parseNetConf', () => {
  it('fills in defaults', () => {
    const c = parseNetConf(JSON.stringify(conf()));
    expect(c).toEqual({
      cniVersion: '1.1.0',
      name: 'k8s-pod-network',
      type: 'ferry',
      mode: 'routed',
      logFile: '/var/log/ferry/cni.log',
      logLevel: 'info',
      bridge: 'ferry0',
      ipMasq: false,
      ipam: conf().ipam,
      validAttachments: undefined,
    });
  });

  it('reads every field ferry knows', () => {
    const full = conf('1.0.0', {
      mode: 'bridge',
      mtu: 1450,
      logFile: '/tmp/ferry.log',
      logLevel: 'debug',
      dataDir: '/var/lib/ferry',
      bridge: 'br-ferry',
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      promiscMode: false,
      hostVethPrefix: 'fer',
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.10', rangeEnd: '10.244.1.200', gateway: '10.244.1.1' }]],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '10.0.0.0/8', gw: '10.244.1.254' }],
        dataDir: '/var/lib/ferry/ipam',
        resolvConf: '/etc/resolv.conf',
      },
      dns: { nameservers: ['10.96.0.10', 'fd00::a'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] },
      capabilities: { portMappings: true, bandwidth: true },
      runtimeConfig: {
        ips: ['10.244.1.7', 'fd00::7/64'],
        mac: '0a:58:0a:f4:01:07',
        dns: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'TCP', hostIP: '' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1' }, { hostPort: 9000, containerPort: 9000 }],
        bandwidth: { ingressRate: 1_000_000, ingressBurst: 2048, egressRate: 2_000_000, egressBurst: 4096 },
        'io.kubernetes.cri.pod-annotations': { a: 'b' },
      },
      args: { cni: { labels: [{ key: 'app', value: 'web' }] } },
      prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.244.1.7/24' }] },
      'cni.dev/valid-attachments': [{ containerID: 'abc', ifname: 'eth0' }],
      otherPluginKey: { anything: [1, 2, 3] },
    });
    const c = parseNetConf(JSON.stringify(full));
    expect(c.mode).toBe('bridge');
    expect(c.ipam.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '10.0.0.0/8', gw: '10.244.1.254' }]);
    expect(c.runtimeConfig?.portMappings).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1' },
      { hostPort: 9000, containerPort: 9000, protocol: 'tcp' },
    ]);
    expect(c.validAttachments).toEqual([{ containerID: 'abc', ifname: 'eth0' }]);
    expect(c.prevResult).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.244.1.7/24' }] });
    // Unknown keys are allowed and not carried: ferry never passes its config on.
    expect(c).not.toHaveProperty('otherPluginKey');
    expect(c.ipam).not.toHaveProperty('resolvConf');
    // In routed mode: bridge mode's hostPorts are refused (checkSupported, below).
    expect(() => checkSupported({ ...c, mode: 'routed' })).not.toThrow();
  });

  it('says 6 with a position for JSON that does not parse, and for non-objects', () => {
    expect(parseError('{"cniVersion": "1.1.0",\n "name": "x",,}')).toEqual([
      6,
      'network config is not valid JSON: expected a property name in double quotes, found "," at line 2, column 14 (offset 37)',
    ]);
    expect(parseError('')).toEqual([6, 'network config is not valid JSON: empty input at line 1, column 1 (offset 0)']);
    expect(parseError('[1]')).toEqual([6, 'network config must be a JSON object, got array']);
    expect(parseError('null')).toEqual([6, 'network config must be a JSON object, got null']);
  });

  it('says 1 for a missing or unsupported cniVersion, naming it', () => {
    const { cniVersion: _, ...noVersion } = conf();
    expect(parseError(noVersion)).toEqual([1, 'cniVersion is not set (CNI reads that as 0.1.0); ferry supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0']);
    expect(parseError(conf('0.2.0'))).toEqual([1, 'cniVersion "0.2.0" is not supported; ferry supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0']);
    expect(parseError(conf('2.0.0'))[0]).toBe(1);
    expect(parseError(conf('1.1'))[0]).toBe(1);
    expect(parseError({ ...conf(), cniVersion: 110 })).toEqual([7, 'cniVersion: expected string, got number']);
  });

  it('says 7 for a known key of the wrong type, naming its path', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ mtu: '1500' }, 'mtu: expected number, got string'],
      [{ mtu: 1500.5 }, 'mtu: expected an integer, got 1500.5'],
      [{ mtu: 60 }, 'mtu: must be at least 68, got 60'],
      [{ mtu: 70000 }, 'mtu: must be at most 65535, got 70000'],
      [{ mtu: 1e308 }, 'mtu: must be at most 65535, got 1e+308'],
      [{ mode: 'vxlan' }, 'mode: expected one of "routed", "bridge", got "vxlan"'],
      [{ type: 'bridge' }, 'type: expected "ferry", got "bridge"'],
      [{ name: 'a/b' }, `name "a/b": must start with a letter or digit and contain only letters, digits, '_', '.' and '-'`],
      [{ name: 7 }, 'name: expected string, got number'],
      [{ logLevel: 'verbose' }, 'logLevel: expected one of "trace", "debug", "info", "warn", "error", got "verbose"'],
      [{ logFile: 'cni.log' }, 'logFile "cni.log": must be an absolute path'],
      [{ ipMasq: 'yes' }, 'ipMasq: expected boolean, got string'],
      [{ bridge: 'br/0' }, `bridge "br/0": interface name must not contain '/'`],
      [{ bridge: '' }, 'bridge "": must not be empty'],
      [{ hostVethPrefix: 'averylongprefix' }, 'hostVethPrefix "averylongprefix": must be at most 11 bytes, to leave room for a suffix'],
      [{ ipam: undefined }, 'ipam: required'],
      [{ ipam: [] }, 'ipam: expected object, got array'],
      [{ ipam: { type: 'ferry' } }, 'ipam.ranges: required'],
      [{ ipam: { type: 'ferry', ranges: [] } }, 'ipam.ranges: must have at least 1 entry'],
      [{ ipam: { type: 'ferry', ranges: [[]] } }, 'ipam.ranges[0]: must have at least 1 entry'],
      [{ ipam: { type: 'ferry', ranges: [[{ subnet: '10.0.0.0/8' }, { subnet: 10 }]] } }, 'ipam.ranges[0][1].subnet: expected string, got number'],
      [{ ipam: { type: 'ferry', ranges: [[{ subnet: '10.0.0.0' }]] } }, 'ipam.ranges[0][0].subnet "10.0.0.0": expected an address with a /prefix, e.g. 10.1.0.0/16'],
      [{ ipam: { type: 'ferry', ranges: [[{ subnet: '10.0.0.0/33' }]] } }, 'ipam.ranges[0][0].subnet "10.0.0.0/33": prefix length must be 0-32'],
      [{ ipam: { type: 'ferry', ranges: [[{ subnet: '10.0.0.0/8', gateway: '10.0.0.256' }]] } }, 'ipam.ranges[0][0].gateway "10.0.0.256": expected an IPv4 or IPv6 address'],
      [{ ipam: { type: 'ferry', ranges: [[{ subnet: '10.0.0.0/8' }]], routes: [{ dst: '0.0.0.0/0', gw: 'fe80::1%eth0' }] } }, 'ipam.routes[0].gw "fe80::1%eth0": expected an IPv4 or IPv6 address'],
      [{ ipam: { type: 5, ranges: [[{ subnet: '10.0.0.0/8' }]] } }, 'ipam.type: expected string, got number'],
      [{ dns: { nameservers: ['dns.example'] } }, 'dns.nameservers[0] "dns.example": expected an IPv4 or IPv6 address'],
      [{ capabilities: { portMappings: 'yes' } }, 'capabilities.portMappings: expected boolean, got string'],
      [{ runtimeConfig: { mac: '01:00:5e:00:00:01' } }, 'runtimeConfig.mac "01:00:5e:00:00:01": must be a unicast address (the first octet is odd)'],
      [{ runtimeConfig: { mac: '00:00:00:00:00:00' } }, 'runtimeConfig.mac "00:00:00:00:00:00": must not be all zeros'],
      [{ runtimeConfig: { ips: ['10.0.0.1/24', 'nope'] } }, 'runtimeConfig.ips[1] "nope": expected an IPv4 or IPv6 address'],
      [{ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }, 'runtimeConfig.portMappings[0].hostPort: must be at least 1, got 0'],
      [{ runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: 80, protocol: 'icmp' }] } }, 'runtimeConfig.portMappings[0].protocol: expected one of "tcp", "udp", "sctp", got "icmp"'],
      [{ runtimeConfig: { bandwidth: { ingressRate: -1 } } }, 'runtimeConfig.bandwidth.ingressRate: must be at least 0, got -1'],
      [{ args: [] }, 'args: expected object, got array'],
      [{ prevResult: 'x' }, 'prevResult: expected object, got string'],
      [{ 'cni.dev/valid-attachments': [{ containerID: 'a' }] }, 'cni.dev/valid-attachments[0].ifname: required'],
    ];
    for (const [extra, msg] of cases) expect([extra, parseError(conf('1.1.0', extra))]).toEqual([extra, [7, msg]]);
  });

  it('lists every problem in details', () => {
    try {
      parseNetConf(JSON.stringify(conf('1.1.0', { mtu: 'x', mode: 1 })));
    } catch (e) {
      const err = e as CniError;
      expect(err.msg).toBe('mode: expected one of "routed", "bridge", got number');
      expect(err.details).toBe('mode: expected one of "routed", "bridge", got number\nmtu: expected number, got string');
      return;
    }
    throw new Error('no error');
  });

  it('does not let __proto__ in the input reach the config object', () => {
    const c = parseNetConf('{"cniVersion":"1.1.0","name":"n","type":"ferry","__proto__":{"mtu":9000,"ipMasq":true},"ipam":{"type":"ferry","ranges":[[{"subnet":"10.0.0.0/8"}]]}}');
    expect(c.mtu).toBeUndefined();
    expect(c.ipMasq).toBe(false);
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype);
  });
});

describe('checkSupported', () => {
  it('says 2, naming key and value, for what ferry cannot honour', () => {
    expect(supportError(conf('1.1.0', { ipMasq: true }))).toEqual([2, `ipMasq true: masquerading is not implemented yet (it waits on ferry's eBPF NAT)`]);
    expect(supportError(conf('1.1.0', { ipam: { type: 'dhcp', ranges: [[{ subnet: '10.0.0.0/8' }]] } }))).toEqual([
      2,
      'ipam.type "dhcp": ferry allocates addresses itself; use "ferry" or "host-local"',
    ]);
    expect(supportError(conf('1.1.0', { capabilities: { infinibandGUID: true } }))).toEqual([
      2,
      'capabilities.infinibandGUID true: ferry does not implement this capability (it implements ips, mac, dns, portMappings, bandwidth)',
    ]);
    // A capability switched off is no request at all.
    expect(() => checkSupported(parseNetConf(JSON.stringify(conf('1.1.0', { capabilities: { infinibandGUID: false } }))))).not.toThrow();
  });

  it('says 2 for hostPorts the eBPF dataplane cannot serve: bridge mode, SCTP, an IPv6 hostIP', () => {
    const mapping = { hostPort: 8080, containerPort: 80 };
    expect(supportError(conf('1.1.0', { mode: 'bridge', runtimeConfig: { portMappings: [mapping] } }))).toEqual([
      2,
      `mode "bridge": runtimeConfig.portMappings[0]: hostPorts are served by ferry's eBPF dataplane, in routed mode only`,
    ]);
    expect(supportError(conf('1.1.0', { runtimeConfig: { portMappings: [mapping, { ...mapping, protocol: 'SCTP' }] } }))).toEqual([
      2,
      `runtimeConfig.portMappings[1].protocol "sctp": ferry's dataplane serves TCP and UDP hostPorts`,
    ]);
    expect(supportError(conf('1.1.0', { runtimeConfig: { portMappings: [{ ...mapping, hostIP: 'fd00::1' }] } }))).toEqual([
      2,
      `runtimeConfig.portMappings[0].hostIP "fd00::1": ferry's dataplane serves IPv4 hostPorts, not IPv6 ones`,
    ]);
    // With the pod's CNI_ARGS, the message names the pod.
    const ipv6HostIp = parseNetConf(JSON.stringify(conf('1.1.0', { runtimeConfig: { portMappings: [{ ...mapping, hostIP: 'fd00::1' }] } })));
    expect(failure(() => checkSupported(ipv6HostIp, { podNamespace: 'shop', podName: 'web-0' }))).toEqual([
      2,
      `runtimeConfig.portMappings[0].hostIP "fd00::1": ferry's dataplane serves IPv4 hostPorts, not IPv6 ones (pod shop/web-0)`,
    ]);
  });

  it('says 2 for host-local\'s single-range form, and how to write it', () => {
    expect(parseError(conf('1.1.0', { ipam: { type: 'host-local', subnet: '10.1.0.0/16' } }))).toEqual([
      2,
      'ipam.subnet "10.1.0.0/16": ferry reads only the ranges form; write "ranges": [[{"subnet": …}]]',
    ]);
  });
});
