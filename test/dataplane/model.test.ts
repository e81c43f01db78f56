// The service model: Kubernetes' defaults filled in, and errors that name the
// object (namespace/name) and each bad field.
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';

import { canonicalIp, ModelError, parseEndpoints, parseEndpointsBySchema, parseService, parseServiceBySchema, serviceKey } from '../../engine/dataplane/model.js';

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

describe('parseEndpoints without the schema', () => {
  // parseEndpoints() checks and builds endpoints the schema takes as they
  // are by hand: for every input it must give what the schema path gives,
  // or fail as it does.
  const owner = { namespace: 'default', name: 'web' };
  const values: Record<string, unknown[]> = {
    addresses: [undefined, ['10.0.0.5'], ['10.0.0.5', 'fd00::5'], ['FD00:0::5'], [], ['10.0.0.05'], [5], 'x', null],
    ports: [undefined, [], [{ port: 8080 }], [{ name: 'http', port: 8080, protocol: 'UDP' }], [{ name: '', port: 1, protocol: 'SCTP' }],
      [{ port: 0 }], [{ port: 65536 }], [{ port: 80.5 }], [{ port: '80' }], [{ port: 80, protocol: 'tcp' }], [{ port: 80, name: 'x'.repeat(64) }],
      [{ port: 80, name: 'x'.repeat(63), extra: 1 }], [{ port: Number.NaN }], [null], {}, [{ port: 80, name: 5 }]],
    ready: [undefined, true, false, 'true', null],
    serving: [undefined, true, false, 1],
    terminating: [undefined, true, false, 'no'],
    nodeName: [undefined, 'n1', '', 3],
    zone: [undefined, 'z', ''],
  };
  /** Inputs from one base endpoint with one member changed at a time, and a few whole lists. */
  const inputs: unknown[] = [[], {}, null, [null], [[]], ['x']];
  const base = { addresses: ['10.0.0.5'], ports: [{ name: 'http', port: 8080 }] };
  for (const [member, list] of Object.entries(values)) {
    for (const v of list) {
      const e: Record<string, unknown> = { ...base };
      if (v === undefined) delete e[member];
      else e[member] = v;
      inputs.push([e], [base, e]);
    }
  }
  const outcome = (f: () => unknown) => {
    try {
      return { value: f() };
    } catch (e) {
      return { error: e instanceof ModelError ? e.message : String(e) };
    }
  };

  it('gives what the schema gives, and fails as it does', () => {
    for (const input of inputs) {
      expect(outcome(() => parseEndpoints(owner, input)), JSON.stringify(input)).toEqual(outcome(() => parseEndpointsBySchema(owner, input)));
    }
  });

  it('shares one ports list among the endpoints given one, as the schema path does', () => {
    const ports = [{ name: 'http', port: 8080 }];
    const [a, b] = parseEndpoints(owner, [{ addresses: ['10.0.0.1'], ports }, { addresses: ['10.0.0.2'], ports }]);
    expect(a!.ports).toBe(b!.ports);
    const [c, d] = parseEndpointsBySchema(owner, [{ addresses: ['10.0.0.1'], ports }, { addresses: ['10.0.0.2'], ports }]);
    expect(c!.ports).toBe(d!.ports);
  });
});

describe('parseService without the schema', () => {
  // parseService() checks and builds the Services the schema takes as they
  // are by hand: for every input it must give what the schema path gives,
  // or fail as it does.
  const base = { namespace: 'shop', name: 'web', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80, targetPort: 8080 }] };
  const values: Record<string, unknown[]> = {
    namespace: [undefined, 'a', 'Shop', '-a', 'a'.repeat(64), 'a'.repeat(63), 5],
    name: [undefined, '1web', 'web-1', 'w'.repeat(64), null],
    type: [undefined, 'ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName', 'clusterip', null],
    clusterIPs: [undefined, [], ['None'], ['None', '10.96.0.1'], ['10.96.0.10', 'fd00::10'], ['10.96.0.10', '10.96.0.11'], ['FD00::10'], ['10.96.0.010'], ['x'], 'x', null, [1], ['10.0.0.1', 'fd00::1', '10.0.0.2']],
    externalIPs: [undefined, [], ['192.0.2.1'], ['2001:DB8::1'], ['nope'], null],
    loadBalancerIPs: [undefined, ['192.0.2.2'], [''], {}],
    ports: [undefined, [], null, [{ port: 80 }], [{ port: 80 }, { port: 81 }], [{ name: 'a', port: 80 }, { name: 'a', port: 81 }], [{ name: 'a', port: 80 }, { name: 'b', port: 80 }],
      [{ name: 'a', port: 80 }, { name: 'b', port: 80, protocol: 'UDP' }], [{ port: 80, protocol: 'SCTP' }], [{ port: 80, protocol: 'tcp' }], [{ port: 0 }], [{ port: 65536 }], [{ port: 80.5 }],
      [{ port: 80, targetPort: 'http' }], [{ port: 80, targetPort: '8080' }], [{ port: 80, targetPort: 'h--p' }], [{ port: 80, targetPort: 'a'.repeat(16) }], [{ port: 80, targetPort: 0 }],
      [{ port: 80, nodePort: 30080 }], [{ port: 80, nodePort: 0 }], [{ port: 80, name: 'Http' }], [{ port: 80, extra: true }], [null], [{ port: 80, name: null }]],
    sessionAffinity: [undefined, 'ClientIP', 'None', 'Sticky'],
    affinityTimeoutSeconds: [undefined, 1, 86400, 86401, 0, 1.5, '10'],
    externalTrafficPolicy: [undefined, 'Local', 'Cluster', 'local'],
    internalTrafficPolicy: [undefined, 'Local', 'x'],
    healthCheckNodePort: [undefined, 30000, 0, '30000'],
    headless: [undefined, true, false],
    loadBalancing: [undefined, 'maglev', 'random', 'x'],
    annotations: [undefined, {}, { 'ferry.dev/lb-algorithm': 'maglev' }, { 'ferry.dev/lb-algorithm': 'x' }],
  };
  const inputs: unknown[] = [null, [], 'x', {}];
  for (const [member, list] of Object.entries(values)) {
    for (const v of list) {
      const s: Record<string, unknown> = { ...base };
      if (v === undefined) delete s[member];
      else s[member] = v;
      inputs.push(s, { ...s, type: 'NodePort' }, { ...s, clusterIPs: ['None'], ports: s.ports ?? [] });
    }
  }
  const outcome = (f: () => unknown) => {
    try {
      return { value: f() };
    } catch (e) {
      return { error: e instanceof ModelError ? e.message : String(e) };
    }
  };

  it('gives what the schema gives, and fails as it does', () => {
    for (const input of inputs) expect(outcome(() => parseService(input)), JSON.stringify(input)).toEqual(outcome(() => parseServiceBySchema(input)));
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
