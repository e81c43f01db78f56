// The service model: Kubernetes' defaults filled in, and errors that name the
// object (namespace/name) and each bad field.
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';

import { canonicalIp, ModelError, parseEndpoints, parseService, serviceKey } from '../../engine/dataplane/model.js';

function thrownBy(fn: () => unknown): ModelError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    return e as ModelError;
  }
  throw new Error('expected a ModelError');
}

describe('parseService', () => {
  it('fills in the defaults of a ClusterIP Service', () => {
    const s = parseService({ namespace: 'default', name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ port: 80 }] });
    expect(s).toEqual({
      namespace: 'default',
      name: 'web',
      type: 'ClusterIP',
      clusterIPs: ['10.96.0.10'],
      externalIPs: [],
      loadBalancerIPs: [],
      ports: [{ protocol: 'TCP', port: 80, targetPort: 80 }],
      sessionAffinity: 'None',
      affinityTimeoutSeconds: 10_800,
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      headless: false,
    });
    expect(serviceKey(s)).toBe('default/web');
  });

  it('takes clusterIP None as headless, without ports', () => {
    const s = parseService({ namespace: 'db', name: 'pg', clusterIPs: ['None'] });
    expect(s).toMatchObject({ headless: true, clusterIPs: [], ports: [] });
  });

  it('canonicalises addresses and keeps named target ports', () => {
    const s = parseService({
      namespace: 'default',
      name: 'dual',
      clusterIPs: ['10.96.0.11', 'FD00:0:0::11'],
      ports: [
        { name: 'http', port: 80, targetPort: 'web' },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
      ],
    });
    expect(s.clusterIPs).toEqual(['10.96.0.11', 'fd00::11']);
    expect(s.ports.map((p) => p.targetPort)).toEqual(['web', 5353]);
  });

  it('names the Service and every bad field', () => {
    const e = thrownBy(() =>
      parseService({
        namespace: 'shop',
        name: 'cart',
        type: 'ClusterIP',
        clusterIPs: ['10.96.0.300'],
        ports: [
          { name: 'http', port: 70000 },
          { port: 81, protocol: 'ICMP', nodePort: 30080 },
        ],
        affinityTimeoutSeconds: 0,
      }),
    );
    expect(e.message).toMatch(/^Service shop\/cart: /);
    expect(e.namespace).toBe('shop');
    expect(e.objectName).toBe('cart');
    const fields = e.issues.map((i) => i.field);
    expect(fields).toEqual(
      expect.arrayContaining(['clusterIPs[0]', 'ports[0].port', 'ports[1].protocol', 'affinityTimeoutSeconds']),
    );
    expect(e.message).toContain('"10.96.0.300" is not an IPv4 or IPv6 address');
  });

  it('checks what depends on other fields: names of several ports, node ports, headless', () => {
    const many = thrownBy(() => parseService({ namespace: 'a', name: 'b', clusterIPs: ['10.96.0.1'], ports: [{ port: 80 }, { port: 443 }] }));
    expect(many.issues).toContainEqual({ field: 'ports[0].name', message: 'required when a Service has more than one port' });

    const nodePort = thrownBy(() => parseService({ namespace: 'a', name: 'b', clusterIPs: ['10.96.0.1'], ports: [{ port: 80, nodePort: 30080 }] }));
    expect(nodePort.issues).toContainEqual({ field: 'ports[0].nodePort', message: 'only NodePort and LoadBalancer Services have node ports, not ClusterIP' });

    const duplicate = thrownBy(() =>
      parseService({ namespace: 'a', name: 'b', clusterIPs: ['10.96.0.1'], ports: [{ name: 'x', port: 80 }, { name: 'y', port: 80 }] }),
    );
    expect(duplicate.issues).toContainEqual({ field: 'ports[1]', message: 'duplicate port 80/TCP' });

    const headless = thrownBy(() => parseService({ namespace: 'a', name: 'b', headless: true, clusterIPs: ['10.96.0.1'] }));
    expect(headless.issues).toContainEqual({ field: 'clusterIPs', message: 'a headless Service has no cluster IPs' });

    const noPorts = thrownBy(() => parseService({ namespace: 'a', name: 'b', clusterIPs: ['10.96.0.1'] }));
    expect(noPorts.issues).toContainEqual({ field: 'ports', message: 'required unless the Service is headless' });
  });

  it('rejects names Kubernetes would refuse', () => {
    const e = thrownBy(() => parseService({ namespace: 'Bad_NS', name: '1abc', clusterIPs: [], ports: [{ port: 1 }] }));
    expect(e.message).toMatch(/^Service Bad_NS\/1abc: /);
    expect(e.issues.map((i) => i.field)).toEqual(['namespace', 'name']);
  });

  it('says "required" for a missing field and what a union wanted', () => {
    const e = thrownBy(() => parseService({ namespace: 'a', name: 'b', ports: [{ targetPort: 'Not A Name' }] }));
    expect(e.issues).toContainEqual({ field: 'ports[0].port', message: 'required' });
    expect(e.issues.find((i) => i.field === 'ports[0].targetPort')?.message).toMatch(/lowercase alphanumerics/);
  });
});

describe('parseEndpoints', () => {
  const owner = { namespace: 'default', name: 'web' };

  it('fills in the EndpointConditions defaults', () => {
    const [e] = parseEndpoints(owner, [{ addresses: ['10.0.0.5'], ports: [{ name: 'http', port: 8080 }] }]);
    expect(e).toEqual({
      addresses: ['10.0.0.5'],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      ready: true,
      serving: true,
      terminating: false,
    });
    const [t] = parseEndpoints(owner, [{ addresses: ['10.0.0.6'], ready: false, terminating: true, nodeName: 'n1', ports: [{ name: '', port: 1 }] }]);
    expect(t).toMatchObject({ ready: false, serving: false, terminating: true, nodeName: 'n1', ports: [{ port: 1, protocol: 'TCP' }] });
    expect(t!.ports[0]).not.toHaveProperty('name');
  });

  it('names the Service and the bad field', () => {
    const e = thrownBy(() => parseEndpoints(owner, [{ addresses: ['10.0.0.5'] }, { addresses: [], ports: [{ port: 0 }] }]));
    expect(e.kind).toBe('Endpoints');
    expect(e.message).toMatch(/^Endpoints default\/web: /);
    expect(e.issues.map((i) => i.field)).toEqual(['[1].addresses', '[1].ports[0].port']);
  });
});

describe('canonicalIp', () => {
  // canonicalIp takes inet_pton's word for a canonical dotted quad before asking ipaddr.js: both must agree.
  const byIpaddr = (text: string): string | undefined => {
    if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text).toString();
    if (text.includes(':') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text).toString();
    return undefined;
  };
  const inputs = [
    '10.0.0.5', '0.0.0.0', '255.255.255.255', '1.2.3.4', '010.0.0.5', '10.0.0.05', '0x0a.0.0.1', '10.1', '10.0.0', '167772161',
    '256.0.0.1', '10.0.0.1 ', ' 10.0.0.1', '10..0.1', '10.0.0.-1', '+10.0.0.1', '１０.0.0.1', '', 'fd00::1', 'FD00:0:0::11',
    '::ffff:10.0.0.1', '::', 'fe80::1%eth0', '10.0.0.1/32',
  ];
  it.each(inputs)('%j as ipaddr.js has it', (text) => {
    expect(canonicalIp(text)).toBe(byIpaddr(text));
  });
  it('gives back the very string when it is canonical already', () => {
    const text = ['10', '0', '0', '5'].join('.');
    expect(canonicalIp(text)).toBe(text);
  });
});
