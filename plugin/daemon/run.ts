// The node daemon's CNI side: one netlink handle in the node namespace for
// the daemon's life, and the unix socket the frontend binary talks to.
import type net from 'node:net';
import pino from 'pino';
import { Handle } from '../../engine/handle.js';
import { runCni } from '../cni/index.js';
import { createHandlers } from '../commands/handlers.js';
import { DEFAULT_CNI_SOCKET, serveCni } from './server.js';

export interface CniDaemon {
  socketPath: string;
  close(): Promise<void>;
}

export async function startCniDaemon(socketPath = DEFAULT_CNI_SOCKET, log = pino({ name: 'ferry-daemon' })): Promise<CniDaemon> {
  const node = await Handle.open();
  const handlers = createHandlers({ node });
  let server: net.Server;
  try {
    server = await serveCni(socketPath, (call) => runCni(call, handlers), log);
  } catch (e) {
    node.close();
    throw e;
  }
  return {
    socketPath,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      node.close();
    },
  };
}
