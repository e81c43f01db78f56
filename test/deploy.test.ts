// deploy/: the manifests `kubectl apply -f deploy/` reads, checked without a
// cluster. kubectl cannot check them offline (both apply and create
// --dry-run=client ask the API server for its resource list, and validation
// for its OpenAPI document), so this is the equivalent: the documents parse,
// each is a kind Kubernetes 1.2x serves under that apiVersion, the DaemonSet
// hangs together (mounts name volumes, $(VARS) are defined, ConfigMap keys
// exist, probes hit the healthz port), the daemon's arguments are flags
// `ferry daemon --help` lists, its settings file and the conflist pass
// ferry's own parsers,
// and the RBAC rules are exactly what the daemon reads. The installer
// (deploy/install-cni.mjs) runs against a TLS API server stand-in.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

import { checkSupported, parseNetConf } from '../plugin/cni/config.js';
import { loadDaemonConfig, parseListenAddress } from '../plugin/daemon/config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
/** Where deploy/Dockerfile puts this checkout in the image. */
const IMAGE_ROOT = '/opt/ferry/';

// --- the manifests ---------------------------------------------------------------

interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  [field: string]: unknown;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; configMapKeyRef?: { name: string; key: string } };
}
interface VolumeMount {
  name: string;
  mountPath: string;
  mountPropagation?: string;
  readOnly?: boolean;
}
interface Probe {
  httpGet?: { path: string; port: number | string };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  volumeMounts?: VolumeMount[];
  securityContext?: { privileged?: boolean };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
}
interface PodSpec {
  serviceAccountName?: string;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  tolerations?: Array<{ key?: string; operator?: string; effect?: string }>;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
}
interface DaemonSet extends K8sObject {
  spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: Meta; spec: PodSpec } };
}
interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Kinds deploy/ may hold, by `apiVersion/kind` as Kubernetes 1.20 and later serve them, with their scope. */
const KINDS: Record<string, 'Namespaced' | 'Cluster'> = {
  'v1/ServiceAccount': 'Namespaced',
  'v1/ConfigMap': 'Namespaced',
  'apps/v1/DaemonSet': 'Namespaced',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'Cluster',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'Cluster',
};

/** A DNS-1123 subdomain: what object names (and ConfigMap keys, with '_' and upper case) must be. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;

/** Every object in the files `kubectl apply -f deploy/` reads (.yaml, .yml, .json), with where it came from. */
function loadManifests(): Array<{ where: string; obj: K8sObject }> {
  const files = readdirSync(DEPLOY).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  const out: Array<{ where: string; obj: K8sObject }> = [];
  for (const file of files) {
    parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'), { prettyErrors: true }).forEach((doc, i) => {
      const where = `${file}#${i}`;
      expect(doc.errors.map((e) => `${where}: ${e.message}`)).toEqual([]);
      expect(doc.warnings.map((e) => `${where}: ${e.message}`)).toEqual([]);
      const obj = doc.toJS({ maxAliasCount: 0 }) as K8sObject | null;
      if (obj !== null) out.push({ where, obj });
    });
  }
  return out;
}

const manifests = loadManifests();
const objects = manifests.map((m) => m.obj);
function find<T extends K8sObject>(kind: string, name: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found, `${kind} ${name}`).toHaveLength(1);
  return found[0] as T;
}
const ds = find<DaemonSet>('DaemonSet', 'ferry');
const pod = ds.spec.template.spec;
const daemon = pod.containers.find((c) => c.name === 'ferry')!;
const installer = pod.initContainers?.find((c) => c.name === 'install-cni');
const config = find<K8sObject & { data: Record<string, string> }>('ConfigMap', 'ferry-config');

/** `--flag=value` and `--flag` of a container's args, as a map. */
function flags(c: Container): Map<string, string | true> {
  const m = new Map<string, string | true>();
  for (const arg of c.args ?? []) {
    const match = /^(--[a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    expect(match, `argument ${JSON.stringify(arg)} is --flag or --flag=value`).not.toBeNull();
    m.set(match![1]!, match![2] ?? true);
  }
  return m;
}
const daemonFlags = flags(daemon);

function envValue(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

/** The mount of `volume` in container `c`. */
function mountOf(c: Container, volume: string): VolumeMount {
  const m = c.volumeMounts?.find((v) => v.name === volume);
  expect(m, `${c.name} mounts ${volume}`).toBeDefined();
  return m!;
}

describe('deploy/ manifests', () => {
  it('are Kubernetes objects of kinds 1.2x serves, named and namespaced as kubectl apply needs', () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const { where, obj } of manifests) {
      const scope = KINDS[`${obj.apiVersion}/${obj.kind}`];
      expect(scope, `${where}: ${obj.apiVersion} ${obj.kind}`).toBeDefined();
      expect(obj.metadata?.name, `${where}: metadata.name`).toMatch(DNS_SUBDOMAIN);
      if (scope === 'Namespaced') expect(obj.metadata.namespace, `${where}: metadata.namespace`).toBe('kube-system');
      else expect(obj.metadata.namespace, `${where}: a cluster-scoped object has no namespace`).toBeUndefined();
    }
    const names = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(names).size, 'no object twice').toBe(names.length);
    expect(names.sort()).toEqual(
      [
        'ClusterRole//ferry',
        'ClusterRoleBinding//ferry',
        'ConfigMap/kube-system/ferry-config',
        'DaemonSet/kube-system/ferry',
        'ServiceAccount/kube-system/ferry',
      ].sort(),
    );
  });

  it('RBAC: the ServiceAccount may get/list/watch services, endpointslices and nodes, and nothing else', () => {
    const role = find<K8sObject & { rules: PolicyRule[] }>('ClusterRole', 'ferry');
    const granted = new Set<string>();
    for (const rule of role.rules) {
      for (const group of rule.apiGroups) for (const resource of rule.resources) for (const verb of rule.verbs) granted.add(`${group}/${resource}:${verb}`);
    }
    const wanted = ['/services', '/nodes', 'discovery.k8s.io/endpointslices'].flatMap((r) => ['get', 'list', 'watch'].map((v) => `${r}:${v}`));
    expect([...granted].sort()).toEqual(wanted.sort());

    const binding = find<K8sObject & { roleRef: { apiGroup: string; kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace: string }> }>(
      'ClusterRoleBinding',
      'ferry',
    );
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ferry' });
    const sa = find('ServiceAccount', 'ferry');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
  });

  it('DaemonSet: on every node, in its network namespace, before anything else', () => {
    const selector = ds.spec.selector.matchLabels;
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(selector)) expect(ds.spec.template.metadata.labels?.[k], `template label ${k}`).toBe(v);
    expect(pod.hostNetwork).toBe(true);
    // Cluster DNS is a ClusterIP, which nothing serves to the host's namespace.
    expect(pod.dnsPolicy).toBe('Default');
    expect(pod.priorityClassName).toBe('system-node-critical');
    // Tolerates every taint: operator Exists with no key and no effect.
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(daemon.securityContext?.privileged).toBe(true);
  });

  it('DaemonSet: every mount names a declared volume, every volume is mounted, the host paths are there', () => {
    const volumes = pod.volumes ?? [];
    const declared = new Set(volumes.map((v) => v.name));
    expect(declared.size, 'volume names are unique').toBe(volumes.length);
    const used = new Set<string>();
    const containers = [...(pod.initContainers ?? []), ...pod.containers];
    expect(new Set(containers.map((c) => c.name)).size, 'container names are unique').toBe(containers.length);
    for (const c of containers) {
      const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
      expect(new Set(paths).size, `${c.name}: mount paths are unique`).toBe(paths.length);
      for (const m of c.volumeMounts ?? []) {
        expect(declared.has(m.name), `${c.name} mounts ${m.name}, which is declared`).toBe(true);
        expect(m.mountPath, `${c.name}: ${m.name}`).toMatch(/^\//);
        // The API server refuses Bidirectional propagation in an unprivileged container.
        if (m.mountPropagation === 'Bidirectional') expect(c.securityContext?.privileged, `${c.name}: ${m.name} is Bidirectional`).toBe(true);
        used.add(m.name);
      }
    }
    expect([...declared].filter((v) => !used.has(v)), 'volumes nothing mounts').toEqual([]);

    const hostPaths = new Map(volumes.filter((v) => v.hostPath).map((v) => [v.hostPath!.path, v.name]));
    for (const path of ['/sys/fs/bpf', '/run/ferry', '/var/run/netns', '/var/lib/cni', '/var/lib/ferry', '/var/log/ferry', '/opt/cni/bin', '/etc/cni/net.d']) {
      expect(hostPaths.has(path), `a hostPath volume for ${path}`).toBe(true);
    }
    // The daemon sees the host's paths at the same place: CNI_NETNS, the pins and the IPAM store are host paths.
    for (const path of ['/sys/fs/bpf', '/run/ferry', '/var/run/netns', '/var/lib/cni', '/var/lib/ferry', '/var/log/ferry']) {
      expect(mountOf(daemon, hostPaths.get(path)!).mountPath, `the daemon mounts ${path}`).toBe(path);
    }
    expect(mountOf(daemon, hostPaths.get('/sys/fs/bpf')!).mountPropagation).toBe('Bidirectional');
    // Namespaces the runtime mounts after the daemon started must show up in it.
    expect(['HostToContainer', 'Bidirectional']).toContain(mountOf(daemon, hostPaths.get('/var/run/netns')!).mountPropagation);
  });

  it('DaemonSet: env refers to ConfigMap keys that exist, and every $(VAR) in a command is defined', () => {
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      const defined = new Set<string>();
      for (const e of c.env ?? []) {
        expect(defined.has(e.name), `${c.name}: ${e.name} defined once`).toBe(false);
        defined.add(e.name);
        const ref = e.valueFrom?.configMapKeyRef;
        if (ref) {
          expect(ref.name, `${c.name}: ${e.name}`).toBe(config.metadata.name);
          expect(Object.keys(config.data), `${c.name}: ${e.name} from key ${ref.key}`).toContain(ref.key);
        }
        const field = e.valueFrom?.fieldRef?.fieldPath;
        if (field) expect(['spec.nodeName', 'metadata.name', 'metadata.namespace', 'status.hostIP', 'status.podIP']).toContain(field);
      }
      // Kubernetes leaves an undefined $(VAR) as it is: the daemon would get it literally.
      for (const word of [...(c.command ?? []), ...(c.args ?? [])]) {
        for (const [, name] of word.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) expect(defined.has(name!), `${c.name}: $(${name}) in ${word}`).toBe(true);
      }
      expect(c.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, `${c.name}: NODE_NAME`).toBe('spec.nodeName');
    }
    for (const key of Object.keys(config.data)) expect(key).toMatch(CONFIGMAP_KEY);
    for (const [key, value] of Object.entries(config.data)) expect(typeof value, `ConfigMap key ${key} is a string`).toBe('string');
  });

  it('the daemon runs `ferry daemon` with flags it has, on the API server, its healthz port probed', async () => {
    // The image's /opt/ferry/dist/X.js is this checkout's X.ts, compiled.
    const [node, script, command] = daemon.command ?? [];
    expect(node).toBe('node');
    expect(script?.startsWith(`${IMAGE_ROOT}dist/`)).toBe(true);
    expect(existsSync(join(ROOT, script!.slice(`${IMAGE_ROOT}dist/`.length).replace(/\.js$/, '.ts')))).toBe(true);
    expect(command).toBe('daemon');

    const help = await run(process.execPath, ['--import', 'tsx', 'engine/cli/ferry.ts', 'daemon', '--help']);
    expect(help.code).toBe(0);
    const known = new Set([...help.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
    expect(known.size).toBeGreaterThan(3);
    for (const flag of daemonFlags.keys()) expect(known.has(flag), `${flag} is listed by \`ferry daemon --help\``).toBe(true);

    expect(daemonFlags.get('--in-cluster')).toBe(true);
    expect(daemonFlags.has('--services'), 'the file source excludes --in-cluster').toBe(false);
    expect(daemonFlags.get('--node-name')).toBe('$(NODE_NAME)');

    const socket = String(daemonFlags.get('--cni-socket'));
    expect(socket.startsWith(`${mountOf(daemon, 'run-ferry').mountPath}/`), `${socket} is on the host's /run/ferry`).toBe(true);
    const pinRoot = String(daemonFlags.get('--pin-root'));
    expect(pinRoot.startsWith(`${mountOf(daemon, 'bpffs').mountPath}/`), `${pinRoot} is on the host's bpffs`).toBe(true);

    // --config is a key of the ConfigMap, mounted, and passes ferry's own settings parser.
    const configMount = mountOf(daemon, pod.volumes!.find((v) => v.configMap?.name === config.metadata.name)!.name);
    const configFile = String(daemonFlags.get('--config'));
    expect(configFile.startsWith(`${configMount.mountPath}/`), `${configFile} is in the ConfigMap`).toBe(true);
    const text = config.data[configFile.slice(configMount.mountPath.length + 1)];
    expect(text).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'ferry-deploy-'));
    let settings: ReturnType<typeof loadDaemonConfig>;
    try {
      writeFileSync(join(dir, 'daemon.yaml'), text!);
      // With the DaemonSet's own source flag: the file's settings may depend on it (nodeNetwork does).
      expect(daemon.args).toContain('--in-cluster');
      settings = loadDaemonConfig(join(dir, 'daemon.yaml'), { inCluster: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const healthz = parseListenAddress(settings.healthzBindAddress!);
    expect(healthz.host, 'probes reach the node address: healthz listens on all').toBe('0.0.0.0');
    expect(daemon.livenessProbe?.httpGet).toEqual({ path: '/livez', port: healthz.port });
    expect(daemon.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: healthz.port });
    expect(daemon.ports).toContainEqual(expect.objectContaining({ containerPort: healthz.port }));
  });

  it('the conflist in the ConfigMap is ferry routed mode, and passes ferry\'s parser once the installer adds the ranges', () => {
    const text = config.data['10-ferry.conflist'];
    expect(text).toBeDefined();
    const conflist = JSON.parse(text!) as { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };
    const plugin = conflist.plugins.find((p) => p.type === 'ferry');
    expect(plugin).toBeDefined();
    expect((plugin!.ipam as Record<string, unknown>).ranges, 'left to the installer').toBeUndefined();
    // What install-cni.mjs does with a dual-stack node, then what libcni hands the plugin.
    const ipam = { ...(plugin!.ipam as object), ranges: [[{ subnet: '10.244.3.0/24' }], [{ subnet: 'fd00:10:244:3::/64' }]] };
    const conf = parseNetConf(JSON.stringify({ ...plugin, ipam, name: conflist.name, cniVersion: conflist.cniVersion }));
    checkSupported(conf);
    expect(conf.mode).toBe('routed');
    expect(conf.ebpf?.pinRoot ?? '/sys/fs/bpf/ferry', 'the CNI ADD attaches what the daemon pinned').toBe(daemonFlags.get('--pin-root'));

    // The installer reads it where the ConfigMap is mounted.
    expect(installer).toBeDefined();
    const configMount = mountOf(installer!, pod.volumes!.find((v) => v.configMap?.name === config.metadata.name)!.name);
    expect(envValue(installer!, 'FERRY_CONFLIST_TEMPLATE')).toBe(`${configMount.mountPath}/10-ferry.conflist`);
  });

  it('the installer is deploy/install-cni.mjs, put in the image by deploy/Dockerfile, writing to the host\'s CNI directories', () => {
    const [node, script] = installer!.command ?? [];
    expect(node).toBe('node');
    expect(script?.startsWith(IMAGE_ROOT)).toBe(true);
    const source = script!.slice(IMAGE_ROOT.length);
    expect(existsSync(join(ROOT, source))).toBe(true);
    expect(readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8')).toMatch(new RegExp(`^COPY ${source} /out${script}$`, 'm'));
    expect(installer!.image).toBe(daemon.image);

    const volumeFor = (hostPath: string) => pod.volumes!.find((v) => v.hostPath?.path === hostPath)!.name;
    expect(envValue(installer!, 'CNI_BIN_DIR')).toBe(mountOf(installer!, volumeFor('/opt/cni/bin')).mountPath);
    expect(envValue(installer!, 'CNI_NET_DIR')).toBe(mountOf(installer!, volumeFor('/etc/cni/net.d')).mountPath);
  });
});

// --- kubectl's own decoding, offline --------------------------------------------------

const hasKubectl = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasKubectl)('kubectl, offline (skipped: no kubectl on PATH)', () => {
  // `apply`/`create --dry-run=client` need the API server's resource list;
  // `set env --local` does not, and still decodes every document kubectl
  // apply -f deploy/ would send into kubectl's compiled-in types: an unknown
  // apiVersion or kind, or a field of the wrong type, is "unable to decode".
  // It then sets the variable on the one object with a pod template and
  // refuses the others by their Go type, which shows each was decoded.
  it('decodes every object into its built-in type (set env --local -f deploy/)', async () => {
    const r = await run('kubectl', ['set', 'env', '--local', '-f', 'deploy/', 'FERRY_KUBECTL_CHECK=1', '-o', 'name']);
    expect(r.stderr).not.toMatch(/unable to decode|unable to recognize|error validating|error parsing/);
    expect(r.stdout).toBe('daemonset.apps/ferry\n');
    for (const obj of objects.filter((o) => o.kind !== 'DaemonSet')) {
      const version = obj.apiVersion.split('/').pop();
      expect(r.stderr).toContain(`the object is not a pod or does not have a pod template: *${version}.${obj.kind}`);
    }
  });
});

// --- the installer against an API server stand-in -------------------------------------

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, encoding: 'utf8', env }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
// The installer checks the conflist with ferry's parser from the build output.
const hasDist = existsSync(join(ROOT, 'dist', 'plugin', 'cni', 'config.js'));

describe.skipIf(!hasOpenssl || !hasDist)('deploy/install-cni.mjs (skipped without openssl, or before `make` built dist/)', () => {
  let dir: string;
  let server: https.Server;
  let port: number;
  /** What the stand-in answers for GET /api/v1/nodes/NAME. */
  const nodes = new Map<string, { status: number; body: unknown }>();
  const seen: Array<{ url: string | undefined; authorization: string | undefined }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-deploy-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=ferry-test-apiserver', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'ca.crt'),
    ], { stdio: 'ignore' });
    writeFileSync(join(dir, 'token'), 'test-token\n');
    writeFileSync(join(dir, 'template.conflist'), config.data['10-ferry.conflist']!);
    writeFileSync(join(dir, 'cni-binary'), '#!/bin/sh\n');
    server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'ca.crt')) }, (req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      const answer = nodes.get(req.url ?? '') ?? { status: 404, body: { kind: 'Status', message: `nodes not found` } };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The stand-in for a node's root file system, one per node name. */
  const hostOf = (node: string) => join(dir, `host-${node}`);

  function install(node: string, overrides: Record<string, string> = {}) {
    const host = hostOf(node);
    const env = {
      PATH: process.env.PATH,
      NODE_NAME: node,
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(port),
      FERRY_SERVICEACCOUNT_DIR: dir,
      FERRY_CONFLIST_TEMPLATE: join(dir, 'template.conflist'),
      FERRY_CNI_BINARY: join(dir, 'cni-binary'),
      CNI_BIN_DIR: join(host, 'opt/cni/bin'),
      CNI_NET_DIR: join(host, 'etc/cni/net.d'),
      ...overrides,
    };
    return { host, result: run(process.execPath, [join(DEPLOY, 'install-cni.mjs')], env) };
  }

  it('installs the binary and the conflist with the Node\'s pod CIDRs, dual stack', async () => {
    nodes.set('/api/v1/nodes/node-a', {
      status: 200,
      body: { kind: 'Node', metadata: { name: 'node-a' }, spec: { podCIDR: '10.244.3.0/24', podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'] } },
    });
    const { host, result } = install('node-a');
    const r = await result;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^installed .*opt\/cni\/bin\/ferry and .*etc\/cni\/net\.d\/10-ferry\.conflist \(node node-a, pod CIDRs 10\.244\.3\.0\/24, fd00:10:244:3::\/64\)\n$/);
    expect(seen.at(-1)).toEqual({ url: '/api/v1/nodes/node-a', authorization: 'Bearer test-token' });

    const binary = join(host, 'opt/cni/bin/ferry');
    expect(readFileSync(binary, 'utf8')).toBe('#!/bin/sh\n');
    expect(statSync(binary).mode & 0o777).toBe(0o755);
    expect(readdirSync(join(host, 'opt/cni/bin')), 'no temporary file left').toEqual(['ferry']);

    const written = JSON.parse(readFileSync(join(host, 'etc/cni/net.d/10-ferry.conflist'), 'utf8'));
    const plugin = written.plugins.find((p: { type: string }) => p.type === 'ferry');
    expect(plugin.ipam.ranges).toEqual([[{ subnet: '10.244.3.0/24' }], [{ subnet: 'fd00:10:244:3::/64' }]]);
    const template = JSON.parse(config.data['10-ferry.conflist']!);
    expect({ ...written, plugins: written.plugins.map((p: { ipam?: object }) => ({ ...p, ipam: { ...p.ipam, ranges: undefined } })) }).toEqual({
      ...template,
      plugins: template.plugins.map((p: { ipam?: object }) => ({ ...p, ipam: { ...p.ipam, ranges: undefined } })),
    });

    // Run again (a restarted pod): same files, replaced in place.
    const again = await install('node-a').result;
    expect(again.code).toBe(0);
    expect(readdirSync(join(host, 'etc/cni/net.d'))).toEqual(['10-ferry.conflist']);
  });

  it('a node with only the older spec.podCIDR gets one range set; a config sorting first is warned about', async () => {
    nodes.set('/api/v1/nodes/node-b', { status: 200, body: { kind: 'Node', spec: { podCIDR: '10.244.4.0/24' } } });
    const host = hostOf('node-b');
    mkdirSync(join(host, 'etc/cni/net.d'), { recursive: true });
    writeFileSync(join(host, 'etc/cni/net.d/05-other.conflist'), '{}');
    const r = await install('node-b').result;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\nwarning: 05-other\.conflist in .* sort before 10-ferry\.conflist; the runtime uses the first one\n$/);
    const written = JSON.parse(readFileSync(join(host, 'etc/cni/net.d/10-ferry.conflist'), 'utf8'));
    expect(written.plugins[0].ipam.ranges).toEqual([[{ subnet: '10.244.4.0/24' }]]);
  });

  it('fails with one line naming the cause, and writes nothing', async () => {
    nodes.set('/api/v1/nodes/no-cidr', { status: 200, body: { kind: 'Node', spec: {} } });
    nodes.set('/api/v1/nodes/forbidden', {
      status: 403,
      body: { kind: 'Status', message: 'nodes "forbidden" is forbidden: User "system:serviceaccount:kube-system:ferry" cannot get resource "nodes"' },
    });
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['no-cidr', {}, /^ferry install-cni: Node no-cidr has no spec\.podCIDR: the cluster must allocate node CIDRs .*--allocate-node-cidrs.*\n$/],
      ['forbidden', {}, /^ferry install-cni: GET https:\/\/127\.0\.0\.1:\d+\/api\/v1\/nodes\/forbidden: HTTP 403: nodes "forbidden" is forbidden: .*\n$/],
      ['missing', {}, /^ferry install-cni: GET .*\/api\/v1\/nodes\/missing: HTTP 404: nodes not found\n$/],
      ['placeholder', { KUBERNETES_SERVICE_HOST: config.data['api-server-host']! }, /^ferry install-cni: the API server address is the placeholder ".*\.invalid": set api-server-host in ConfigMap kube-system\/ferry-config\n$/],
      ['unnamed', { NODE_NAME: '' }, /^ferry install-cni: NODE_NAME is not set\n$/],
    ];
    for (const [node, overrides, message] of cases) {
      const { host, result } = install(node, overrides);
      const r = await result;
      expect(r.code, node).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
      expect(existsSync(join(host, 'etc/cni/net.d/10-ferry.conflist')), `${node}: no conflist`).toBe(false);
    }
  });
});
