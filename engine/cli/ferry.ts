#!/usr/bin/env node
// The `ferry` command. Runs as root: it creates namespaces and speaks netlink.
import { Command } from 'commander';
import { hostname } from 'node:os';
import pino from 'pino';
import { startNodeDaemon } from '../../plugin/daemon/node.js';
import type { ApiConfig } from '../../plugin/daemon/k8s-source.js';
import { DEFAULT_CNI_SOCKET } from '../../plugin/daemon/server.js';
import { DEFAULT_GC_INTERVAL_MS } from '../dataplane/ct-gc.js';
import { DEFAULT_PIN_ROOT } from '../dataplane/paths.js';
import { runDemo } from '../demo/demo.js';
import { registerInspectCommands } from './inspect.js';

const program = new Command('ferry').description('ferry — a Kubernetes node dataplane (rtnetlink engine, eBPF, CNI)');

program
  .command('demo')
  .description('wire a node and two pods in throw-away network namespaces, probe them, clean up')
  .action(async () => {
    process.exitCode = (await runDemo()) ? 0 : 1;
  });

program
  .command('daemon')
  .description('run the node daemon: the CNI socket, and with --services or --kubeconfig/--in-cluster the eBPF dataplane programmed from Kubernetes objects')
  .option('--cni-socket <path>', 'unix socket the CNI frontend connects to', DEFAULT_CNI_SOCKET)
  .option('--pin-root <dir>', 'where the dataplane is pinned on bpffs', DEFAULT_PIN_ROOT)
  .option('--services <path>', 'YAML/JSON file or folder of v1 Services and discovery.k8s.io/v1 EndpointSlices (watched)')
  .option('--kubeconfig [path]', 'take Services, EndpointSlices and Nodes from the API server in this kubeconfig (no value: $KUBECONFIG)')
  .option('--in-cluster', 'take them from the API server, with the pod\'s service account')
  .option('--node-name <name>', 'this node\'s name, for traffic policy Local', hostname())
  .option('--uplink <ifname>', 'attach from_uplink there; its IPv4 addresses are the node addresses')
  .option('--metrics-address <host:port>', 'serve /metrics and /healthz')
  .option('--gc-interval <ms>', 'conntrack GC interval', (v) => Number(v), DEFAULT_GC_INTERVAL_MS)
  .action(async (opts: { cniSocket: string; pinRoot: string; services?: string; kubeconfig?: string | true; inCluster?: boolean; nodeName: string; uplink?: string; metricsAddress?: string; gcInterval: number }) => {
    const log = pino({ name: 'ferry-daemon' });
    const fail = (message: string): never => {
      console.error(`ferry daemon: ${message}`);
      process.exit(1);
    };
    let api: ApiConfig | undefined;
    if (opts.kubeconfig !== undefined && opts.inCluster === true) fail('--kubeconfig and --in-cluster exclude each other');
    if (opts.kubeconfig !== undefined) {
      const path = opts.kubeconfig === true ? process.env.KUBECONFIG : opts.kubeconfig;
      if (path === undefined || path === '') fail('--kubeconfig without a path needs $KUBECONFIG');
      api = { kubeconfig: path! };
    } else if (opts.inCluster === true) api = { inCluster: true };
    if (api !== undefined && opts.services !== undefined) fail('--services and the API server source (--kubeconfig, --in-cluster) exclude each other');
    const daemon = await startNodeDaemon({
      cniSocket: opts.cniSocket,
      pinRoot: opts.pinRoot,
      nodeName: opts.nodeName,
      gcIntervalMs: opts.gcInterval,
      log,
      ...(opts.services !== undefined && { services: opts.services }),
      ...(api !== undefined && { api }),
      ...(opts.uplink !== undefined && { uplink: opts.uplink }),
      ...(opts.metricsAddress !== undefined && { metricsAddress: opts.metricsAddress }),
    }).catch((e: Error) => {
      // A reason, not a stack trace: the usual one is another daemon on the socket.
      log.fatal({ err: e }, `ferry daemon: ${e.message}`);
      console.error(`ferry daemon: ${e.message}`);
      process.exit(1);
    });
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping; pinned maps, programs and links stay');
      void daemon.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

registerInspectCommands(program);

await program.parseAsync();
