// IPAM failures in CNI terms. Codes under 100 are the spec's and each tells
// the runtime something specific; ferry's own start at 100 (SPEC.md, "Error").
import { CniCode, CniError } from '../cni/index.js';
import { IpamConfigError, IpamConflictError, IpamExhaustedError, IpamRequestError } from '../ipam/index.js';
import { BridgeConflictError, PodInterfaceExistsError } from '../network/errors.js';

export const FerryCode = {
  /** ADD: a range set has no free address (STATUS reports the same as 50). */
  AddressesExhausted: 100,
  /** ADD: a requested IP (runtimeConfig.ips) is held by another attachment. */
  AddressInUse: 101,
  /** CHECK: the kernel's state differs from the ADD result; msg names each difference. */
  CheckFailed: 102,
  /** ADD: a hostPort (portMappings) another pod or a Service holds; msg names both. */
  HostPortInUse: 103,
} as const;

export function ipamToCni(e: unknown): unknown {
  if (e instanceof IpamExhaustedError) return new CniError(FerryCode.AddressesExhausted, e.message, undefined, { cause: e });
  if (e instanceof IpamConflictError) return new CniError(FerryCode.AddressInUse, e.message, undefined, { cause: e });
  if (e instanceof IpamConfigError) return new CniError(CniCode.InvalidNetworkConfig, e.message, undefined, { cause: e });
  if (e instanceof IpamRequestError) return new CniError(CniCode.InvalidNetworkConfig, e.message, undefined, { cause: e });
  return e;
}

/**
 * Attachment conflicts: a CNI_IFNAME the pod already uses is an environment
 * variable ferry cannot honour (4, naming it); a bridge name taken by another
 * kind of link is a config ferry cannot honour (7, naming the key).
 */
export function networkToCni(e: unknown): unknown {
  if (e instanceof PodInterfaceExistsError) {
    return new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME "${e.ifname}": a link of that name already exists in netns ${e.netns}`, undefined, { cause: e });
  }
  if (e instanceof BridgeConflictError) return new CniError(CniCode.InvalidNetworkConfig, `bridge "${e.bridge}": a ${e.kind} of that name exists in the node namespace`, undefined, { cause: e });
  return e;
}
