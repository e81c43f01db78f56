// The CNI_* environment variables: which verb needs which, and what a valid
// value is (SPEC.md "Parameters", per-verb "Required environment parameters";
// libcni's skel and utils for the exact checks).
import { CniCode, CniError, invalidEnv, quote } from './errors.js';
import { isVerb, VERBS, type Verb } from './versions.js';

/** The Kubernetes keys of CNI_ARGS (kubelet, containerd, CRI-O). */
export interface K8sArgs {
  podNamespace?: string;
  podName?: string;
  podUid?: string;
  infraContainerId?: string;
}

export interface CniEnv {
  command: Verb;
  /** '' for STATUS, GC and VERSION, which concern no attachment. */
  containerId: string;
  /** '' when not given: STATUS, GC, VERSION, and a DEL whose netns is gone. */
  netns: string;
  /** '' for STATUS, GC and VERSION. */
  ifname: string;
  /** Every CNI_ARGS pair (ADD, DEL, CHECK only), unknown ones included when IgnoreUnknown allowed them. */
  args: Record<string, string>;
  /** The K8S_POD_* pairs of `args`, named. */
  k8s: K8sArgs;
  /** CNI_PATH split on ':', empty entries dropped. */
  path: string[];
}

/**
 * CNI_ARGS keys ferry reads. Any other key is an error unless the runtime
 * sets IgnoreUnknown=1 (kubelet and containerd always do), as libcni's
 * LoadArgs decides it.
 */
export const KNOWN_ARGS = ['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_UID', 'K8S_POD_INFRA_CONTAINER_ID'] as const;

// Verbs about one attachment, identified by (CNI_CONTAINERID, CNI_IFNAME).
const ATTACHMENT_VERBS: ReadonlySet<Verb> = new Set(['ADD', 'DEL', 'CHECK']);

/**
 * Reads and checks the CNI_* variables for the verb in CNI_COMMAND.
 * ADD and CHECK need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME; DEL needs the
 * same but CNI_NETNS may be empty (the namespace may be gone, DEL must still
 * clean up); STATUS, GC and VERSION need none of them and ignore them.
 * CNI_PATH is optional for every verb: the spec requires it where a plugin
 * delegates, and ferry delegates to nothing.
 * Throws CniError 4 naming every missing or invalid variable.
 */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const get = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const command = get('CNI_COMMAND');
  if (command === undefined) throw invalidEnv('CNI_COMMAND', undefined, `not set; expected one of ${VERBS.join(', ')}`);
  if (!isVerb(command)) throw invalidEnv('CNI_COMMAND', command, `unknown command; expected one of ${VERBS.join(', ')}`);

  const result: CniEnv = { command, containerId: '', netns: '', ifname: '', args: {}, k8s: {}, path: splitPath(get('CNI_PATH')) };
  if (!ATTACHMENT_VERBS.has(command)) return result;

  const problems: CniError[] = [];
  const missing: string[] = [];
  const check = (name: string, required: boolean, validate: (v: string) => string | undefined): string => {
    const value = get(name);
    if (value === undefined) {
      if (required) missing.push(name);
      return '';
    }
    const why = validate(value);
    if (why) problems.push(invalidEnv(name, value, why));
    return value;
  };
  result.containerId = check('CNI_CONTAINERID', true, containerIdProblem);
  result.netns = check('CNI_NETNS', command !== 'DEL', netnsProblem);
  result.ifname = check('CNI_IFNAME', true, ifnameProblem);
  const rawArgs = get('CNI_ARGS');
  if (rawArgs !== undefined) {
    try {
      result.args = parseCniArgs(rawArgs);
      result.k8s = k8sArgs(result.args);
    } catch (e) {
      problems.push(e as CniError);
    }
  }

  if (missing.length) {
    problems.unshift(invalidEnv(missing.join(', '), undefined, `required for ${command} but not set`));
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) {
    // One error whose message lists every variable, as the spec asks.
    throw new CniError(CniCode.InvalidEnvironment, problems.map((p) => p.msg).join('; '));
  }
  return result;
}

/**
 * The spec's container id: not empty, starts alphanumeric, then any of
 * alphanumerics, '_', '.', '-' (libcni's `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`).
 */
export function containerIdProblem(id: string): string | undefined {
  if (!/^[a-zA-Z0-9]/.test(id)) return 'container id must start with a letter or digit';
  const bad = /[^a-zA-Z0-9_.-]/.exec(id);
  if (bad) return `container id may contain only letters, digits, '_', '.' and '-', found ${quote(bad[0])}`;
  return undefined;
}

/**
 * The kernel's dev_valid_name (and libcni's ValidateInterfaceName): 1–15
 * bytes, not '.' or '..', no '/', ':' or whitespace. Also no '%': the kernel
 * takes `eth%d` as a template and would name the link eth0, and the spec says
 * a plugin that cannot use the name must fail.
 */
export function ifnameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > 15) return `interface name must be at most 15 bytes, got ${bytes}`;
  if (name === '.' || name === '..') return `interface name must not be ${quote(name)}`;
  for (const ch of ['/', ':', '%']) if (name.includes(ch)) return `interface name must not contain '${ch}'`;
  // Go's unicode.IsSpace: JS \s plus U+0085 (NEL); \s also has U+FEFF, which Go lacks but no name wants.
  if (/[\s\u0085]/.test(name)) return 'interface name must not contain whitespace';
  return undefined;
}

/** ferry works with network namespaces, which are files: the runtime passes their path. */
function netnsProblem(netns: string): string | undefined {
  return netns.startsWith('/') ? undefined : 'must be an absolute path to a network namespace, e.g. /var/run/netns/cni-1234';
}

/**
 * `K=V;K2=V2` → a record, as libcni's LoadArgs reads it: pairs split on ';'
 * (an empty trailing pair is tolerated), each pair exactly one '='; unknown
 * keys are an error unless IgnoreUnknown is 1/true. A key given twice is an
 * error too: which value a runtime meant cannot be known.
 */
export function parseCniArgs(text: string): Record<string, string> {
  const args: Record<string, string> = Object.create(null);
  const pairs = text.split(';');
  if (pairs[pairs.length - 1] === '') pairs.pop();
  for (const pair of pairs) {
    const parts = pair.split('=');
    if (parts.length !== 2 || parts[0] === '') {
      throw invalidEnv('CNI_ARGS', text, `pair ${quote(pair)} is not KEY=VALUE`);
    }
    const [key, value] = parts as [string, string];
    if (Object.hasOwn(args, key)) throw invalidEnv('CNI_ARGS', text, `key ${quote(key)} given twice`);
    args[key] = value;
  }
  let ignoreUnknown = false;
  if (args.IgnoreUnknown !== undefined) {
    const v = args.IgnoreUnknown.toLowerCase();
    if (v === '1' || v === 'true') ignoreUnknown = true;
    else if (v !== '0' && v !== 'false') throw invalidEnv('CNI_ARGS', text, `IgnoreUnknown ${quote(args.IgnoreUnknown)} is not 1, 0, true or false`);
  }
  const unknown = Object.keys(args).filter((k) => !(KNOWN_ARGS as readonly string[]).includes(k));
  if (unknown.length && !ignoreUnknown) {
    throw invalidEnv('CNI_ARGS', text, `unknown keys ${unknown.map((k) => quote(k)).join(', ')} (set IgnoreUnknown=1 to allow them)`);
  }
  // A plain object from here on: callers spread and serialize it.
  return { ...args };
}

function k8sArgs(args: Record<string, string>): K8sArgs {
  const k8s: K8sArgs = {};
  if (args.K8S_POD_NAMESPACE !== undefined) k8s.podNamespace = args.K8S_POD_NAMESPACE;
  if (args.K8S_POD_NAME !== undefined) k8s.podName = args.K8S_POD_NAME;
  if (args.K8S_POD_UID !== undefined) k8s.podUid = args.K8S_POD_UID;
  if (args.K8S_POD_INFRA_CONTAINER_ID !== undefined) k8s.infraContainerId = args.K8S_POD_INFRA_CONTAINER_ID;
  return k8s;
}

function splitPath(text: string | undefined): string[] {
  return text === undefined ? [] : text.split(':').filter((p) => p !== '');
}
