// Where the dataplane lives on bpffs and on disk. The daemon loads the
// programs and pins them here; CNI calls find them here to attach to new
// pods' veths; links pinned here keep programs attached after the process
// that attached them has exited.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/ferry';

/** The pinned program that CNI ADD attaches to a pod's host veth (tcx ingress). */
export const fromPodPin = (pinRoot: string) => join(pinRoot, 'from_pod');

/** The pinned program attachUplink() attaches to the node's uplink (tcx ingress). */
export const fromUplinkPin = (pinRoot: string) => join(pinRoot, 'from_uplink');

/**
 * An interface name as a bpffs file name: bpffs refuses names with a dot
 * (EPERM), which interface names may have (`eth0.100`), so dots are written
 * %2e ('%' cannot be in an interface name, so nothing else maps there).
 */
export const pinNameOf = (ifname: string) => ifname.replaceAll('.', '%2e');

/** The pinned tcx link of one host veth. */
export const linkPin = (pinRoot: string, hostVeth: string) => join(pinRoot, 'links', pinNameOf(hostVeth));

/** The pinned program attachUplink() attaches to the node's uplink (tcx egress): masquerade. */
export const toUplinkPin = (pinRoot: string) => join(pinRoot, 'to_uplink');

/** The pinned tcx link of one uplink (from_uplink, at ingress). */
export const uplinkLinkPin = (pinRoot: string, ifname: string) => join(pinRoot, 'uplinks', pinNameOf(ifname));

/** The pinned tcx link of one uplink's egress (to_uplink). */
export const uplinkEgressLinkPin = (pinRoot: string, ifname: string) => join(pinRoot, 'uplinks-egress', pinNameOf(ifname));

/** build/bpf/NAME of this checkout or installation (found by walking up to package.json). */
export function bpfObjectPath(name: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bpf'))) return join(dir, 'build', 'bpf', name);
    if (dirname(dir) === dir) throw new Error(`ferry: cannot find build/bpf/${name} above ${fileURLToPath(import.meta.url)}`);
  }
}
