import { z } from 'zod';
import { capFaults, zodFaults } from '../core/document.js';
import { NO_PROJECTS, parsePolicyText, type Policy } from '../core/policy.js';
import { renderProblem } from '../core/problems.js';
import { writtenShort } from '../core/write-result.js';
import { cutText, InputError, isInputError, type Fault } from '../core/errors.js';
import { ERROR_EVENT, withFields, type Logger } from '../log.js';
import {
  reconcile,
  RunFailedError,
  runFailedMessage,
  type RunReport,
} from '../reconcile/reconcile.js';
import { skipsByCause } from '../reconcile/run-record.js';
import {
  checkRunOptions,
  closeRuntime,
  createRuntime,
  deadlineLeft,
  newRunId,
} from '../runtime.js';
import { parseRuntimeOptions, type RuntimeOptions } from '../runtime-options.js';

/**
 * The Cloud Function's one job, apart from its two entry points: check the request, run the same
 * reconcile as `governor apply --yes`, and answer with a short JSON summary. 200: the run
 * completed; 400: a bad request, nothing done; 403: the request asks for what the policy does not
 * allow (`function.allow`), nothing done; 500: the run failed, another governor held the lease
 * (after the run asked a few times and alerted), or the deployment is misconfigured. Cloud
 * Scheduler retries any answer outside 2xx as its retry config says (the module: once), 4xx
 * included ("acknowledged by means of an HTTP response code in the range [200 - 299]",
 * https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#HttpTarget).
 */

/** What a trigger may ask, where the policy allows it; an empty body is a normal run. */
export const Payload = z.strictObject({
  mode: z
    .enum(['enforce', 'dry-run'])
    .optional()
    .describe("Overrides the policy's mode for this run."),
  restore: z.boolean().optional().describe('Put governed services back to their pre-governor max.'),
});
export type Payload = z.infer<typeof Payload>;

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** The function's policy: GOVERNOR_POLICY, parsed with every run (it is small). */
export function functionPolicy(options: Pick<RuntimeOptions, 'policyText'>): Policy {
  const text = options.policyText;
  if (!text) throw new InputError('GOVERNOR_POLICY is not set: the function has no policy', []);
  // A path where the text belongs ("/workspace/policy.yaml") is a YAML string, which the schema
  // would refuse as "expected object, received string": say what the variable holds instead.
  const line = text.trim();
  if (!/[\n:{}[\]]/.test(line) && /[/\\]|\.(ya?ml|json)$/i.test(line)) {
    throw new InputError('GOVERNOR_POLICY is invalid', [
      {
        path: '',
        message: `it holds what looks like a file name (${JSON.stringify(cutText(line, 100))}): it must hold the policy itself, as YAML or JSON text`,
      },
    ]);
  }
  return parsePolicyText(text, 'GOVERNOR_POLICY');
}

export function parsePayload(raw: unknown): Payload {
  const body = raw === undefined || raw === null || raw === '' ? {} : raw;
  const result = Payload.safeParse(body);
  // The body is someone else's: its faults are capped before they go into an answer or a log.
  if (!result.success) throw new InputError('bad request body', capFaults(zodFaults(result.error)));
  return result.data;
}

/**
 * What the request asks that the policy does not let it ask: each field that would change the
 * run (a mode other than the policy's, a restore) needs its `function.allow` permission.
 */
export function refusedOverrides(payload: Payload, policy: Policy): Fault[] {
  const allow = policy.function.allow;
  const faults: Fault[] = [];
  if (payload.mode === 'dry-run' && policy.mode !== 'dry-run' && !allow.dryRun) {
    faults.push({
      path: 'mode',
      message:
        'the policy enforces and does not let a request ask for a dry run (function.allow.dryRun)',
    });
  }
  if (payload.mode === 'enforce' && policy.mode !== 'enforce' && !allow.enforce) {
    faults.push({
      path: 'mode',
      message:
        'the policy is a dry run and does not let a request ask to enforce (function.allow.enforce)',
    });
  }
  if (payload.restore && !allow.restore) {
    faults.push({
      path: 'restore',
      message: 'the policy does not let a request ask for a restore (function.allow.restore)',
    });
  }
  return faults;
}

/** One run; `env` is the process's environment, parsed here once (src/runtime-options.ts). */
/**
 * The answer to a request the deployment cannot serve as configured: a 500 saying what is wrong,
 * and, since a deployment that cannot run is a failure for on-call, one error event.
 */
export function misconfigured(log: Logger, why: string): Answer {
  log.log('ERROR', `misconfigured: ${why}`, ERROR_EVENT);
  return { status: 500, body: { error: `misconfigured: ${why}` } };
}

/**
 * `receivedAt`: when the request arrived, on the time elapsed (performance.now(): runtime.ts
 * deadlineLeft), which no step of the wall clock moves. The run deadline counts from it, not from
 * the run's start: Cloud Run's request timeout counts from the request's arrival
 * (https://cloud.google.com/run/docs/configuring/request-timeout), and the module sets the
 * deadline at least 15 s short of it so that the run publishes and answers in time; loading the
 * run's code on a cold start and opening the clients come out of it.
 */
export async function handle(
  rawPayload: unknown,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  receivedAt = performance.now(),
): Promise<Answer> {
  let payload: Payload;
  try {
    payload = parsePayload(rawPayload);
  } catch (e) {
    if (e instanceof InputError)
      return { status: 400, body: { error: e.message, faults: e.faults } };
    throw e;
  }
  let options: RuntimeOptions;
  let policy: Policy;
  try {
    options = parseRuntimeOptions(env);
    checkRunOptions(options);
    policy = functionPolicy(options);
    // A policy that finds its projects by discovery is for governorDispatch / governorUnit.
    if (policy.projects.length === 0)
      throw new InputError('GOVERNOR_POLICY lists no project for this entry point', [
        { path: 'projects', message: NO_PROJECTS },
      ]);
  } catch (e) {
    if (!isInputError(e)) throw e;
    return misconfigured(log, e.message);
  }
  const refused = refusedOverrides(payload, policy);
  if (refused.length > 0) {
    return {
      status: 403,
      body: {
        error: 'the policy does not allow what the request asks; nothing was done',
        faults: refused,
      },
    };
  }
  // Every line of the run carries its id, as its run record and its alerts do.
  const runId = newRunId(Date.now());
  const runLog = withFields(log, { runId });
  const runtime = await createRuntime(policy, options, runLog);
  try {
    const report = await reconcile(policy, runtime, {
      runId,
      // None left: no lease is taken and the run fails at once (500).
      deadlineMs: deadlineLeft(options.runDeadlineMs, receivedAt),
      writerId: options.governorId,
      ...(payload.mode ? { mode: payload.mode } : {}),
      ...(payload.restore ? { restore: true } : {}),
    });
    logSummary(runLog, `run ${runId}`, report, summaryFields(report));
    const failed = report.outcome === 'failed' || report.outcome === 'lease-held';
    return { status: failed ? 500 : 200, body: summaryFields(report) };
  } catch (e) {
    if (e instanceof RunFailedError) {
      // The run logged its error event (reconcile/run.ts logRunFailed): its summary stays below
      // ERROR.
      runLog.log('WARNING', `run ${runId}: failed`, summaryFields(e.report));
      return { status: 500, body: { ...summaryFields(e.report), error: e.message } };
    }
    throw e;
  } finally {
    await closeRuntime(runtime, runLog);
  }
}

/**
 * The summary line of a run that returned: INFO, or, for a run that did not do its work (writes
 * failed, another governor held a lease), the failure's one error event (ERROR_EVENT in log.ts).
 */
export function logSummary(
  log: Logger,
  what: string,
  report: RunReport,
  fields: Record<string, unknown>,
): void {
  if (report.outcome !== 'failed' && report.outcome !== 'lease-held') {
    log.log('INFO', `${what}: ${report.outcome}`, fields);
    return;
  }
  const why =
    report.error ??
    (report.outcome === 'lease-held'
      ? `another governor holds the lease of ${report.leaseHeld.map((h) => h.project).join(', ')}`
      : report.outcome);
  log.log('ERROR', runFailedMessage(why, report.runId), { ...fields, ...ERROR_EVENT });
}

export function summaryFields(r: RunReport): Record<string, unknown> {
  const count = (o: string) => r.writes.filter((w) => w.outcome === o).length;
  return {
    runId: r.runId,
    mode: r.mode,
    outcome: r.outcome,
    written: count('written'),
    skipped: count('skipped'),
    failed: count('failed'),
    // Writes not made, by cause (no-room, etag, …), and raises lowered back in the same run.
    notWrittenByCause: skipsByCause(r.writes),
    compensated: r.writes.filter((w) => w.cause === 'compensated').length,
    fenced: r.writes.filter((w) => w.cause === 'fenced').length,
    // Written at a cap below the planned one (room ran short): counted in `written` as well.
    writtenShort: r.writes.filter(writtenShort).length,
    deferred: r.plan?.deferred.length ?? 0,
    alertsPublished: r.published,
    misconfigured: new Set(r.findings.map((f) => `${f.project}/${f.region}/${f.service}`)).size,
    leaseHeld: r.leaseHeld,
    problems: r.problems.map(renderProblem),
    error: r.error,
  };
}
