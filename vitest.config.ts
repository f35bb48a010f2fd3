import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: { METADATA_SERVER_DETECTION: 'none', NO_COLOR: '1' },
  },
});
