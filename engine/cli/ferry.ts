#!/usr/bin/env node
// The `ferry` command. Runs as root: it creates namespaces and speaks netlink.
import { Command } from 'commander';
import { runDemo } from '../demo/demo.js';

const program = new Command('ferry').description('ferry — a Kubernetes node dataplane (rtnetlink engine, eBPF, CNI)');

program
  .command('demo')
  .description('wire a node and two pods in throw-away network namespaces, probe them, clean up')
  .action(async () => {
    process.exitCode = (await runDemo()) ? 0 : 1;
  });

await program.parseAsync();
