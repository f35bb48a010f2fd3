import { relative } from 'node:path';
import { InputError } from '../errors.js';
import { plan } from '../core/planner.js';
import { observe } from '../observe/observe.js';
import { createGooglePorts } from '../adapters/index.js';
import { FleetError, startEmulator, type RunningEmulator } from '../emulator/index.js';
import { loadPolicy } from './io.js';
import type { Io } from './main.js';
import { colorsFor, renderPlan } from './render.js';

async function start(options: Parameters<typeof startEmulator>[0]): Promise<RunningEmulator> {
  try {
    return await startEmulator(options);
  } catch (e) {
    // A bad fleet file is bad input (exit 2), like a bad policy.
    if (e instanceof FleetError) throw new InputError(e.message, [], { cause: e });
    throw e;
  }
}

/** `governor emulator`: runs until SIGINT/SIGTERM, after printing the variables to export. */
export async function runEmulatorCommand(
  opts: { fleet: string; port?: number; adminPort?: number; speed: number | 'manual' },
  io: Io,
): Promise<void> {
  const emulator = await start({
    fleet: opts.fleet,
    speed: opts.speed,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.adminPort !== undefined ? { adminPort: opts.adminPort } : {}),
  });
  io.stdout.write(
    `# Emulator of Cloud Run Admin v2, Monitoring v3 and Cloud Quotas v1 (fleet ${relative(process.cwd(), opts.fleet) || opts.fleet})\n`,
  );
  io.stdout.write(`# virtual time ${emulator.now().toISOString()}, speed ${opts.speed}\n`);
  for (const [k, v] of Object.entries(emulator.env)) io.stdout.write(`export ${k}=${v}\n`);
  io.stdout.write('# Ctrl-C stops it.\n');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await emulator.stop();
}

/** `governor demo` (npm start): the emulator in this process, one observation and plan. */
export async function runDemo(opts: { fleet: string; policy: string }, io: Io): Promise<void> {
  const policy = await loadPolicy(opts.policy);
  const emulator = await start({ fleet: opts.fleet, speed: 'manual' });
  const env = { ...io.env, ...emulator.env };
  const ports = createGooglePorts(env);
  try {
    io.stdout.write(
      `Emulator of Cloud Run, Monitoring and Cloud Quotas on 127.0.0.1:${emulator.port} (fleet ${relative(process.cwd(), opts.fleet) || opts.fleet}), virtual time ${emulator.now().toISOString()}\n`,
    );
    const observation = await observe(policy, ports, emulator.now().getTime());
    for (const problem of observation.problems) io.stderr.write(`warning: ${problem}\n`);
    const calls = emulator.calls();
    io.stdout.write(
      `Observed ${observation.snapshot.services.length} GPU services in ${observation.snapshot.pools.length} pools with ${calls.length} API calls.\n\n`,
    );
    const result = plan(observation.snapshot, policy, observation.snapshot.takenAt);
    io.stdout.write(renderPlan(result, colorsFor(io.stdout, io.env)));
  } finally {
    await ports.close();
    await emulator.stop();
  }
}
