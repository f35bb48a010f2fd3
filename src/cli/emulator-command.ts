import { relative } from 'node:path';
import { cutText, InputError, UsageError } from '../core/errors.js';
import { oneLine } from '../core/text.js';
import {
  FleetError,
  MAX_CLOCK_SPEED,
  startEmulator,
  type PublishedMessage,
  type RunningEmulator,
} from '../emulator/index.js';
import type { Streams } from './io.js';

async function start(options: Parameters<typeof startEmulator>[0]): Promise<RunningEmulator> {
  try {
    return await startEmulator(options);
  } catch (e) {
    // A bad fleet file is bad input (exit 2), like a bad policy.
    if (e instanceof FleetError) throw new InputError(e.message, [], { cause: e });
    throw e;
  }
}

/** Published text on one line (newlines, terminal escapes as spaces), cut to `max` characters. */
function shortLine(text: string, max: number): string {
  return cutText(oneLine(text), max);
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
      if (typeof parsed.summary === 'string') return shortLine(parsed.summary, 200);
    }
  }
  return shortLine(m.data, 200);
}

/** One published message as one line of the `governor emulator` terminal. */
function describePublished(m: PublishedMessage): string {
  const attributes = Object.entries(m.attributes);
  const shown = attributes
    .slice(0, 8)
    .map(([k, v]) => `${shortLine(k, 40)}=${shortLine(v, 60)}`)
    .join(' ');
  const more = attributes.length > 8 ? ` +${attributes.length - 8} attributes` : '';
  const key = m.orderingKey === '' ? '' : ` key=${shortLine(m.orderingKey, 80)}`;
  return `${m.publishTime} published ${m.topic} #${m.messageId}${key}${shown === '' ? '' : ` ${shown}`}${more}: ${gist(m)}\n`;
}

/** `governor emulator`: runs until SIGINT/SIGTERM, after printing the variables to export. */
export async function runEmulatorCommand(
  opts: { fleet: string; port?: number; adminPort?: number; speed: number | 'manual' },
  io: Streams,
): Promise<number> {
  if (opts.speed !== 'manual' && opts.speed > MAX_CLOCK_SPEED) {
    throw new UsageError(
      `--speed ${opts.speed}: at most ${MAX_CLOCK_SPEED} (a virtual day a second); the emulator plays every virtual minute and would never catch up`,
    );
  }
  // One port for both: the second listener found it taken by the first and blamed "another
  // emulator", which the user then looked for in vain.
  if (opts.port !== undefined && opts.port !== 0 && opts.port === opts.adminPort) {
    throw new UsageError(
      `--port and --admin-port are both ${opts.port}: the gRPC and admin endpoints each need a port of their own (leave one out for a free port)`,
    );
  }
  const emulator = await start({
    fleet: opts.fleet,
    speed: opts.speed,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.adminPort !== undefined ? { adminPort: opts.adminPort } : {}),
    onPublish: (m) => io.stdout.write(describePublished(m)),
  });
  io.stdout.write(
    `# Emulator of Cloud Run Admin v2, Cloud Monitoring v3, Cloud Quotas v1, Cloud Asset Inventory v1 and Pub/Sub (publisher) (fleet ${oneLine(relative(process.cwd(), opts.fleet) || opts.fleet)})\n`,
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
