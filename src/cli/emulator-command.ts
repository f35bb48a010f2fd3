import { relative } from 'node:path';
import { InputError } from '../errors.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Alert } from '../core/alert.js';
import type { AlertSink } from '../ports/index.js';
import { textLogger } from '../log.js';
import { reconcile } from '../reconcile/reconcile.js';
import { createFileStateStore } from '../adapters/file-store.js';
import { summary } from './apply-command.js';
import { createGooglePorts } from '../adapters/index.js';
import {
  FleetError,
  startEmulator,
  type PublishedMessage,
  type RunningEmulator,
} from '../emulator/index.js';
import { loadPolicy } from './files.js';
import type { Streams } from './io.js';
import type { RuntimeOptions } from '../runtime-options.js';
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

/** Control characters (newlines, terminal escapes) of published text shown as spaces. */
function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** What a message says, for one line: an alert's `summary` when the data is one, else the data. */
function gist(m: PublishedMessage): string {
  if (m.data === null) return `(${Buffer.from(m.dataBase64, 'base64').length} bytes, not UTF-8)`;
  if (m.data.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(m.data);
    } catch {
      // Not JSON after all: shown as text below.
      parsed = undefined;
    }
    if (typeof parsed === 'object' && parsed !== null && 'summary' in parsed) {
      if (typeof parsed.summary === 'string') return oneLine(parsed.summary, 200);
    }
  }
  return oneLine(m.data, 200);
}

/** One published message as one line of the `governor emulator` terminal. */
export function describePublished(m: PublishedMessage): string {
  const attributes = Object.entries(m.attributes);
  const shown = attributes
    .slice(0, 8)
    .map(([k, v]) => `${oneLine(k, 40)}=${oneLine(v, 60)}`)
    .join(' ');
  const more = attributes.length > 8 ? ` +${attributes.length - 8} attributes` : '';
  const key = m.orderingKey === '' ? '' : ` key=${oneLine(m.orderingKey, 80)}`;
  return `${m.publishTime} published ${m.topic} #${m.messageId}${key}${shown === '' ? '' : ` ${shown}`}${more}: ${gist(m)}\n`;
}

/** `governor emulator`: runs until SIGINT/SIGTERM, after printing the variables to export. */
export async function runEmulatorCommand(
  opts: { fleet: string; port?: number; adminPort?: number; speed: number | 'manual' },
  io: Streams,
): Promise<number> {
  const emulator = await start({
    fleet: opts.fleet,
    speed: opts.speed,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.adminPort !== undefined ? { adminPort: opts.adminPort } : {}),
    onPublish: (m) => io.stdout.write(describePublished(m)),
  });
  io.stdout.write(
    `# Emulator of Cloud Run Admin v2, Monitoring v3, Cloud Quotas v1 and Pub/Sub (publisher) (fleet ${relative(process.cwd(), opts.fleet) || opts.fleet})\n`,
  );
  io.stdout.write(`# virtual time ${emulator.now().toISOString()}, speed ${opts.speed}\n`);
  const topics = emulator.topics();
  io.stdout.write(
    `# Pub/Sub topics: ${topics.length === 0 ? 'none (list them under `topics:` in the fleet file, or create them with CreateTopic)' : topics.join(', ')}; each message published is printed below, and listed by GET /published on the admin endpoint\n`,
  );
  for (const [k, v] of Object.entries(emulator.env)) io.stdout.write(`export ${k}=${v}\n`);
  io.stdout.write('# Ctrl-C stops it.\n');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await emulator.stop();
  return 0;
}

/** `governor demo` (npm start): the emulator in this process, and the governor run on it. */
export async function runDemo(
  opts: { fleet: string; policy: string; cycles: number; every: number },
  io: Streams,
  options: RuntimeOptions,
): Promise<number> {
  const policy = await loadPolicy(opts.policy);
  const emulator = await start({ fleet: opts.fleet, speed: 'manual', operationDelayMs: 100 });
  const ports = createGooglePorts({ emulatorHost: emulator.host });
  const store = createFileStateStore({ dir: await mkdtemp(join(tmpdir(), 'governor-demo-')) });
  const c = colorsFor(io.stdout, options);
  // No Pub/Sub here: the alerts a run would publish are printed instead.
  const sink: AlertSink = {
    publish: (messages) => {
      for (const m of messages) {
        const a = m.data as Alert;
        io.stdout.write(`  alert ${a.status.padEnd(8)} ${a.type.padEnd(20)} ${a.summary}\n`);
      }
      return Promise.resolve(
        messages.map((m, i) => ({ messageId: `demo-${i}`, orderingKey: m.orderingKey })),
      );
    },
  };
  try {
    io.stdout.write(
      `Emulator of Cloud Run, Monitoring and Cloud Quotas on 127.0.0.1:${emulator.port} (fleet ${relative(process.cwd(), opts.fleet) || opts.fleet}).\n` +
        `The governor observes it through Google's own clients, plans, writes and alerts, every ${opts.every} virtual minutes.\n`,
    );
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      io.stdout.write(`\n${c.bold(`── run ${cycle} at ${emulator.now().toISOString()} ──`)}\n\n`);
      const report = await reconcile(
        { ...policy, limits: { ...policy.limits, writesPerMinute: 6000 } },
        {
          ports,
          store,
          sink,
          log: textLogger(io.stderr, 'ERROR'),
          now: () => Promise.resolve(emulator.now().getTime()),
          sleep: async () => {},
        },
        { runId: `demo-${cycle}`, deadlineMs: 120_000, mode: 'enforce' },
      );
      if (report.plan && cycle === 1) {
        io.stdout.write(renderPlan(report.plan, c));
        const findings = report.findings.filter((f) => f.severity === 'required');
        io.stdout.write(
          `\nFleet audit: ${findings.length} required rule(s) broken (governor audit lists them all)\n`,
        );
        for (const f of findings)
          io.stdout.write(`  ${c.red('✗')} ${f.service}  ${f.rule}: ${f.problem}\n`);
      } else
        for (const w of report.writes)
          io.stdout.write(
            `  ~ ${w.name}  ${w.from} → ${w.written ?? w.from}  ${w.outcome === 'written' ? w.reason : `${w.outcome}: ${w.reason}`}\n`,
          );
      io.stdout.write(`\n${summary(report)}\n`);
      emulator.advance(opts.every * 60_000);
    }
    // Rule 1 as the emulator saw it: once a pool is within its quota, no write takes it over.
    const within = new Set<string>();
    let broke = 0;
    for (const w of emulator.writes()) {
      if (!w.pool || w.pool.quota === null) continue;
      const key = `${w.pool.project}/${w.pool.region}/${w.pool.accelerator}/${w.pool.zonalRedundancy}`;
      const total = w.pool.capsGpus + w.pool.workerPoolGpus;
      if (total <= w.pool.quota) within.add(key);
      else if (within.has(key)) broke += 1;
    }
    io.stdout.write(
      `\n${emulator.writes().length} writes in all. ${broke === 0 ? 'No write took a pool over its quota once it was within it.' : `${broke} writes took a pool back over its quota.`}\n`,
    );
  } finally {
    await Promise.all([ports.close(), store.close()]);
    await emulator.stop();
  }
  return 0;
}
