// What can stand in the way of an attachment, as typed errors: the CNI
// layer (plugin/commands/errors.ts) gives each the code the runtime should see.

/** The pod already has a link with the name the attachment needs (CNI_IFNAME). */
export class PodInterfaceExistsError extends Error {
  override readonly name = 'PodInterfaceExistsError';
  constructor(
    readonly ifname: string,
    readonly netns: string,
    options?: { cause?: unknown },
  ) {
    super(`interface "${ifname}" already exists in netns ${netns}`, options);
  }
}

/** The configured bridge name belongs to a link of another kind in the node namespace. */
export class BridgeConflictError extends Error {
  override readonly name = 'BridgeConflictError';
  constructor(
    readonly bridge: string,
    readonly kind: string,
  ) {
    super(`link "${bridge}" exists in the node namespace but is a ${kind}, not a bridge`);
  }
}
