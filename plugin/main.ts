#!/usr/bin/env node
// The in-process CNI plugin: what the frontend binary (plugin/frontend)
// execs when no ferry daemon is listening, and what tests can run directly.
import { Handle } from '../engine/handle.js';
import { cniMain } from './cni/index.js';
import { createHandlers } from './commands/handlers.js';

// VERSION needs no kernel access; everything else works through the node's handle.
const node = process.env.CNI_COMMAND === 'VERSION' ? undefined : await Handle.open().catch(() => undefined);
try {
  await cniMain(createHandlers({ node: node ?? unavailable() }));
} finally {
  node?.close();
}

/** A handle whose every use fails with the reason, so runCni reports it as a CNI error. */
function unavailable(): Handle {
  return new Proxy({} as Handle, {
    get() {
      throw new Error('cannot open a netlink socket in the node namespace (is ferry running as root?)');
    },
  });
}
