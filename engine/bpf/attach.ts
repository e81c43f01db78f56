// Attaching a tc (SCHED_CLS) program to an interface inside a network
// namespace: a tcx link where the kernel has them (6.6+), otherwise a
// clsact qdisc and a cls_bpf direct-action filter.
//
//   const a = await attachTc({ netns, ifindex, direction: 'ingress', program });
//   ...
//   await a.detach();
import { openSync } from 'node:fs';

import { native } from '../native/binding.js';
import { BpfError, NotSupportedError, wrapNativeAsync } from './errors.js';
import { TcAttachment, TcxAttachment, type Attachment } from './attachment.js';
import type { BpfProgram } from './program.js';
import { checkInteger, checkOneOf, checkString, FD_MAX } from './validate.js';

/** Any open network namespace handle: ferry's Netns or a test fixture. */
export interface NetnsRef {
  readonly fd: number;
  readonly name: string;
}

export type TcDirection = 'ingress' | 'egress';
/** auto: tcx, falling back to tc when the kernel lacks tcx. */
export type TcMode = 'auto' | 'tcx' | 'tc';

export interface AttachTcOptions {
  /** The namespace the ifindex belongs to; omitted: the process's own. */
  netns?: NetnsRef;
  ifindex: number;
  direction: TcDirection;
  program: BpfProgram;
  mode?: TcMode;
}

const DIRECTIONS: readonly TcDirection[] = ['ingress', 'egress'];
const MODES: readonly TcMode[] = ['auto', 'tcx', 'tc'];

/**
 * Attaches `program` at the ingress or egress hook of interface `ifindex`.
 * Equivalent to (tc mode): `tc qdisc add dev X clsact;
 * tc filter add dev X ingress bpf direct-action obj ...`.
 * Forcing 'tcx' on a kernel without it throws NotSupportedError.
 */
export async function attachTc(options: AttachTcOptions): Promise<Attachment> {
  const { netns, ifindex, direction, program, mode = 'auto' } = options;
  if (netns !== undefined) {
    checkInteger('netns.fd', netns.fd, 0, FD_MAX);
    checkString('netns.name', netns.name);
  }
  checkInteger('ifindex', ifindex, 1, 0x7fffffff);
  checkOneOf('direction', direction, DIRECTIONS);
  checkOneOf('mode', mode, MODES);
  if (program === null || typeof program !== 'object' || typeof program.type !== 'string') {
    throw new TypeError('program must be a BpfProgram');
  }
  if (program.type !== 'sched_cls') {
    throw new TypeError(`program ${program.name} is ${program.type}; tc and tcx need a sched_cls (SEC("tc")) program`);
  }
  const nsFd = netns?.fd ?? -1;
  const nsName = netns?.name ?? '';
  const where = { ifindex, direction, netnsName: netns?.name, programName: program.name };
  let result;
  try {
    result = await wrapNativeAsync(() =>
      native.bpfTcAttach(nsFd, nsName, ifindex, direction, program.fd, mode, program.name),
    );
  } catch (e) {
    // The program type was checked above, so a forced tcx attach refused
    // with EINVAL means this kernel has no tcx.
    if (mode === 'tcx' && e instanceof BpfError && e.code === 'EINVAL') {
      throw new NotSupportedError(`${e.message} (tcx needs Linux 6.6 or later)`, e, { cause: e });
    }
    throw e;
  }
  if (result.mode === 'tcx') return new TcxAttachment(where, result.linkFd);
  // tc filters are removed by netlink in the namespace: keep our own handle
  // on it (a reopened fd of the same nsfs inode) so detach() works even after
  // the caller closed theirs.
  const ownNsFd = netns !== undefined ? openSync(`/proc/self/fd/${netns.fd}`, 'r') : -1;
  return new TcAttachment(where, result.handle, result.priority, ownNsFd, result.tcxErrno);
}
