import { z } from 'zod';
import { InputError } from '../core/errors.js';
import {
  FleetError,
  MAX_TRACE_SPAN_MINUTES,
  readTraceText,
  traceArrivalMs,
} from '../emulator/fleet.js';

/**
 * The trace demand model: LLM inference request arrivals (the Azure LLM inference traces: one row
 * per request with its context and generated tokens) → GPU instances wanted per minute.
 *
 * Each request occupies one of an instance's concurrent slots for its service time:
 *
 *   service time = overhead + context tokens × prefill time per token
 *                           + generated tokens × decode time per token
 *
 * The mean number of requests in flight during a minute is the sum of every request's overlap with
 * that minute divided by 60 s; dividing by the per-instance concurrency gives the instances wanted
 * that minute (fractional: the fleet model runs whole instances, rounding up). docs/simulation.md
 * explains the defaults.
 */

export interface TraceRequest {
  /** Arrival, ms from the first arrival of the trace. */
  atMs: number;
  contextTokens: number;
  generatedTokens: number;
}

export const ServiceTimeModel = z.strictObject({
  overheadMs: z.number().min(0).default(50).describe('Fixed time per request (queueing, network).'),
  prefillMsPerToken: z
    .number()
    .min(0)
    .default(0.25)
    .describe('Prefill time per context token (about 4,000 tokens/s on one L4).'),
  decodeMsPerToken: z
    .number()
    .min(0)
    .default(30)
    .describe('Decode time per generated token of one sequence (about 33 tokens/s).'),
  concurrency: z
    .number()
    .min(0.001)
    .default(4)
    .describe('Requests one instance serves at once (its batch, Cloud Run concurrency).'),
});
export type ServiceTimeModel = z.infer<typeof ServiceTimeModel>;

const DEFAULT_SERVICE_TIME: ServiceTimeModel = ServiceTimeModel.parse({});

/**
 * A token count of a trace row, or NaN: decimal digits, spaces around them allowed. `Number`
 * alone reads an empty cell (a row cut short) as 0 and "0x10" as 16.
 */
function tokenCount(cell: string): number {
  const text = cell.trim();
  return /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
}

/** Parses an Azure LLM trace CSV (TIMESTAMP, ContextTokens, GeneratedTokens). */
export function parseAzureTrace(text: string, source = 'trace'): TraceRequest[] {
  // The non-blank lines, each with its line number in the file (errors name that one).
  const lines = text
    .split(/\r?\n/)
    .map((line, i) => ({ text: line, number: i + 1 }))
    .filter((l) => l.text.trim() !== '');
  const header = (lines[0]?.text ?? '').split(',').map((h) => h.trim().toLowerCase());
  const expected = ['timestamp', 'contexttokens', 'generatedtokens'];
  if (expected.some((h, i) => header[i] !== h)) {
    throw new InputError(`${source} is not an Azure LLM trace`, [
      {
        path: 'line 1',
        // Never the line itself: an error must not show a file's contents.
        message: `expected the header ${expected.join(',')}`,
      },
    ]);
  }
  const rows: { ms: number; ctx: number; gen: number }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const [stamp = '', ctx = '', gen = ''] = (line?.text ?? '').split(',');
    const ms = traceArrivalMs(stamp);
    const c = tokenCount(ctx);
    const g = tokenCount(gen);
    if (Number.isNaN(ms) || !Number.isFinite(c) || !Number.isFinite(g)) {
      throw new InputError(`${source} has a bad row`, [
        {
          path: `line ${line?.number ?? i + 1}`,
          message: 'expected a TIMESTAMP and two token counts of 0 or more, in decimal',
        },
      ]);
    }
    rows.push({ ms, ctx: c, gen: g });
  }
  if (rows.length === 0) throw new InputError(`${source} has no requests`, []);
  // A loop, not Math.min(...rows): a trace has up to millions of rows, more than a call's
  // arguments may be.
  let first = Infinity;
  let last = -Infinity;
  for (const r of rows) {
    first = Math.min(first, r.ms);
    last = Math.max(last, r.ms);
  }
  if (last - first >= MAX_TRACE_SPAN_MINUTES * 60_000) {
    throw new InputError(`${source} spans too long`, [
      {
        path: '',
        message: `its requests span ${Math.round((last - first) / 86_400_000)} days; a trace may span at most 31 (it is played minute by minute)`,
      },
    ]);
  }
  return rows
    .map((r) => ({ atMs: r.ms - first, contextTokens: r.ctx, generatedTokens: r.gen }))
    .sort((a, b) => a.atMs - b.atMs);
}

/**
 * Reads a scenario's trace `file`, confined to `baseDir` (the scenario file's folder) as a fleet
 * file's traces are (emulator/fleet.ts, readTraceText): a scenario from someone else must not read,
 * or quote, a file elsewhere.
 */
export function readAzureTrace(baseDir: string, file: string): Promise<TraceRequest[]> {
  let text: string;
  try {
    text = readTraceText(baseDir, file);
  } catch (e) {
    if (e instanceof FleetError) return Promise.reject(new InputError(e.message, [], { cause: e }));
    throw e;
  }
  return Promise.resolve(parseAzureTrace(text, `trace ${file}`));
}

function serviceTimeMs(r: TraceRequest, model: ServiceTimeModel): number {
  return (
    model.overheadMs +
    r.contextTokens * model.prefillMsPerToken +
    r.generatedTokens * model.decodeMsPerToken
  );
}

/**
 * Mean requests in flight per minute, minute 0 starting at the first arrival. The series covers
 * every minute in which an arrival happened (work spilling past the last arrival minute is cut, so
 * the series can be looped).
 *
 * A request adds its overlap with its first and its last minute, and a whole minute to each one
 * between, counted once as a span (a running count of the requests in flight through whole
 * minutes): the time taken grows with the rows and the minutes, not with how long each request
 * runs. A walk over every minute of every request cost rows × minutes: a trace of requests of
 * weeks (a huge token count, a large `decodeMsPerToken`) ran for minutes per service.
 */
export function concurrencyPerMinute(
  requests: readonly TraceRequest[],
  model: ServiceTimeModel,
): number[] {
  let lastMs = 0;
  for (const r of requests) lastMs = Math.max(lastMs, r.atMs);
  const minutes = Math.floor(lastMs / 60_000) + 1;
  const busy = new Array<number>(minutes).fill(0);
  // +1 where a run of whole minutes in flight starts, −1 after it ends.
  const whole = new Array<number>(minutes + 1).fill(0);
  for (const r of requests) {
    const start = r.atMs;
    const end = Math.min(start + serviceTimeMs(r, model), minutes * 60_000);
    if (!(end > start)) continue;
    const first = Math.floor(start / 60_000);
    const last = Math.ceil(end / 60_000) - 1;
    if (first === last) {
      busy[first] = (busy[first] ?? 0) + (end - start);
      continue;
    }
    busy[first] = (busy[first] ?? 0) + ((first + 1) * 60_000 - start);
    busy[last] = (busy[last] ?? 0) + (end - last * 60_000);
    whole[first + 1] = (whole[first + 1] ?? 0) + 1;
    whole[last] = (whole[last] ?? 0) - 1;
  }
  let inFlight = 0;
  return busy.map((ms, m) => {
    inFlight += whole[m] ?? 0;
    return (ms + inFlight * 60_000) / 60_000;
  });
}

/** Instances wanted per minute: requests in flight ÷ per-instance concurrency. */
export function instancesPerMinute(
  requests: readonly TraceRequest[],
  model: ServiceTimeModel = DEFAULT_SERVICE_TIME,
): number[] {
  return concurrencyPerMinute(requests, model).map((c) => c / model.concurrency);
}
