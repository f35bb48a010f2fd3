import { http } from '@google-cloud/functions-framework';

/**
 * A function that does nothing, under the governor's entry point name: the cold-start benchmark
 * starts functions-framework on it to measure the framework's own start, the floor under the
 * governor's.
 */
http('governorHttp', (_req, res) => {
  res.status(200).json({ outcome: 'noop' });
});
