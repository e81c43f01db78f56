#!/usr/bin/env node
// The `ferry` command. Runs as root: it creates namespaces and speaks netlink.
import { Command, Option } from 'commander';
import pino from 'pino';
import type { DaemonConfig } from '../../plugin/daemon/config.js';
import { addDaemonSettingFlags, daemonConfigFromFlags, nodeDaemonOptions, type DaemonFlagValues } from '../../plugin/daemon/flags.js';
import { startNodeDaemon } from '../../plugin/daemon/node.js';
import { runDemo } from '../demo/demo.js';
import { runMultiNodeDemo } from '../demo/multinode.js';
import { registerInspectCommands } from './inspect.js';

const program = new Command('ferry').description('ferry — a Kubernetes node dataplane (rtnetlink engine, eBPF, CNI)');

program
  .command('demo')
  .description('wire a node and two pods in throw-away network namespaces, probe them, clean up')
  .option('--nodes <n>', 'with 2 or more: that many nodes on an underlay, pods across them, direct routes and a VXLAN overlay', (v) => Number(v), 1)
  .action(async (opts: { nodes: number }) => {
    process.exitCode = (await (opts.nodes === 1 ? runDemo() : runMultiNodeDemo(opts.nodes))) ? 0 : 1;
  });

addDaemonSettingFlags(
  program
    .command('daemon')
    .description('run the node daemon: the CNI socket, and with --services or --kubeconfig/--in-cluster the eBPF dataplane programmed from Kubernetes objects'),
)
  .action(async (opts: DaemonFlagValues) => {
    let config: DaemonConfig;
    try {
      config = daemonConfigFromFlags(opts);
    } catch (e) {
      console.error(`ferry daemon: ${(e as Error).message}`);
      process.exit(1);
    }
    const log = pino({ name: 'ferry-daemon', level: config.logLevel });
    const daemon = await startNodeDaemon({ ...nodeDaemonOptions(config), log }).catch((e: Error) => {
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
