import { createRequire } from 'node:module';
import { writeHeapSnapshot } from 'node:v8';

/**
 * Loaded into the function's process by the memory benchmark, the soak (and into the emulator's
 * there) and the lazy-loading test (`node
 * --expose-gc --import dist/bench/function-probe.js ...`): answers messages on the IPC channel, so
 * that the function itself has nothing to serve. It imports nothing of the governor.
 *
 *   → { type: 'memory' }    ← { type: 'memory', cpuMicros, peakRssBytes, heapUsedBytes, ...,
 *                                activeResources }
 *   → { type: 'modules' }   ← { type: 'modules', modules: [file of each CommonJS module loaded] }
 *   → { type: 'snapshot' }  ← { type: 'snapshot', file } (a heap snapshot written in the working
 *                                directory, after a full garbage collection)
 *
 * `heapUsedBytes` is measured after a full garbage collection: what the process still holds.
 * `peakRssBytes` is the resident set's high-water mark since the process started (getrusage).
 */

interface MemoryAnswer {
  type: 'memory';
  cpuMicros: number;
  peakRssBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** `process.getActiveResourcesInfo()` counted by kind: sockets, timers, handles still open. */
  activeResources: Record<string, number>;
  /** The gRPC channels not yet closed, by target (grpc-js's channelz registry); none before it is loaded. */
  grpcChannels: Record<string, number>;
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the probe needs node --expose-gc');
  // Twice: objects with finalizers and weak references are freed by the second pass.
  gc();
  gc();
}

/**
 * What keeps the event loop busy, by kind (TCPSocketWrap, Timeout, FSReqCallback, …), the probe's
 * own IPC channel included (one PipeWrap).
 */
function countResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** Google's libraries are CommonJS: every one loaded, by `import` too, is in this cache. */
const loaded = createRequire(import.meta.url).cache;

interface Channelz {
  getChannelzHandlers(): {
    GetTopChannels(
      call: { request: { start_channel_id: number; max_results: number } },
      callback: (error: Error | null, answer?: { channel: { ref: { name: string } }[] }) => void,
    ): void;
  };
}

/**
 * The gRPC channels grpc-js has not closed, counted by target, from its channelz registry (every
 * channel is registered there until it is closed). grpc-js is taken from the module cache, as the
 * process loaded it: the probe loads nothing itself (the lazy-loading test counts what is loaded).
 */
async function openChannels(): Promise<Record<string, number>> {
  const file = Object.keys(loaded).find((f) =>
    /[\\/]@grpc[\\/]grpc-js[\\/]build[\\/]src[\\/]index\.js$/.test(f),
  );
  const grpc = file ? (loaded[file]?.exports as Channelz | undefined) : undefined;
  if (!grpc?.getChannelzHandlers) return {};
  const names = await new Promise<string[]>((resolve, reject) =>
    grpc
      .getChannelzHandlers()
      .GetTopChannels(
        { request: { start_channel_id: 0, max_results: 100_000 } },
        (error, answer) =>
          error ? reject(error) : resolve((answer?.channel ?? []).map((c) => c.ref.name)),
      ),
  );
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

if (process.send) {
  process.on('message', async (message: unknown) => {
    if (typeof message !== 'object' || message === null || !('type' in message)) return;
    if (message.type === 'modules') {
      process.send?.({ type: 'modules', modules: Object.keys(loaded) });
      return;
    }
    if (message.type === 'snapshot') {
      collect();
      process.send?.({ type: 'snapshot', file: writeHeapSnapshot() });
      return;
    }
    if (message.type !== 'memory') return;
    const grpcChannels = await openChannels();
    const cpu = process.cpuUsage();
    collect();
    const m = process.memoryUsage();
    const answer: MemoryAnswer = {
      type: 'memory',
      cpuMicros: cpu.user + cpu.system,
      // ru_maxrss, which Node gives in kibibytes.
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      heapTotalBytes: m.heapTotal,
      externalBytes: m.external,
      arrayBuffersBytes: m.arrayBuffers,
      activeResources: countResources(),
      grpcChannels,
    };
    process.send?.(answer);
  });
  // The channel must not keep the function alive once it is told to stop.
  process.channel?.unref();
}
