#!/usr/bin/env node
// The in-process CNI plugin: what the frontend binary (plugin/frontend)
// execs when no ferry daemon is listening, and what tests can run directly.
// The node is the namespace this process runs in.
import { Netns } from '../engine/netns/netns.js';
import { cniMain } from './cni/index.js';
import { createHandlers } from './commands/handlers.js';

const nodeNetns = Netns.current();
try {
  await cniMain(createHandlers({ nodeNetns }));
} finally {
  nodeNetns.close();
}
