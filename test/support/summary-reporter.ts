// Prints the closing line CI reads: `N passed, N failed, N skipped`.
// Unhandled errors count as failures so a crash outside a test cannot pass.
import type { Reporter, RunnerTask, RunnerTestFile } from 'vitest/node';

function count(tasks: RunnerTask[], totals: { passed: number; failed: number; skipped: number }): void {
  for (const task of tasks) {
    if (task.type === 'suite') {
      count(task.tasks, totals);
      // A suite that failed in a hook before its tests ran still fails the run.
      if (task.result?.state === 'fail' && task.tasks.every((t) => t.result?.state !== 'fail')) totals.failed++;
      continue;
    }
    const state = task.result?.state;
    if (state === 'pass') totals.passed++;
    else if (state === 'fail') totals.failed++;
    else totals.skipped++;
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const totals = { passed: 0, failed: 0, skipped: 0 };
    for (const file of files) {
      count(file.tasks, totals);
      if (file.result?.state === 'fail' && file.tasks.length === 0) totals.failed++; // failed to import
    }
    totals.failed += errors.length;
    process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
  }
}
