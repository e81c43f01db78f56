#!/usr/bin/env node
// ferry's CNI installer: the init container of deploy/ferry.yaml's DaemonSet.
// Puts the CNI binary on the node (/opt/cni/bin/ferry) and the network config
// (/etc/cni/net.d/10-ferry.conflist), with the ferry plugin's ipam.ranges
// filled from this node's spec.podCIDRs — read from the API server, since the
// downward API does not expose them. Both files are written beside their
// destination and renamed into place, so kubelet never reads half a config
// and a running binary is never overwritten.
//
// Environment (deploy/ferry.yaml sets each one):
//   NODE_NAME                                   this node (spec.nodeName)
//   KUBERNETES_SERVICE_HOST, _PORT              the API server
//   FERRY_SERVICEACCOUNT_DIR                    token and ca.crt; default the pod's
//   FERRY_CONFLIST_TEMPLATE                     the conflist, without ipam.ranges
//   FERRY_CNI_BINARY                            the binary to install
//   CNI_BIN_DIR, CNI_NET_DIR                    the node's directories, as mounted
//   FERRY_CONFLIST_NAME                         default 10-ferry.conflist
//
// Exits 0 having installed both, or 1 with one line naming what is wrong;
// kubelet restarts the init container until it succeeds.
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
};

/** GET https://HOST:PORT/PATH with the service account's token and CA, parsed JSON. */
async function apiGet(path) {
  const host = env('KUBERNETES_SERVICE_HOST');
  const port = env('KUBERNETES_SERVICE_PORT', '443');
  if (host.endsWith('.invalid')) {
    throw new Error(`the API server address is the placeholder "${host}": set api-server-host in ConfigMap kube-system/ferry-config`);
  }
  const saDir = env('FERRY_SERVICEACCOUNT_DIR', '/var/run/secrets/kubernetes.io/serviceaccount');
  const [token, ca] = await Promise.all([readFile(join(saDir, 'token'), 'utf8'), readFile(join(saDir, 'ca.crt'))]);
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers: { authorization: `Bearer ${token.trim()}`, accept: 'application/json' }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        let parsed;
        try {
          parsed = JSON.parse(body);
        } catch {
          return reject(new Error(`GET ${url}: HTTP ${res.statusCode}, not JSON`));
        }
        // A Status object carries the API server's reason (e.g. RBAC's "forbidden: …").
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}: ${parsed.message ?? body}`));
        resolve(parsed);
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', (e) => reject(new Error(`GET ${url}: ${e.message}`)));
  });
}

/** The node's pod CIDRs: spec.podCIDRs (dual stack), or the older single spec.podCIDR. */
async function podCidrs(nodeName) {
  const node = await apiGet(`/api/v1/nodes/${encodeURIComponent(nodeName)}`);
  const cidrs = node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  if (cidrs.length === 0) {
    throw new Error(
      `Node ${nodeName} has no spec.podCIDR: the cluster must allocate node CIDRs ` +
        '(kube-controller-manager --allocate-node-cidrs with --cluster-cidr; kubeadm init --pod-network-cidr)',
    );
  }
  return cidrs;
}

/** The template with the ferry plugin's ipam.ranges set to one range set per CIDR, checked by ferry's own parser. */
async function render(templateText, cidrs, templatePath) {
  let conflist;
  try {
    conflist = JSON.parse(templateText);
  } catch (e) {
    throw new Error(`${templatePath}: not JSON: ${e.message}`);
  }
  const ferry = (conflist.plugins ?? []).find((p) => p.type === 'ferry');
  if (ferry === undefined) throw new Error(`${templatePath}: no plugin of type "ferry"`);
  if (ferry.ipam?.ranges !== undefined) throw new Error(`${templatePath}: ipam.ranges is set; ferry fills it from the Node's podCIDRs, leave it out`);
  ferry.ipam = { ...ferry.ipam, ranges: cidrs.map((subnet) => [{ subnet }]) };
  // The plugin's config as libcni hands it over: the list's name and version injected.
  const { parseNetConf, checkSupported } = await import(new URL('../dist/plugin/cni/config.js', import.meta.url).href);
  try {
    checkSupported(parseNetConf(JSON.stringify({ ...ferry, name: conflist.name, cniVersion: conflist.cniVersion })));
  } catch (e) {
    throw new Error(`${templatePath}: the ferry plugin's config is refused: ${e.message}`);
  }
  return `${JSON.stringify(conflist, null, 2)}\n`;
}

/** Writes beside the destination, then renames over it. */
async function install(dest, write) {
  const tmp = join(dest, '..', `.${dest.split('/').pop()}.tmp-${process.pid}`);
  try {
    await write(tmp);
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function main() {
  const nodeName = env('NODE_NAME');
  const templatePath = env('FERRY_CONFLIST_TEMPLATE', '/etc/ferry/10-ferry.conflist');
  const binary = env('FERRY_CNI_BINARY', '/opt/ferry/cni/ferry');
  const binDir = env('CNI_BIN_DIR', '/host/opt/cni/bin');
  const netDir = env('CNI_NET_DIR', '/host/etc/cni/net.d');
  const name = env('FERRY_CONFLIST_NAME', '10-ferry.conflist');

  const cidrs = await podCidrs(nodeName);
  const conflist = await render(await readFile(templatePath, 'utf8'), cidrs, templatePath);

  await mkdir(binDir, { recursive: true });
  await mkdir(netDir, { recursive: true });
  await install(join(binDir, 'ferry'), async (tmp) => {
    await copyFile(binary, tmp);
    await chmod(tmp, 0o755);
  });
  await install(join(netDir, name), (tmp) => writeFile(tmp, conflist, { mode: 0o644 }));
  console.log(`installed ${join(binDir, 'ferry')} and ${join(netDir, name)} (node ${nodeName}, pod CIDRs ${cidrs.join(', ')})`);

  // The runtime takes the first config in lexical order: another one before
  // ours means pods are not ferry's.
  const earlier = (await readdir(netDir)).filter((f) => /\.(conf|conflist|json)$/.test(f) && f < name).sort();
  if (earlier.length > 0) console.log(`warning: ${earlier.join(', ')} in ${netDir} sort before ${name}; the runtime uses the first one`);
}

main().catch((e) => {
  console.error(`ferry install-cni: ${e.message}`);
  process.exit(1);
});
