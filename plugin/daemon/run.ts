// The node daemon's CNI side: the unix socket the frontend binary talks to,
// serving calls in the namespace the daemon runs in (the node's).
import type net from 'node:net';
import pino from 'pino';
import { Netns } from '../../engine/netns/netns.js';
import { runCni } from '../cni/index.js';
import { createHandlers } from '../commands/handlers.js';
import { DEFAULT_CNI_SOCKET, serveCni } from './server.js';

export interface CniDaemon {
  socketPath: string;
  close(): Promise<void>;
}

export async function startCniDaemon(socketPath = DEFAULT_CNI_SOCKET, log = pino({ name: 'ferry-daemon' })): Promise<CniDaemon> {
  const nodeNetns = Netns.current();
  const handlers = createHandlers({ nodeNetns });
  let server: net.Server;
  try {
    server = await serveCni(socketPath, (call) => runCni(call, handlers), log);
  } catch (e) {
    nodeNetns.close();
    throw e;
  }
  return {
    socketPath,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      nodeNetns.close();
    },
  };
}
