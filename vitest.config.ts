import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Privileged tests share the kernel; files run in parallel, tests within a file in order.
    pool: 'forks',
  },
});
