// The scale bench's API server: test/daemon/fake-apiserver.ts (list +
// watch for Services, EndpointSlices and Nodes) in a child process inside
// the node netns, on that namespace's 127.0.0.1, driven by the bench over
// the IPC channel. It makes the synthetic cluster itself (support/cluster.ts)
// and answers each change with the moment just before its watch event was
// written (process.hrtime: CLOCK_MONOTONIC, the same clock in every process).
import { FakeApiServer } from '../../test/daemon/fake-apiserver.js';
import { fillerServices, serviceObject, sliceObject, type BenchService } from '../support/cluster.js';

export type ToApiServer =
  | { op: 'populate'; services: number; endpoints: number }
  | { op: 'slice'; index: number; addresses: string[] }
  | { op: 'close' };

export type FromApiServer =
  | { op: 'listening'; port: number }
  | { op: 'populated'; objects: number }
  | { op: 'emitted'; at: string }
  | { op: 'closed' };

const send = (m: FromApiServer) => process.send!(m);
const server = await new FakeApiServer().listen();
let services: BenchService[] = [];

process.on('message', (m: ToApiServer) => {
  if (m.op === 'populate') {
    services = fillerServices(m.services, m.endpoints);
    for (const s of services) server.apply('services', serviceObject(s) as Parameters<FakeApiServer['apply']>[1]);
    for (const s of services) server.apply('endpointslices', sliceObject(s) as Parameters<FakeApiServer['apply']>[1]);
    server.apply('nodes', { metadata: { name: 'bench' }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.10' }] } });
    send({ op: 'populated', objects: 2 * services.length + 1 });
  } else if (m.op === 'slice') {
    // apply() writes the MODIFIED event to every watch stream before it returns.
    const at = process.hrtime.bigint();
    server.apply('endpointslices', sliceObject(services[m.index]!, m.addresses) as Parameters<FakeApiServer['apply']>[1]);
    send({ op: 'emitted', at: at.toString() });
  } else {
    void server.close().then(() => {
      send({ op: 'closed' });
      process.exit(0);
    });
  }
});
send({ op: 'listening', port: server.port });
