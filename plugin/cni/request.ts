// What runCni hands each verb's handler: everything already parsed and
// checked, so a handler only does networking.
import type { Logger } from 'pino';
import type { Attachment, NetConf } from './config.js';
import type { K8sArgs } from './env.js';
import type { Result } from './result.js';
import type { CniVersion } from './versions.js';

interface RequestBase {
  /** The config's cniVersion: the version the answer is written in. */
  cniVersion: CniVersion;
  conf: NetConf;
  /** CNI_PATH, split. */
  path: string[];
  /** A child of the plugin's logger; every line carries the request id, the command and the attachment. */
  log: Logger;
  /** Random per invocation; in every log line as `req`. */
  requestId: string;
}

/** ADD, DEL and CHECK concern one attachment, (containerId, ifname). */
interface AttachmentRequest extends RequestBase {
  containerId: string;
  /** Path of the container's netns (DEL: '' when the runtime did not pass one). */
  netns: string;
  ifname: string;
  /** CNI_ARGS pairs. */
  args: Record<string, string>;
  k8s: K8sArgs;
}

export interface AddRequest extends AttachmentRequest {
  command: 'ADD';
  /**
   * The previous plugin's result when ferry is chained after one. ADD must
   * return it with ferry's additions (see appendResult), never drop it.
   */
  prevResult?: Result;
}

export interface DelRequest extends AttachmentRequest {
  command: 'DEL';
  /**
   * The result of the ADD, when the runtime kept it. DEL is best effort: a
   * prevResult that does not parse is logged and left out, not an error.
   */
  prevResult?: Result;
}

export interface CheckRequest extends AttachmentRequest {
  command: 'CHECK';
  /** The result of the ADD; the spec requires it for CHECK, so runCni refuses a CHECK without it. */
  prevResult: Result;
}

export interface StatusRequest extends RequestBase {
  command: 'STATUS';
}

export interface GcRequest extends RequestBase {
  command: 'GC';
  /**
   * `cni.dev/valid-attachments`: everything not listed may be cleaned up.
   * Required: a GC without the list would read as "nothing is valid".
   */
  validAttachments: Attachment[];
}

export type CniRequest = AddRequest | DelRequest | CheckRequest | StatusRequest | GcRequest;

/**
 * One function per verb. Throw a CniError to choose the code; anything else
 * thrown is mapped by toCniError. ADD returns the Result (ferry's own plus
 * any prevResult); the others return nothing on success.
 */
export interface CniHandlers {
  add(req: AddRequest): Promise<Result>;
  del(req: DelRequest): Promise<void>;
  check(req: CheckRequest): Promise<void>;
  status(req: StatusRequest): Promise<void>;
  gc(req: GcRequest): Promise<void>;
}
