import { z } from 'zod';
import { capFaults, zodFaults } from '../core/document.js';
import type { Policy } from '../core/policy.js';
import {
  deliveryVerdict,
  parseWorkMessage,
  MAX_WORK_MESSAGE_BYTES,
  type WorkMessage,
} from '../core/work.js';
import { InputError, isInputError, errorMessage } from '../core/errors.js';
import { ERROR_EVENT, withFields, type Logger } from '../log.js';
import { dispatch, newDispatchId } from '../org/dispatch.js';
import { alertFailedDelivery, decideUnit, type UnitDecision } from '../org/unit.js';
import { ALERT_GRACE_MS, reconcile, RunFailedError } from '../reconcile/reconcile.js';
import { regionalUnitStore } from '../reconcile/unit-lease.js';
import { listOnOneLine } from '../core/text.js';
import { unitLabel } from '../core/units.js';
import {
  checkEmulatorMix,
  emulatorAsideWarnings,
  checkRunOptions,
  closeRuntime,
  createOrgRuntime,
  deadlineLeft,
  createRuntime,
  createStore,
  newRunId,
} from '../runtime.js';
import { parseRuntimeOptions, type RuntimeOptions } from '../runtime-options.js';
import {
  functionPolicy,
  logSummary,
  misconfigured,
  summaryFields,
  type Answer,
} from './handler.js';
import { decodeBase64 } from './request.js';

/**
 * The organisation-scale entry points (docs/organization.md); the single-project ones
 * (handler.ts) are unchanged.
 * - `governorDispatch` (HTTP, Cloud Scheduler): find the projects, publish one work message each.
 * - `governorUnit` (HTTP, the work topic's push subscription with an OIDC token): govern the one
 *   project a message names. Pub/Sub push acknowledges a 2xx answer and redelivers anything else
 *   (https://cloud.google.com/pubsub/docs/push#receive_push), up to the subscription's dead-letter
 *   `max_delivery_attempts`, then dead-letters it
 *   (https://cloud.google.com/pubsub/docs/handling-failures#dead_letter_topic). So: a run that
 *   failed answers 500 (retried, then dead-lettered); a message that can never succeed (malformed,
 *   hostile, stale, a project the policy does not govern) answers 204 and is logged, the unit not
 *   run; a stale redelivery alerts its failed deliveries first, and answers 500 when that alert
 *   could not be published (alertStaleRedelivery). A failed delivery that was, or may be, the
 *   last (the push's `deliveryAttempt` against GOVERNOR_MAX_DELIVERY_ATTEMPTS; core/work.ts) is
 *   alerted before the 500 (org/unit.ts alertFailedDelivery).
 */

/**
 * The deployment's configuration, or the misconfiguration's 500 (one error event). `runs`: the
 * entry runs the governor, so the options must let a run start (runtime.ts checkRunOptions); a
 * dispatch takes no time from the emulator and reads no Cloud Run.
 */
function setup(
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  runs: boolean,
): { options: RuntimeOptions; policy: Policy } | Answer {
  try {
    const options = parseRuntimeOptions(env);
    // A dispatch runs nothing, so needs no clock, but its discovery from the emulator must not
    // reach Google's Pub/Sub or Firestore either.
    if (runs) checkRunOptions(options);
    else checkEmulatorMix(options);
    return { options, policy: functionPolicy(options) };
  } catch (e) {
    if (!isInputError(e)) throw e;
    return misconfigured(log, e.message);
  }
}

/**
 * The dispatch takes no request: the policy decides what its units do. Its body is empty or `{}`
 * (the module's scheduler job sends `{}`); anything else (`{"mode": "dry-run"}`) is refused, not
 * read as nothing, so that it cannot start the enforcing dispatch its caller did not ask for.
 */
const DispatchRequest = z.strictObject({});

/**
 * How long the dispatch's search may take: at most 60 s of the dispatch's 120 s timeout
 * (terraform/organization/function.tf), the rest for the kept discovery, its save and the
 * messages; less when the run deadline is shorter. A search still running then counts as failed
 * and the kept result is used (src/org/discover.ts), where the function's timeout would end the
 * request with no message sent and no line logged, and a discovery whose search always takes
 * longer would never be found again.
 */
const DISPATCH_SEARCH_MS = 60_000;

function dispatchSearchMs(options: Pick<RuntimeOptions, 'runDeadlineMs'>): number {
  return Math.min(DISPATCH_SEARCH_MS, options.runDeadlineMs);
}

/**
 * How long the dispatch may take to send its work messages, after its search's bound: at most
 * 40 s (less when the run deadline is shorter), so 100 s of the 120 s timeout at most, the rest
 * to close its clients and answer. Pub/Sub's client retries a publish that gets no answer for up
 * to 600 s (`Publish` in @google-cloud/pubsub's publisher_client_config.json): unbounded, a topic
 * that does not answer would have the function's timeout end the request with no line logged and
 * no error event. Past it the dispatch fails (500), saying so; the next one sends every unit again.
 */
const DISPATCH_SEND_MS = 40_000;

function dispatchSendMs(options: Pick<RuntimeOptions, 'runDeadlineMs'>): number {
  return dispatchSearchMs(options) + Math.min(DISPATCH_SEND_MS, options.runDeadlineMs);
}

/**
 * `receivedAt`: when the request arrived, on the time elapsed (performance.now()). The search and
 * send deadlines count from it, not from here: Cloud Run's request timeout counts from the arrival
 * (https://cloud.google.com/run/docs/configuring/request-timeout), so loading this code on a cold
 * instance and reading the policy come out of it, as they do of a run's deadline (deadlineLeft).
 * They are times of the time elapsed, read on it (org/dispatch.ts): the timeout counts in real
 * time, and a wall clock stepping back during the dispatch would otherwise have its search and its
 * sends wait past it, the request then ended with no message sent, no line logged and no alert.
 * The wall clock dates what others read: the dispatch's id, its messages' `issuedAt`, and the age
 * of the kept discovery.
 */
export async function handleDispatch(
  body: unknown,
  env: Readonly<Record<string, string | undefined>>,
  requestLog: Logger,
  receivedAt = performance.now(),
): Promise<Answer> {
  const request = DispatchRequest.safeParse(
    body === undefined || body === null || body === '' ? {} : body,
  );
  if (!request.success) {
    return {
      status: 400,
      body: {
        error:
          'governorDispatch takes no request: its body must be empty or {} (the policy decides what the units do); nothing was dispatched',
        faults: capFaults(zodFaults(request.error), 5),
      },
    };
  }
  // Every line of the dispatch carries its id, from the first (org/dispatch.ts).
  const nowMs = Date.now();
  const dispatchId = newDispatchId(nowMs);
  const log = withFields(requestLog, { dispatchId });
  const ready = setup(env, log, false);
  if ('status' in ready) return ready;
  const { options, policy } = ready;
  if (!policy.fanout) return misconfigured(log, 'the policy has no fanout.topic to dispatch to');
  let org: Awaited<ReturnType<typeof createOrgRuntime>>;
  try {
    org = await createOrgRuntime(policy, options);
  } catch (e) {
    // A client that cannot be built (a bug, or a library refusing its settings): the dispatch failed, and
    // its line and answer carry its id as every other of its lines does, with the stack for Error
    // Reporting (https://cloud.google.com/error-reporting/docs/formatting-error-messages).
    const message = listOnOneLine(errorMessage(e));
    log.log('ERROR', `dispatch failed: its clients could not be built: ${message}`, {
      ...ERROR_EVENT,
      ...(e instanceof Error && e.stack ? { stack_trace: e.stack } : {}),
    });
    return { status: 500, body: { dispatchId, error: `dispatch failed: ${message}` } };
  }
  for (const line of emulatorAsideWarnings(options, "the dispatch's work messages"))
    log.log('WARNING', line);
  try {
    if (!org.publisher) throw new Error('no work topic');
    const report = await dispatch(policy, {
      search: org.search,
      cache: org.store,
      publisher: org.publisher,
      nowMs,
      clock: Date.now,
      elapsedClock: () => performance.now(),
      log,
      dispatchId,
      searchDeadline: receivedAt + dispatchSearchMs(options),
      sendDeadline: receivedAt + dispatchSendMs(options),
    });
    return { status: report.failed.length > 0 ? 500 : 200, body: { ...report } };
  } catch (e) {
    const message = errorMessage(e);
    log.log('ERROR', `dispatch failed: ${message}`, ERROR_EVENT);
    return { status: 500, body: { dispatchId, error: `dispatch failed: ${message}` } };
  } finally {
    // A client failing to close is a WARNING, never thrown over the dispatch's answer.
    await closeRuntime(org, log);
  }
}

/** The largest int32: `delivery_attempt` in google/pubsub/v1/pubsub.proto is one. */
const INT32_MAX = 2 ** 31 - 1;

/** The push request's body: https://cloud.google.com/pubsub/docs/push#receive_push */
const PushEnvelope = z.object({
  message: z.object({
    data: z.string().max(Math.ceil(MAX_WORK_MESSAGE_BYTES / 3) * 4 + 4),
    messageId: z.string().max(200).optional(),
    attributes: z.record(z.string(), z.string()).optional(),
  }),
  // Not read, so not capped (the body is, at MAX_BODY_BYTES): a cap shorter than Google's names
  // would acknowledge a real push unread. A subscription id may have 255 characters
  // (https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names), a project id 30
  // (https://cloud.google.com/resource-manager/docs/creating-managing-projects): 309 in all.
  subscription: z.string().optional(),
  // Present when the subscription has a dead-letter policy (0 when it has none); Google's emulator
  // never sends it (core/work.ts). Not capped at MAX_DELIVERY_ATTEMPTS: Pub/Sub honours
  // max_delivery_attempts "on a best effort basis"
  // (DeadLetterPolicy: https://cloud.google.com/python/docs/reference/pubsub/2.15.1/google.cloud.pubsub_v1.types.DeadLetterPolicy),
  // so a delivery may come past it, even past 100; it is a failed last delivery, not a malformed
  // request to acknowledge. The proto's `int32 delivery_attempt` bounds it.
  deliveryAttempt: z.number().int().min(0).max(INT32_MAX).optional(),
});

/**
 * The unit's run records a stale redelivery reads for a run that succeeded since its message was
 * issued: more than a unit runs in the 38 minutes a message takes to go stale while redelivered (a
 * dispatch every 5 minutes, each delivery a run).
 */
const STALE_RUNS_READ = 50;

/**
 * A stale redelivery of a work message: `governor.degraded` (reason delivery, `deadLettered`
 * false) in its unit's state, when the message was one the policy governs as it was issued (its
 * project, its region), then nothing else: the unit is not run. A message past `staleAfter` with
 * deliveries that failed before it would otherwise be acknowledged in silence: with the module's
 * defaults a unit whose runs reach their deadline gets its fifth delivery about 38 minutes after
 * the dispatch (4 × 270 s of runs, 83 + 166 + 332 + 600 s of backoff, which Pub/Sub doubles from
 * the minimum to the maximum: "Retry delay will be exponential based on provided minimum and
 * maximum backoffs", RetryPolicy,
 * https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions#retrypolicy), past
 * the 30 minutes of `staleAfter`. Nothing is alerted when a run of the unit succeeded since the
 * message was issued (a newer dispatch's governed it). Always closes `store`.
 *
 * Returns whether the message may be acknowledged: not when the alert could not be published or
 * anything here failed (logged, not thrown). The unit then answers 500, so Pub/Sub delivers it
 * again (stale again: the alert is tried again) and, at `max_delivery_attempts`, dead-letters it,
 * which the module's alert policy watches
 * (https://cloud.google.com/pubsub/docs/handling-failures#dead_letter_topic): the failures are
 * never acknowledged in silence.
 */
async function alertStaleRedelivery(
  policy: Policy,
  options: RuntimeOptions,
  message: WorkMessage,
  store: Awaited<ReturnType<typeof createStore>>,
  log: Logger,
  delivery: { attempt: number; messageId: string | null; why: string },
): Promise<boolean> {
  let runtime: Awaited<ReturnType<typeof createRuntime>> | null = null;
  // The runtime takes the store over (and closes it, even when it fails to start).
  let handedOver = false;
  try {
    // Checked as when it was issued: a project or region the policy does not govern alerts nothing.
    const then = await decideUnit(policy, message, {
      cache: store,
      nowMs: Date.parse(message.issuedAt),
    });
    if (then.kind !== 'govern') {
      log.log('INFO', `a stale work message alerts nothing: ${then.reason}`);
      return true;
    }
    handedOver = true;
    const unit = await unitRuntime(then, options, log, store);
    runtime = unit.runtime;
    const unitStore = unit.deps.store;
    const { region } = then;
    // A run of the unit that succeeded since the message was issued (a newer dispatch's) governed
    // it: the failures are behind it, and the stale message is a no-op, whatever ran after that
    // run (one that failed, or found the lease held by this message's own redelivery). The
    // records come newest first; past the ones read, a success is not looked for: the alert is
    // sent (fail safe).
    const issued = Date.parse(message.issuedAt);
    const recent = await unitStore.listRuns(message.project, STALE_RUNS_READ);
    const governed = recent.find((r) => r.outcome === 'ok' && Date.parse(r.startedAt) > issued);
    if (governed) {
      log.log(
        'INFO',
        `unit ${unitLabel(message)}: a stale redelivery alerts nothing: run ${governed.runId} succeeded since the message was issued`,
      );
      return true;
    }
    const nowMs = await runtime.now().catch(() => Date.now());
    const alerted = await alertFailedDelivery(
      then.policy,
      {
        store: unitStore,
        sink: runtime.sink,
        log,
        nowMs,
        runId: newRunId(Date.now()),
        timeoutMs: ALERT_GRACE_MS,
      },
      {
        project: message.project,
        ...(region === undefined ? {} : { region }),
        verdict: {
          kind: 'stale',
          attempt: delivery.attempt,
          maxAttempts: options.maxDeliveryAttempts,
        },
        cause: `${delivery.why}; it is acknowledged, not dead-lettered (the next dispatch sends the unit again)`,
        messageId: delivery.messageId,
        dispatchId: message.dispatchId,
      },
    );
    return alerted.outcome !== 'unpublished';
  } catch (e) {
    // Why, in a line of its own; the failure's one error event is the caller's (handleUnitPush).
    log.log(
      'ERROR',
      `unit ${unitLabel(message)}: a stale redelivery could not be alerted: ${listOnOneLine(errorMessage(e))}`,
    );
    return false;
  } finally {
    if (!handedOver) await closeStore(store, message, log);
    if (runtime) await closeRuntime(runtime, log);
  }
}

/**
 * The runtime of a unit the decision governs, over the store the decision read, and the deps its
 * run and alerts use: a regional unit keeps its state under its own key
 * (src/reconcile/unit-lease.ts) and looks at the project's other regional units as the decision
 * found them. The runtime takes the store over (and closes it, even when it fails to start).
 */
async function unitRuntime(
  decision: Extract<UnitDecision, { kind: 'govern' }>,
  options: RuntimeOptions,
  log: Logger,
  store: Awaited<ReturnType<typeof createStore>>,
) {
  // The kept discovery the decision read is not handed on: the lease reads it again once granted
  // (src/reconcile/unit-lease.ts), as a dispatch may have split the project since.
  const runtime = await createRuntime(decision.policy, options, log, { store });
  const { region } = decision;
  const deps =
    region === undefined
      ? runtime
      : { ...runtime, store: regionalUnitStore(runtime.store, region, decision.siblings) };
  return { runtime, deps };
}

/** Closes a unit's state store; a failure to close it is told, never thrown over the answer. */
async function closeStore(
  store: Awaited<ReturnType<typeof createStore>> | undefined,
  message: WorkMessage,
  log: Logger,
): Promise<void> {
  await store
    ?.close()
    .catch((closing: unknown) =>
      log.log(
        'WARNING',
        `unit ${unitLabel(message)}: closing the state store failed: ${listOnOneLine(errorMessage(closing))}`,
      ),
    );
}

/** A message that can never succeed: acknowledged (204) so it is not redelivered, and logged. */
function drop(log: Logger, why: string, fields: Record<string, unknown> = {}): Answer {
  log.log('ERROR', `ignored a work message: ${why}`, fields);
  return { status: 204, body: {} };
}

/**
 * `receivedAt`: when the push arrived, on the time elapsed (performance.now(): runtime.ts
 * deadlineLeft), which no step of the wall clock moves. The run deadline counts from it, not from the
 * run's start: the module sets the deadline 30 s short of the function's timeout so that the unit
 * ends its run, alerts a failed last delivery and answers before Cloud Run ends the request
 * (https://cloud.google.com/run/docs/configuring/request-timeout), and the time spent checking
 * the message (the kept discovery read from the state store) comes out of it.
 */
export async function handleUnitPush(
  body: unknown,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  receivedAt = performance.now(),
): Promise<Answer> {
  const envelope = PushEnvelope.safeParse(body);
  if (!envelope.success) {
    return drop(log, 'not a Pub/Sub push request', {
      faults: capFaults(zodFaults(envelope.error), 5),
    });
  }
  let message: WorkMessage;
  try {
    const bytes = decodeBase64(envelope.data.message.data);
    if (bytes === null) return drop(log, 'its data is not base64');
    message = parseWorkMessage(bytes);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return drop(log, e.message, { faults: e.faults });
  }
  // From here every line names the message's unit and dispatch, as its run's lines do: one filter
  // finds all that a dispatch caused, a message refused or failed included.
  const unitLog = withFields(log, {
    project: message.project,
    ...(message.region === undefined ? {} : { region: message.region }),
    dispatchId: message.dispatchId,
  });
  const ready = setup(env, unitLog, true);
  if ('status' in ready) return ready;
  const { options, policy } = ready;
  // One store for the decision and the run: the runtime takes it over (and closes it). A store
  // that cannot be opened or read (the kept discovery unreadable, the database unreachable) is
  // not the message's fault: one line says why, and the 500 has Pub/Sub deliver it again (the
  // store may be mended by then; after max_delivery_attempts the dead-letter alert fires).
  // Nothing was checked, so nothing is governed, written or alerted for the project it names.
  let store;
  let decision;
  try {
    store = await createStore(options.stateStore);
    decision = await decideUnit(policy, message, { cache: store, nowMs: Date.now() });
  } catch (e) {
    const unit = `unit ${unitLabel(message)}`;
    const cause = listOnOneLine(errorMessage(e));
    const why = `${unit}: the work message could not be checked: ${cause}`;
    // A failure (500): one error event, its message opening with the same words for every unit
    // (and saying them once).
    unitLog.log('ERROR', `a work message could not be checked: ${unit}: ${cause}`, ERROR_EVENT);
    // The store is closed all the same; a failure to close it is told, not thrown over the 500.
    await closeStore(store, message, unitLog);
    return { status: 500, body: { error: why } };
  }
  // (Only one issued in the past: one from the future is acknowledged at its first delivery, so
  // Pub/Sub never delivers it again.) Read on the wall clock: `issuedAt` is the dispatch's stamp,
  // another machine's, and no wait is bounded by it.
  if (
    decision.kind === 'stale' &&
    (envelope.data.deliveryAttempt ?? 0) >= 2 &&
    Date.parse(message.issuedAt) < Date.now()
  ) {
    // A redelivery: the deliveries before it failed (Pub/Sub redelivers only what was not
    // acknowledged: https://cloud.google.com/pubsub/docs/push). Acknowledged as stale, the message
    // reaches neither its last delivery nor the dead-letter topic, so its failures are alerted
    // here first (alertStaleRedelivery). Without a deliveryAttempt the first failure was alerted
    // already (fail safe: deliveryVerdict).
    const acknowledge = await alertStaleRedelivery(policy, options, message, store, unitLog, {
      attempt: envelope.data.deliveryAttempt ?? 0,
      messageId: envelope.data.message.messageId ?? null,
      why: decision.why,
    });
    if (!acknowledge) {
      // Why is told by alertStaleRedelivery's lines; the 500 has Pub/Sub deliver it again. A
      // failure (500): one error event, its message opening with the same words for every unit
      // (ERROR_EVENT in log.ts), whether the alert's publish failed or anything before it.
      const what = 'a stale redelivery could not be alerted';
      const later = 'so it is not acknowledged (Pub/Sub delivers it again, then dead-letters it)';
      unitLog.log('ERROR', `${what}: unit ${unitLabel(message)}, ${later}`, ERROR_EVENT);
      return { status: 500, body: { error: `unit ${unitLabel(message)}: ${what}, ${later}` } };
    }
    return drop(unitLog, decision.reason);
  }
  if (decision.kind !== 'govern') {
    // Acknowledged whatever the store does: a failure to close it is told, not thrown over the 204
    // (a 500 would have Pub/Sub deliver the refused message again until it is dead-lettered).
    await closeStore(store, message, unitLog);
    return drop(unitLog, decision.reason);
  }
  const runId = newRunId(Date.now());
  const { region } = decision;
  const unit = unitLabel(message);
  const delivery = {
    messageId: envelope.data.message.messageId ?? null,
    attempt: envelope.data.deliveryAttempt ?? null,
  };
  const fields = {
    project: message.project,
    ...(region === undefined ? {} : { region }),
    dispatchId: message.dispatchId,
    delivery,
  };
  // Every line of the unit's run carries its id, its project (and region) and its dispatch.
  const runLog = withFields(unitLog, { runId });
  const { runtime, deps } = await unitRuntime(decision, options, runLog, store);
  // A failed run answers 500, so Pub/Sub delivers the message again; on what is, or may be, its
  // last delivery the unit alerts first (see alertFailedDelivery), in the unit's own state.
  const failedDelivery = async (cause: string): Promise<void> => {
    const verdict = deliveryVerdict(envelope.data.deliveryAttempt, options.maxDeliveryAttempts);
    if (verdict.kind === 'retried') return;
    const nowMs = await runtime.now().catch(() => Date.now());
    await alertFailedDelivery(
      decision.policy,
      { ...deps, nowMs, runId, timeoutMs: ALERT_GRACE_MS },
      {
        project: message.project,
        ...(region === undefined ? {} : { region }),
        verdict,
        cause,
        ...delivery,
        dispatchId: message.dispatchId,
      },
    );
  };
  try {
    const report = await reconcile(decision.policy, deps, {
      runId,
      // None left: no lease is taken and the run fails at once (500).
      deadlineMs: deadlineLeft(options.runDeadlineMs, receivedAt),
      writerId: options.governorId,
      // Its project-wide alerts and its `unit/*` metrics name the unit's region; a project the
      // fan-out governs whole takes back what a split of it left, however short.
      ...(region === undefined ? {} : { region }),
      ...(decision.wholeNow ? { wholeNow: true } : {}),
    });
    const failed = report.outcome === 'failed' || report.outcome === 'lease-held';
    logSummary(runLog, `unit ${unit} ${runId}`, report, { ...fields, ...summaryFields(report) });
    if (failed) await failedDelivery(report.error ?? report.outcome);
    return { status: failed ? 500 : 200, body: { ...fields, ...summaryFields(report) } };
  } catch (e) {
    if (e instanceof RunFailedError) {
      // The run logged its error event (reconcile/run.ts logRunFailed): its summary stays below
      // ERROR.
      runLog.log('WARNING', `unit ${unit} ${runId}: failed`, {
        ...fields,
        ...summaryFields(e.report),
      });
      await failedDelivery(e.report.error ?? e.message);
      return { status: 500, body: { ...fields, ...summaryFields(e.report), error: e.message } };
    }
    // Unexpected (a bug): alerted like any failure, then reported by the entry point as such.
    await failedDelivery(errorMessage(e));
    throw e;
  } finally {
    await closeRuntime(runtime, runLog);
  }
}
