import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const stub = fileURLToPath(new URL('./test/stub/vscode.ts', import.meta.url));

export default defineConfig({
  resolve: { alias: { vscode: stub } },
  test: {
    projects: [
      {
        resolve: { alias: { vscode: stub } },
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node' },
      },
      {
        resolve: { alias: { vscode: stub } },
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          // `require('vscode')` inside vscode-languageclient must see the stub.
          setupFiles: ['test/stub/vscodeProxy.ts'],
          testTimeout: 120000,
          hookTimeout: 120000,
          // One server process at a time: the tests share nothing but the CPU.
          fileParallelism: false,
        },
      },
    ],
  },
});
