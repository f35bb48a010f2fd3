import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGooglePorts } from '../adapters/index.js';
import type { Fleet } from '../emulator/fleet.js';
import { createPubSubAlertSink } from '../adapters/pubsub.js';
import { startEmulator } from '../emulator/index.js';
import { FleetModel, MINUTE_MS } from '../emulator/model.js';
import type { AlertSink, ObservePorts } from '../ports/index.js';
import type { SimContext } from './context.js';
import { createSimPorts } from '../emulator/ports.js';

/**
 * Where one strategy's fleet runs: a fleet model in memory, or the same fleet behind the gRPC
 * emulator with the governor reading and writing through Google's clients (`viaEmulator`). Either
 * way the loop sees a model to read minutes from, a clock it moves, and the ports the governor
 * uses (none for a baseline, which nothing governs).
 */
interface Backend {
  readonly model: FleetModel;
  readonly ports: ObservePorts | null;
  /** Where the governor's alerts go: the emulator's Pub/Sub when asked (`onPublish`), else none. */
  readonly sink: AlertSink | null;
  now(): Promise<number>;
  advance(toMs: number): Promise<void>;
  close(): Promise<void>;
}

interface BackendOptions {
  fleet: Fleet;
  /** The governor runs on it: it needs ports. */
  governed: boolean;
  historyMinutes: number;
}

export async function openBackend(ctx: SimContext, o: BackendOptions): Promise<Backend> {
  if (o.governed && (ctx.options.viaEmulator ?? false)) return emulatorBackend(ctx, o);
  const model = new FleetModel(o.fleet, {
    traces: ctx.input.traces,
    historyMinutes: o.historyMinutes,
  });
  return {
    model,
    ports: o.governed ? createSimPorts(model, { lagMs: ctx.lag * MINUTE_MS }) : null,
    sink: null,
    now: async () => model.now,
    advance: async (toMs) => model.advanceTo(toMs),
    close: async () => undefined,
  };
}

/** The same fleet through the gRPC emulator: demand series go to files the emulator reads. */
async function emulatorBackend(ctx: SimContext, o: BackendOptions): Promise<Backend> {
  const cleanups: (() => Promise<void>)[] = [];
  // Every cleanup runs, whatever the one before did: a client that fails to close must not leave
  // the emulator listening (the process would never exit). The first failure is then reported.
  const close = async () => {
    const failed: unknown[] = [];
    for (const c of cleanups) await c().catch((e: unknown) => failed.push(e));
    if (failed.length > 0) throw failed[0];
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), 'governor-sim-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const files = await writeTraces(dir, ctx.input.traces);
    const emulator = await startEmulator({
      fleet: withTraceFiles(o.fleet, files),
      // The emulator reads trace files only inside this folder.
      baseDir: dir,
      speed: 'manual',
      operationDelayMs: 0,
      metricsLagMs: ctx.lag * MINUTE_MS,
      historyMinutes: o.historyMinutes,
      pageSize: 100,
      ...(ctx.options.onPublish ? { onPublish: ctx.options.onPublish } : {}),
    });
    cleanups.push(() => emulator.stop());
    const google = createGooglePorts({ emulatorHost: emulator.host });
    cleanups.unshift(() => google.close());
    const topic = ctx.policy.alerts.topic;
    const sink =
      ctx.options.onPublish && topic
        ? createPubSubAlertSink({
            topic,
            // The emulator serves Pub/Sub's publisher on its one gRPC port.
            emulatorHost: emulator.host,
          })
        : null;
    if (sink) cleanups.unshift(() => sink.close());
    return {
      model: emulator.model,
      ports: google,
      sink,
      now: async () => emulator.now().getTime(),
      advance: async (toMs) => {
        const by = toMs - emulator.now().getTime();
        if (by > 0) emulator.advance(by);
      },
      close,
    };
  } catch (e) {
    // Whatever started is stopped before the failure goes on; a cleanup's own failure does not
    // replace it.
    await close().catch(() => undefined);
    throw e;
  }
}

/** Each trace in a CSV file of its own; the file per trace key. */
async function writeTraces(
  dir: string,
  traces: ReadonlyMap<string, readonly number[]>,
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let i = 0;
  for (const [key, series] of traces) {
    const file = join(dir, `demand-${i++}.csv`);
    await writeFile(file, `value\n${series.map((v) => String(v)).join('\n')}\n`);
    files.set(key, file);
  }
  return files;
}

function withTraceFiles(fleet: Fleet, files: ReadonlyMap<string, string>): Fleet {
  return {
    ...fleet,
    projects: fleet.projects.map((p) => ({
      ...p,
      services: p.services.map((s) =>
        s.demand.trace
          ? {
              ...s,
              demand: {
                trace: {
                  ...s.demand.trace,
                  file: files.get(s.demand.trace.file) ?? s.demand.trace.file,
                },
              },
            }
          : s,
      ),
    })),
  };
}
