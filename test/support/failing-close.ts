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
