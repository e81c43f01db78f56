#!/usr/bin/env node
// The `ferry` command. Runs as root: it creates namespaces and speaks netlink.
import { Command } from 'commander';
import { startCniDaemon } from '../../plugin/daemon/run.js';
import { DEFAULT_CNI_SOCKET } from '../../plugin/daemon/server.js';
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
  .description('run the node daemon: serves the CNI frontend binary over a root-only unix socket')
  .option('--cni-socket <path>', 'unix socket the CNI frontend connects to', DEFAULT_CNI_SOCKET)
  .action(async (opts: { cniSocket: string }) => {
    const daemon = await startCniDaemon(opts.cniSocket).catch((e: Error) => {
      // A reason, not a stack trace: the usual one is another daemon on the socket.
      console.error(`ferry daemon: ${e.message}`);
      process.exit(1);
    });
    const stop = () => void daemon.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

registerInspectCommands(program);

await program.parseAsync();
