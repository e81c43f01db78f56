// What bench/cni.ts and its in-namespace runner (runner.ts) exchange, one
// JSON document per line: a batch of cnitool calls to start together, and
// their timings.

export type CniCommand = 'add' | 'del';

export interface Batch {
  id: number;
  command: CniCommand;
  network: string;
  /** One cnitool call per pod netns path, all started at once. */
  netns: string[];
}

export interface CallTiming {
  netns: string;
  /** Wall time of the cnitool process: from spawn to its exit. */
  ms: number;
  /** Start and exit relative to the batch's start. */
  startMs: number;
  endMs: number;
  status: number;
  /** ADD: the pod's first address from the result cnitool printed. */
  ip?: string;
  /** On failure: cnitool's stderr and stdout. */
  error?: string;
}

export interface BatchResult {
  id: number;
  /** From the first spawn to the last exit. */
  wallMs: number;
  calls: CallTiming[];
}
