// Undo actions for a bench run, run once in reverse order whether the run
// ends normally, throws, or is interrupted (SIGINT, SIGTERM, SIGHUP). Every
// action is synchronous, so it can run from a signal handler or the 'exit'
// event, where nothing asynchronous gets to finish.

type Action = { what: string; undo: () => void };

export class Cleanup {
  private readonly actions: Action[] = [];
  private done = false;

  constructor() {
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      // A listener stays registered (a repeated Ctrl-C must not kill the
      // process mid-cleanup), and the cleanup starts on the next turn of the
      // event loop: a parent that relays signals (tsx's CLI) hears from the
      // child's own signal hook first, instead of escalating to SIGKILL.
      process.on(signal, () => {
        if (this.done) return;
        process.stderr.write(`\n${signal}: cleaning up…\n`);
        setImmediate(() => {
          this.run();
          process.exit(code);
        });
      });
    }
    process.once('exit', () => this.run());
  }

  /** Registers an undo action; returns a function that runs it early (and only once). */
  add(what: string, undo: () => void): () => void {
    const action: Action = { what, undo };
    this.actions.push(action);
    return () => {
      const i = this.actions.indexOf(action);
      if (i < 0) return;
      this.actions.splice(i, 1);
      this.attempt(action);
    };
  }

  /** Runs every pending action, newest first; failures are reported, never thrown. */
  run(): void {
    if (this.done) return;
    this.done = true;
    while (this.actions.length > 0) this.attempt(this.actions.pop()!);
  }

  private attempt(action: Action): void {
    try {
      action.undo();
    } catch (e) {
      process.stderr.write(`cleanup: ${action.what}: ${(e as Error).message}\n`);
    }
  }
}
