// The thread of NetnsApiServer: moves into the node namespace before
// anything else, then runs a FakeApiServer on that namespace's 127.0.0.1
// and applies the objects the test posts.
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../../engine/native/binding.js';
import { FakeApiServer } from './fake-apiserver.js';
import type { ApiServerMessage } from './netns-apiserver.js';

const { nsFd, nsName } = workerData as { nsFd: number; nsName: string };
native.enterNetnsOnThisThread(nsFd, nsName);

const server = await new FakeApiServer().listen();
parentPort!.on('message', (m: ApiServerMessage) => {
  if (m.op === 'apply') server.apply(m.resource, m.object);
  else if (m.op === 'remove') server.remove(m.resource, m.namespace, m.name);
  else void server.close().then(() => parentPort!.postMessage({ closed: true }));
});
parentPort!.postMessage({ port: server.port });
