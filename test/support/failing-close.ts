/**
 * Test doubles of the product's own modules whose resources close and then fail to, for tests of
 * what a command or a simulation does when a close fails after its work. vi.mock is hoisted above
 * the imports, so a test imports the helper inside the factory, as below.
 */

/**
 * The adapters module with Google's clients that close and then fail to (`message`), for a test
 * of what a command or a simulation does when its clients fail to close after its work:
 *
 *   vi.mock('../../src/adapters/index.js', async (importOriginal) => {
 *     const { adaptersFailingToClose } = await import('../support/failing-close.js');
 *     return adaptersFailingToClose(importOriginal, 'the clients failed to close (for the test)');
 *   });
 *
 * (vi.mock is hoisted above the imports: the helper is imported inside the factory.)
 */
export async function adaptersFailingToClose(
  importOriginal: <T>() => Promise<T>,
  message: string,
): Promise<typeof import('../../src/adapters/index.js')> {
  const real = await importOriginal<typeof import('../../src/adapters/index.js')>();
  return {
    ...real,
    createGooglePorts: (...args: Parameters<typeof real.createGooglePorts>) => {
      const ports = real.createGooglePorts(...args);
      return {
        ...ports,
        close: async () => {
          await ports.close();
          throw new Error(message);
        },
      };
    },
  };
}

/**
 * The file state store's module with stores that close and then fail to (`message`):
 *
 *   vi.mock('../../src/adapters/file-store.js', async (importOriginal) => {
 *     const { fileStoreFailingToClose } = await import('../support/failing-close.js');
 *     return fileStoreFailingToClose(importOriginal, 'the state store failed to close (for the test)');
 *   });
 */
export async function fileStoreFailingToClose(
  importOriginal: <T>() => Promise<T>,
  message: string,
): Promise<typeof import('../../src/adapters/file-store.js')> {
  const real = await importOriginal<typeof import('../../src/adapters/file-store.js')>();
  return {
    ...real,
    createFileStateStore: (...args: Parameters<typeof real.createFileStateStore>) => {
      const store = real.createFileStateStore(...args);
      return {
        ...store,
        close: async () => {
          await store.close();
          throw new Error(message);
        },
      };
    },
  };
}
