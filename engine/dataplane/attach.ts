// Attaching one of the dataplane's pinned programs to an interface so that
// it stays attached after this process exits: a tcx link is pinned (the pin
// is its only reference once our fd is released); a cls_bpf filter, on
// kernels without tcx, stays on the interface by itself.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { attachTc, BpfError, BpfProgram, openPinned, unpinPath, type NetnsRef, type TcDirection, type TcMode } from '../bpf/index.js';
import { native } from '../native/binding.js';

export interface PinnedAttach {
  netns: NetnsRef;
  ifindex: number;
  /** Where the program is pinned. */
  programPin: string;
  /** Where to pin the tcx link (an earlier link pinned there is replaced). */
  linkPin: string;
  /** Default 'ingress'. */
  direction?: TcDirection;
  mode?: TcMode;
}

/**
 * Equivalent to: `bpftool net attach tcx_ingress pinned PROGRAM dev IF` (or
 * tcx_egress) with the link pinned at LINKPIN. Returns the attach mode used.
 * The same program attached there already, by a link pinned at LINKPIN, is
 * left as it is (tcx refuses a program twice on one hook: EEXIST).
 */
export async function attachPinnedProgram(a: PinnedAttach): Promise<'tcx' | 'tc'> {
  const program = BpfProgram.openPinned(a.programPin);
  try {
    let attachment: Awaited<ReturnType<typeof attachTc>>;
    try {
      attachment = await attachTc({ netns: a.netns, ifindex: a.ifindex, direction: a.direction ?? 'ingress', program, mode: a.mode ?? 'auto' });
    } catch (e) {
      if ((e as { code?: string }).code === 'EEXIST' && existsSync(a.linkPin)) return 'tcx';
      throw e;
    }
    if (attachment.mode === 'tcx') {
      unpinPath(a.linkPin);
      mkdirSync(dirname(a.linkPin), { recursive: true });
      try {
        attachment.pin(a.linkPin);
      } catch (e) {
        await attachment.detach();
        throw e;
      }
      attachment.release();
    }
    return attachment.mode;
  } finally {
    program.close();
  }
}

/**
 * The interface the tcx link pinned at `linkPin` is attached to: its ifindex
 * in the namespace it was attached in, 0 once that interface is gone (the
 * kernel detached the link), undefined when no tcx link is pinned there.
 * Equivalent to: `bpftool link show pinned LINKPIN` (its `ifindex`), read
 * from the link fd's /proc fdinfo.
 */
export function pinnedLinkIfindex(linkPin: string): number | undefined {
  let fd: number;
  try {
    fd = openPinned(linkPin);
  } catch (e) {
    if (e instanceof BpfError && e.code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    if (!/^link_type:\s+tcx$/m.test(info)) return undefined;
    const ifindex = /^ifindex:\s+(\d+)$/m.exec(info);
    return ifindex === null ? undefined : Number(ifindex[1]);
  } finally {
    native.closeFd(fd);
  }
}
