import type { WrittenSeries } from './custom-metrics.js';
import { z } from 'zod';
import { DEFAULT_ACCELERATOR } from '../core/pool.js';
import type { CallRecord, EmulatorContext, WriteRecord } from './context.js';
import { MAX_WAIT_SECONDS, type FaultConfig, type FaultConfigInput } from './faults.js';
import { InvariantSpec, type InvariantSpecInput, type Violation } from './invariants.js';
import {
  Accelerator,
  Annotations,
  Demand,
  FleetProject,
  FleetService,
  readTrace,
  Region,
  traceDemandFault,
} from './fleet.js';
import { type PublishedMessage } from './pubsub-store.js';
import { topicNameFault } from '../core/units.js';
import {
  decideQuotaPreference,
  MAX_PREFERRED,
  PREFERENCE_ID,
  quotaPreferences,
  seedQuotaPreference,
  type StoredPreference,
} from './quota-preferences.js';
import { CONTROL } from '../core/text.js';
import {
  effectiveMax,
  MINUTE_MS,
  revisionName,
  splitRefusal,
  revisionDeletion,
  type Refused,
  type ServiceState,
  workerPoolRevisions,
} from './model.js';
import { serviceRevisions } from './resources.js';
import { shown } from './rpc.js';
import { errorMessage } from '../core/errors.js';
import { issuesLine } from '../core/document.js';

/**
 * The control surface of a running emulator, shared by the in-process API and the HTTP admin
 * endpoint: read the state, the calls and the writes; move the clock; change demand, quotas and
 * deployments. Inputs are validated with the zod schemas below (HTTP bodies use the same ones).
 */

export class ControlError extends Error {
  override readonly name = 'ControlError';
}

const Target = {
  service: z.string().min(1),
  project: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
};

export const SetDemandInput = z.strictObject({ ...Target, demand: Demand });
export type SetDemandInput = z.input<typeof SetDemandInput>;

// The region and accelerator as the fleet file checks them: a quota entry under "../x" or a
// 5,000-character accelerator would be a pool no service can be in, answered by the Quotas API.
/** A project named in an admin call: a project id as the fleet file takes one. */
const ProjectId = FleetProject.shape.id;

export const SetQuotaInput = z.strictObject({
  project: ProjectId,
  region: Region.nullable().optional().describe('Absent or null: the regionless default entry.'),
  accelerator: Accelerator.default(DEFAULT_ACCELERATOR),
  zonalRedundancy: z.boolean().default(true),
  quota: z
    .number()
    .int()
    .min(0)
    .nullable()
    .describe('null removes the entry (the Quotas API answers NOT_FOUND).'),
});
export type SetQuotaInput = z.input<typeof SetQuotaInput>;

/** Another writer sets a worker pool's manual instance count. */
export const ScaleWorkerPoolInput = z.strictObject({
  workerPool: z.string().min(1),
  project: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  manualInstanceCount: z.number().int().min(0).max(1000),
});
export type ScaleWorkerPoolInput = z.input<typeof ScaleWorkerPoolInput>;

/** A deployment in flight of at most MAX_WAIT_SECONDS (a virtual day). */
export const DeployInput = z.strictObject({
  ...Target,
  seconds: z.number().min(0).max(MAX_WAIT_SECONDS),
  /**
   * The new revision's own max instances (`gcloud run deploy --max-instances`, the revision-level
   * max, https://cloud.google.com/run/docs/configuring/max-instances); 0: none. Absent: the one the
   * serving revision has.
   */
  revisionMaxInstances: z.number().int().min(0).max(1000).optional(),
});
export type DeployInput = z.input<typeof DeployInput>;

/** The most virtual time one `advance` may cover: 7 days. */
const MAX_ADVANCE_MS = 7 * 24 * 60 * MINUTE_MS;
/**
 * The most work one `advance` may do, in service-minutes (each minute steps every service,
 * worker pool and job): 7 days of a fleet of 100. A bigger fleet advances in shorter steps.
 */
export const MAX_ADVANCE_SERVICE_MINUTES = 7 * 24 * 60 * 100;

export const AdvanceInput = z.strictObject({
  ms: z
    .number()
    .int('expected a whole number of milliseconds')
    .positive()
    .max(MAX_ADVANCE_MS, `at most ${MAX_ADVANCE_MS} (7 days of virtual time) per advance`),
});

/** Another actor's edit of a service (a hand-set max, an annotation): bumps its etag. */
export const EditInput = z.strictObject({
  ...Target,
  maxInstances: z.number().int().min(0).max(1000).optional(),
  annotations: Annotations.optional(),
  /**
   * Deletes a retired revision of the service (its short name), as another writer may between
   * the governor's reads: NOT_FOUND when read since. As Cloud Run, refuses one that serves (a
   * share of the traffic, or a tag) or is the latest created (model.ts, deleteRefusal): another
   * writer moves the traffic away first (`previousRevision: null`, `tagPrevious: null`, a
   * deployment), then deletes.
   */
  deleteRevision: z.string().min(1).optional(),
  /**
   * The service-level scaling another writer sets without a new revision (Cloud Run's manual
   * scaling is changed "without redeploying",
   * https://cloud.google.com/run/docs/configuring/services/manual-scaling): the mode, the min
   * instances, and the manual instance count (null: unset, so a MANUAL service runs its min).
   */
  scalingMode: z.enum(['AUTOMATIC', 'MANUAL']).optional(),
  minInstances: z.number().int().min(0).max(1000).optional(),
  manualInstanceCount: z.number().int().min(0).max(1000).nullable().optional(),
  /**
   * A traffic split another writer sets without a new revision (Cloud Run's traffic management,
   * https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration): the revision before
   * the serving one keeps `percent` of the traffic by name; null: every request to the serving
   * revision again. A split changes no revision: `maxInstances` may only restate that revision's
   * own max (absent: the one it was made with; unset for one the emulator never modeled), and a
   * split to a revision made with another max, failed or deleted is refused (revisions are
   * immutable, model.ts splitRefusal). As with the fleet's `previousRevision`, the model's own cap
   * stays the serving revision's: only the API shows the split.
   */
  previousRevision: z
    .strictObject({
      maxInstances: z.number().int().min(0).max(1000).optional(),
      percent: z.number().int().min(1).max(99),
    })
    .nullable()
    .optional(),
  /**
   * A tag another writer puts on the revision before the serving one (or, before a first serving
   * revision, one the edit makes after it: model.ts, otherRevisionIndex), which keeps no traffic
   * (`gcloud run services update-traffic --set-tags`): a 0% target of its own, started, and not
   * bounded by the service-level max (https://cloud.google.com/run/docs/configuring/max-instances).
   * Its max as for `previousRevision` (revisions are immutable); refused on a service that has a
   * split or a tag already (the emulator models one of each on that revision); null: no tag.
   */
  tagPrevious: z
    .strictObject({
      tag: z
        .string()
        .regex(/^[a-z][a-z0-9-]{0,45}$/, 'a tag: lower-case letters, digits and hyphens'),
      maxInstances: z.number().int().min(0).max(1000).optional(),
    })
    .nullable()
    .optional(),
});
export type EditInput = z.input<typeof EditInput>;

/**
 * Another writer creates a GPU service (or any service) in `project`, as the fleet file describes
 * one; its max is held to the pool's quota as Cloud Run holds a deploy's ("About maximum
 * instances", https://cloud.google.com/run/docs/configuring/max-instances-limits).
 */
export const CreateServiceInput = z.strictObject({
  project: ProjectId,
  service: FleetService,
});
export type CreateServiceInput = z.input<typeof CreateServiceInput>;

/**
 * `POST /reset-calls` takes nothing: its body is empty or `{}`. Anything else (malformed JSON, a
 * key asking for a partial reset) is refused like every other route's, not read as a reset.
 */
export const ResetCallsInput = z.strictObject({});

/** Another writer deletes a service. */
export const DeleteServiceInput = z.strictObject(Target);
export type DeleteServiceInput = z.input<typeof DeleteServiceInput>;

/**
 * Google's decision on a pending quota preference (pending → granted or denied), which no Cloud
 * Quotas method makes: `name` is the preference's resource name; `grantedValue` a partial grant
 * (at most the preferred value; only with `granted`); `stateDetail` Google's words to the caller.
 */
export const DecideQuotaPreferenceInput = z.strictObject({
  // The id as CreateQuotaPreference takes it (PREFERENCE_ID: underscores too, as in Google's
  // example ids), so that every preference the API filed can be decided.
  name: z
    .string()
    .max(300)
    .regex(
      new RegExp(
        `^projects/[a-z0-9-]{1,100}/locations/global/quotaPreferences/${PREFERENCE_ID.source.slice(1, -1)}$`,
      ),
      'expected projects/PROJECT/locations/global/quotaPreferences/ID',
    ),
  decision: z.enum(['granted', 'denied']),
  grantedValue: z.number().int().min(0).max(MAX_PREFERRED).optional(),
  stateDetail: z
    .string()
    .min(1)
    .max(500)
    .refine((v) => !CONTROL.test(v), 'must be one line of text without control characters')
    .optional(),
});
export type DecideQuotaPreferenceInput = z.input<typeof DecideQuotaPreferenceInput>;

/** An int64 quota value as decimal text, at least -1 (-1 is Google's "unlimited"). */
const Int64Text = z
  .string()
  .regex(
    /^(-1|0|[1-9]\d{0,18})$/,
    'expected an integer of at least -1 as decimal text, such as "8"',
  )
  .refine((v) => BigInt(v) <= 2n ** 63n - 1n, 'is beyond the int64 range');

/**
 * A quota preference as Google may hold it, put in place without the API's checks (which a
 * preference filed by someone else, or by Google, never went through here): of another quota
 * than the fleet's GPU quotas, with values a GPU count cannot be (-1, beyond 2^53), or answered
 * without an etag (`etag: false`).
 */
export const SeedQuotaPreferenceInput = z.strictObject({
  name: DecideQuotaPreferenceInput.shape.name,
  service: z
    .string()
    .regex(
      /^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){1,4}$/,
      'expected a service such as "run.googleapis.com"',
    )
    .default('run.googleapis.com'),
  quotaId: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,100}$/, 'expected a quota id such as "CpuAllocPerProjectRegion"'),
  region: Region.optional().describe('Absent: the preference applies to every region.'),
  preferredValue: Int64Text,
  grantedValue: Int64Text.nullable().default(null),
  reconciling: z.boolean().default(false),
  etag: z.boolean().default(true).describe('false: answered without an etag.'),
  stateDetail: DecideQuotaPreferenceInput.shape.stateDetail,
});
export type SeedQuotaPreferenceInput = z.input<typeof SeedQuotaPreferenceInput>;

interface ServiceView {
  readonly project: string;
  readonly region: string;
  readonly name: string;
  readonly revision: string;
  readonly gpu: { accelerator: string; count: number; zonalRedundancy: boolean } | null;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly scalingMode: 'AUTOMATIC' | 'MANUAL';
  readonly maxInstances: number;
  readonly minInstances: number;
  readonly revisionMaxInstances: number;
  readonly effectiveMax: number;
  readonly instances: { active: number; idle: number };
  readonly demand: number;
  readonly reconciling: boolean;
  readonly etag: string;
  readonly generation: number;
  /** Since the virtual start. */
  readonly refused: Refused;
  readonly coldStartInstanceMinutes: number;
  readonly servedInstanceMinutes: number;
  readonly demandInstanceMinutes: number;
}

interface PoolView {
  readonly project: string;
  readonly region: string;
  readonly accelerator: string;
  readonly zonalRedundancy: boolean;
  readonly quota: number | null;
  readonly capsGpus: number;
  readonly serviceGpus: number;
  readonly workerPoolGpus: number;
  readonly services: readonly string[];
}

interface EmulatorState {
  readonly now: string;
  readonly clock: { mode: 'manual' } | { mode: 'real'; speed: number };
  readonly pools: readonly PoolView[];
  readonly services: readonly ServiceView[];
  readonly workerPools: readonly {
    project: string;
    region: string;
    name: string;
    gpus: number;
    accelerator: string | null;
    zonalRedundancy: boolean | null;
  }[];
}

/** Validates a control input (an HTTP body, say) against one of the schemas above. */
export function parse<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new ControlError(`bad ${what}: ${issuesLine(result.error)}`);
  return result.data;
}

export class EmulatorControl {
  /**
   * @param traces the traces already loaded, keyed by `file` as written
   * @param baseDir the fleet file's folder: trace files named later (`setDemand`) must be in it
   */
  constructor(
    private readonly ctx: EmulatorContext,
    private readonly traces: Map<string, number[]>,
    private readonly baseDir: string,
  ) {}

  now(): Date {
    return new Date(this.ctx.sync());
  }

  state(): EmulatorState {
    this.ctx.sync();
    const { model, clock } = this.ctx;
    return {
      now: this.ctx.nowIso(),
      clock:
        clock.mode.kind === 'manual'
          ? { mode: 'manual' }
          : { mode: 'real', speed: clock.mode.speed },
      pools: model.pools().map((p) => ({ ...p, quota: p.quota ?? null })),
      services: model.listServices().map((s) => this.view(s)),
      workerPools: model.listWorkerPools().map((w) => ({
        project: w.project,
        region: w.region,
        name: w.name,
        gpus: w.spec.manualInstanceCount * (w.spec.gpu?.count ?? 0),
        accelerator: w.spec.gpu?.accelerator ?? null,
        zonalRedundancy: w.spec.gpu?.zonalRedundancy ?? null,
      })),
    };
  }

  /** The writes, oldest first: the newest only, within their bounds (context.ts, `writes`). */
  writes(): readonly WriteRecord[] {
    return this.ctx.writes.list();
  }

  /** How many older write records were dropped to stay within their bounds. */
  droppedWrites(): number {
    return this.ctx.writes.dropped;
  }

  /** The call log, oldest first: the newest calls only, within its bounds (context.ts, `calls`). */
  calls(): readonly CallRecord[] {
    return this.ctx.calls.list();
  }

  /** How many older calls the call log dropped to stay within its bounds since the last reset. */
  droppedCalls(): number {
    return this.ctx.calls.dropped;
  }

  resetCalls(): void {
    this.ctx.calls.reset();
  }

  /**
   * Every custom time series written with CreateTimeSeries, its points oldest first (the newest
   * 100,000 points over all series: see custom-metrics.ts); only those of one metric type if given.
   */
  metricsWritten(type?: string): readonly WrittenSeries[] {
    return this.ctx.customMetrics.written(type);
  }

  /** How many of the oldest custom metric points were dropped to keep within the bound. */
  droppedMetricPoints(): number {
    return this.ctx.customMetrics.droppedPoints;
  }

  /** The emulator's Pub/Sub topics (`projects/P/topics/T`), sorted. */
  topics(): string[] {
    return this.ctx.pubsub.topicNames();
  }

  /** How many of the oldest published messages were dropped to keep within the store's bounds. */
  droppedPublished(): number {
    return this.ctx.pubsub.dropped;
  }

  /**
   * The messages published to the emulator's Pub/Sub that are kept (the newest 100,000, within
   * 256 MiB of data: see PubSubStore), oldest first; only `topic`'s if given.
   */
  published(topic?: string): readonly PublishedMessage[] {
    if (topic !== undefined) {
      const fault = topicNameFault(topic);
      if (fault) throw new ControlError(`bad topic: ${fault} (got "${shown(topic)}")`);
      if (!this.topics().includes(topic)) {
        const known = this.topics();
        throw new ControlError(
          `no topic ${shown(topic)} in the emulator (${known.length === 0 ? 'it has none' : `it has ${known.join(', ')}`})`,
        );
      }
    }
    return this.ctx.pubsub.published(topic);
  }

  /**
   * Moves virtual time forward (in either clock mode) and runs the minutes crossed: a whole
   * number of ms, above 0, at most {@link MAX_ADVANCE_MS} and at most
   * {@link MAX_ADVANCE_SERVICE_MINUTES} of work.
   */
  advance(ms: number): Date {
    const { ms: by } = parse(AdvanceInput, { ms }, 'advance');
    const { model } = this.ctx;
    const units = Math.max(
      1,
      model.listServices().length + model.listWorkerPools().length + model.listJobs().length,
    );
    const minutes = Math.ceil(by / MINUTE_MS);
    if (minutes * units > MAX_ADVANCE_SERVICE_MINUTES) {
      const most = Math.floor(MAX_ADVANCE_SERVICE_MINUTES / units) * MINUTE_MS;
      throw new ControlError(
        `bad advance: ms: ${by} ms runs ${minutes} minutes x ${units} services, worker pools and jobs, over the ${MAX_ADVANCE_SERVICE_MINUTES} service-minutes one advance may run; advance by at most ${most} ms at a time`,
      );
    }
    this.ctx.clock.advance(by);
    return this.now();
  }

  setDemand(input: SetDemandInput): ServiceView {
    const { service, project, region, demand } = parse(SetDemandInput, input, 'demand');
    const s = this.find(service, project, region);
    this.loadTrace(demand, 'bad demand: demand');
    this.ctx.sync();
    this.ctx.model.setDemand(s, demand);
    return this.view(s);
  }

  /**
   * Loads the trace a demand plays, if any and not loaded yet, from the fleet's folder, and checks
   * it as the fleet file's are: a demand the model could not play is refused here, before any
   * service takes it (a trace never loaded would make every later step of the model fail).
   */
  private loadTrace(demand: Demand, what: string): void {
    if (!demand.trace) return;
    if (!this.traces.has(demand.trace.file)) {
      try {
        this.traces.set(demand.trace.file, readTrace(this.baseDir, demand.trace.file));
      } catch (error) {
        // readTrace's messages name the file and the fault, never the file's contents.
        throw new ControlError(`${what}.trace.file: ${errorMessage(error)}`);
      }
    }
    const fault = traceDemandFault(demand.trace, this.traces.get(demand.trace.file) ?? []);
    if (fault) throw new ControlError(`${what}.trace: ${fault}`);
  }

  setQuota(input: SetQuotaInput): PoolView[] {
    const q = parse(SetQuotaInput, input, 'quota');
    if (!this.ctx.model.fleet.projects.some((p) => p.id === q.project)) {
      throw new ControlError(`project ${q.project} is not in the fleet`);
    }
    this.ctx.sync();
    const key = {
      project: q.project,
      region: q.region ?? undefined,
      accelerator: q.accelerator,
      zonalRedundancy: q.zonalRedundancy,
    };
    this.ctx.model.setQuota(key, q.quota ?? undefined);
    // Another writer's change, for the invariant monitor: every pool the quota entry covers.
    for (const p of this.ctx.model.pools())
      if (
        p.project === key.project &&
        (key.region === undefined || p.region === key.region) &&
        p.accelerator === key.accelerator &&
        p.zonalRedundancy === key.zonalRedundancy
      )
        this.ctx.monitor.otherActed(p, 'quota');
    return this.state().pools.filter((p) => p.project === q.project);
  }

  /** Simulates a deployment in flight for `seconds` of virtual time: the service is `reconciling`. */
  deploy(input: DeployInput): ServiceView {
    const { service, project, region, seconds, revisionMaxInstances } = parse(
      DeployInput,
      input,
      'deploy',
    );
    const s = this.find(service, project, region);
    this.ctx.sync();
    if (revisionMaxInstances !== undefined) {
      // The model's cap follows the service's revision settings at once, not when a deploy in
      // flight ends: only a deploy done at once may change them.
      if (seconds > 0)
        throw new ControlError(
          'revisionMaxInstances goes only with seconds 0: a deploy that changes the revision is made at once here',
        );
      s.revisionMaxInstances = revisionMaxInstances;
    }
    this.ctx.model.startDeployment(s, seconds * 1000);
    this.otherActed(s);
    return this.view(s);
  }

  /** The quota preferences filed so far (every project), oldest first. */
  quotaPreferences(): StoredPreference[] {
    return quotaPreferences(this.ctx.model);
  }

  /**
   * Google's decision on a pending quota preference: granted (the quota takes the granted value)
   * or denied. A preference that does not exist, or is not pending, is refused and nothing
   * changes.
   */
  decideQuotaPreference(input: DecideQuotaPreferenceInput): StoredPreference {
    const q = parse(DecideQuotaPreferenceInput, input, 'quota preference decision');
    const now = this.ctx.sync();
    const p = quotaPreferences(this.ctx.model).find((x) => x.name === q.name);
    if (!p) throw new ControlError(`no quota preference ${q.name}`);
    if (!p.reconciling)
      throw new ControlError(`quota preference ${q.name} is not pending (it was decided already)`);
    if (q.grantedValue !== undefined && q.decision !== 'granted')
      throw new ControlError('grantedValue goes only with decision "granted"');
    // -1 asks for unlimited: a grant gives a number of GPUs (the pools hold a count), any number.
    if (q.decision === 'granted' && p.preferredValue === -1 && q.grantedValue === undefined)
      throw new ControlError(
        `quota preference ${q.name} asks for unlimited (-1): grant a number of GPUs with grantedValue`,
      );
    // A seeded value beyond what a pool holds (up to int64's most): granted as it is, the quota
    // info would answer a number past 2^53, wrapped negative on the wire.
    if (
      q.decision === 'granted' &&
      q.grantedValue === undefined &&
      p.preferredValue > MAX_PREFERRED
    )
      throw new ControlError(
        `quota preference ${q.name} asks for ${p.wire?.preferredValue ?? p.preferredValue}, beyond the ${MAX_PREFERRED} GPUs a pool's quota holds here: grant a number of GPUs with grantedValue`,
      );
    if (
      q.grantedValue !== undefined &&
      p.preferredValue !== -1 &&
      q.grantedValue > p.preferredValue
    )
      throw new ControlError(
        `grantedValue ${q.grantedValue} is above the preferred value ${p.preferredValue}`,
      );
    return decideQuotaPreference(this.ctx.model, now, {
      name: q.name,
      decision: q.decision,
      ...(q.grantedValue !== undefined ? { grantedValue: q.grantedValue } : {}),
      ...(q.stateDetail !== undefined ? { stateDetail: q.stateDetail } : {}),
    });
  }

  /**
   * Puts a quota preference in place as Google may hold it (see SeedQuotaPreferenceInput). A name
   * taken, a project not in the fleet, or a quota and dimensions that already have a preference
   * are refused and nothing changes.
   */
  seedQuotaPreference(input: SeedQuotaPreferenceInput): StoredPreference {
    const q = parse(SeedQuotaPreferenceInput, input, 'quota preference seed');
    const now = this.ctx.sync();
    try {
      return seedQuotaPreference(this.ctx.model, now, q);
    } catch (error) {
      throw new ControlError(errorMessage(error));
    }
  }

  /**
   * Another actor edits a service: not a governor write, so not logged as one. Its max is not held
   * to the pool's quota (unlike createService's): tests use it to leave a pool over its quota.
   */
  edit(input: EditInput): ServiceView {
    const {
      service,
      project,
      region,
      maxInstances,
      annotations,
      deleteRevision,
      scalingMode,
      minInstances,
      manualInstanceCount,
      previousRevision,
      tagPrevious,
    } = parse(EditInput, input, 'edit');
    const s = this.find(service, project, region);
    if (deleteRevision !== undefined) {
      // Cloud Run deletes retired revisions only (model.ts, revisionDeletion; DeleteRevision
      // answers by the same rule).
      const deletion = revisionDeletion(s, deleteRevision);
      if ('missing' in deletion)
        throw new ControlError(
          `edit: "${shown(deleteRevision)}" is not a revision of ${s.name} (${
            serviceRevisions(s)
              .map((r) => r.name)
              .join(', ') || 'none'
          })`,
        );
      if ('refused' in deletion)
        throw new ControlError(`edit: FAILED_PRECONDITION: ${deletion.refused}`);
    }
    // An automatically scaled service runs "between min and max instances", and Cloud Run refuses
    // a max below the min ("max_instance_count: must be greater or equal than
    // min_instance_count", reported in goblet/goblet#287; UpdateService answers the same here);
    // a manually scaled one runs "exactly min instances and ignore[s] max instances"
    // (ServiceScaling.ScalingMode,
    // https://docs.cloud.google.com/php/docs/reference/cloud-run/latest/V2.ServiceScaling.ScalingMode).
    // Checked before anything changes: a refused edit deletes no revision either.
    const mode = scalingMode ?? s.spec.scalingMode;
    const max = maxInstances ?? s.maxInstances;
    const min = minInstances ?? s.minInstances;
    if (mode === 'AUTOMATIC' && max > 0 && min > max)
      throw new ControlError(
        `bad edit: scaling.max_instance_count (${max}) must be greater than or equal to scaling.min_instance_count (${min}) for a service scaled automatically`,
      );
    // A split or a tag moves traffic and changes no revision (model.ts, splitRefusal): neither
    // goes to one deleted, before this edit or by it.
    const deleted = [
      ...s.deletedRevisions,
      ...(deleteRevision === undefined ? [] : [deleteRevision]),
    ];
    const refused = previousRevision ? splitRefusal(s, previousRevision, deleted) : undefined;
    if (refused !== undefined) throw new ControlError(`edit: ${refused}`);
    if (tagPrevious) {
      const why =
        s.split !== null || previousRevision
          ? 'the revision before the serving one keeps a share of the traffic here: not tagged apart'
          : s.tagged !== null
            ? `${s.name} has a tagged revision already (the emulator models one)`
            : splitRefusal(s, tagPrevious, deleted);
      if (why !== undefined) throw new ControlError(`edit: ${why}`);
    }
    if (deleteRevision !== undefined) s.deletedRevisions.push(deleteRevision);
    this.ctx.sync();
    this.ctx.model.update(s, {
      ...(maxInstances === undefined ? {} : { maxInstances }),
      ...(annotations === undefined ? {} : { annotations }),
      ...(scalingMode === undefined ? {} : { scalingMode }),
      ...(minInstances === undefined ? {} : { minInstances }),
      ...(manualInstanceCount === undefined ? {} : { manualInstanceCount }),
      ...(previousRevision === undefined ? {} : { previousRevision }),
      ...(tagPrevious === undefined ? {} : { tagPrevious }),
    });
    this.otherActed(s);
    return this.view(s);
  }

  /** Another writer scales a worker pool by hand: its GPUs count in its pool from now. */
  scaleWorkerPool(input: ScaleWorkerPoolInput): { name: string; manualInstanceCount: number } {
    const { workerPool, project, region, manualInstanceCount } = parse(
      ScaleWorkerPoolInput,
      input,
      'worker pool to scale',
    );
    this.ctx.sync();
    let w;
    try {
      w = this.ctx.model.scaleWorkerPool(workerPool, manualInstanceCount, project, region);
    } catch (error) {
      throw new ControlError(errorMessage(error));
    }
    // Each revision of its instance split holds its GPUs in its own pool.
    for (const r of workerPoolRevisions(w))
      if (r.gpu)
        this.ctx.monitor.otherActed({ project: w.project, region: w.region, ...r.gpu }, 'caps');
    return { name: w.name, manualInstanceCount: w.spec.manualInstanceCount };
  }

  /** Another writer creates a service: ready at once, counted in its pool from now. */
  createService(input: CreateServiceInput): ServiceView {
    const { project, service } = parse(CreateServiceInput, input, 'service to create');
    if (!this.ctx.model.fleet.projects.some((p) => p.id === project))
      throw new ControlError(`create: project ${project} is not in the fleet`);
    this.ctx.sync();
    const model = this.ctx.model;
    if (model.getService({ project, region: service.region, name: service.name }))
      throw new ControlError(`create: ${project}/${service.region}/${service.name} exists`);
    // Cloud Run's limit of services per project and region, as the fleet file holds it
    // (MAX_RESOURCES_PER_REGION in fleet.ts, https://cloud.google.com/run/quotas).
    const limit = model.fleet.projects.find((p) => p.id === project)?.perRegionLimit;
    const held = model.listServices(project).filter((s) => s.region === service.region).length;
    if (limit !== undefined && held >= limit)
      throw new ControlError(
        `create: project ${project} already has ${held} services in ${service.region}, Cloud Run's limit per project and region (perRegionLimit: ${limit})`,
      );
    this.loadTrace(service.demand, 'bad service to create: service.demand');
    // Cloud Run holds "one service's max instances x GPUs per instance" to the regional quota at
    // deploy time (https://cloud.google.com/run/docs/configuring/max-instances-limits): the
    // service-level max and the revision template's (gcloud --max-instances) alike. Whether it
    // would let one excuse the other is not documented: each is held (fail safe).
    const gpu = service.gpu;
    const quota = gpu ? model.quotaFor({ project, region: service.region, ...gpu }) : undefined;
    for (const [what, max] of [
      ['max instances', service.maxInstances],
      ['revision max instances', service.revisionMaxInstances],
    ] as const) {
      if (gpu && quota !== undefined && max !== undefined && max * gpu.count > quota)
        throw new ControlError(
          `create: ${what} ${max} x ${gpu.count} GPUs is over the quota of ${quota}`,
        );
    }
    const s = model.addService(project, service);
    this.otherActed(s);
    return this.view(s);
  }

  /** Another writer deletes a service: gone from the lists, NOT_FOUND when read or written. */
  deleteService(input: DeleteServiceInput): { deleted: string } {
    const { service, project, region } = parse(DeleteServiceInput, input, 'service to delete');
    const s = this.find(service, project, region);
    this.ctx.sync();
    this.otherActed(s);
    this.ctx.model.removeService(s);
    return { deleted: `${s.project}/${s.region}/${s.name}` };
  }

  /** Tells the invariant monitor that another writer changed this service's pool. */
  private otherActed(s: ServiceState): void {
    const pool = this.ctx.model.poolOf(s);
    if (pool) this.ctx.monitor.otherActed(pool, 'caps');
  }

  /** Seeded fault injection (see faults.ts); replaces the whole configuration. */
  setFaults(input: FaultConfigInput): FaultConfig {
    try {
      return this.ctx.injector.configure(input);
    } catch (error) {
      throw new ControlError(errorMessage(error));
    }
  }

  /** The fault configuration, and the faults injected so far by kind. */
  faults(): { config: FaultConfig; injected: Record<string, number> } {
    return { config: this.ctx.injector.current(), injected: this.ctx.injector.injected() };
  }

  /** What the invariant monitor counts as governed, the reserve, the floors (see invariants.ts). */
  setInvariants(input: InvariantSpecInput): InvariantSpec {
    // A pool or an unmanaged service of a project the fleet does not have would never be checked,
    // silently (as a fault rule that names no method would never fire).
    const parsed = InvariantSpec.safeParse(input);
    if (parsed.success) {
      const projects = new Set(this.ctx.model.fleet.projects.map((p) => p.id));
      const unknown = [
        ...parsed.data.pools.map((p, i) => ({ where: `pools[${i}]`, project: p.project })),
        ...parsed.data.unmanaged.map((u, i) => ({ where: `unmanaged[${i}]`, project: u.project })),
      ].filter((x) => x.project !== undefined && !projects.has(x.project));
      if (unknown.length > 0)
        throw new ControlError(
          `bad invariant spec: ${unknown
            .slice(0, 5)
            .map(
              (x) =>
                `${x.where}.project: ${shown(x.project ?? '')} is not a project of the fleet (${[...projects].join(', ')})`,
            )
            .join('; ')}`,
        );
    }
    try {
      return this.ctx.monitor.configure(input);
    } catch (error) {
      throw new ControlError(errorMessage(error));
    }
  }

  /**
   * Every invariant violation so far, each with the write that caused it; and the raises another
   * writer's change took over the quota inside Cloud Run's window (races, see invariants.ts).
   */
  violations(): {
    checks: number;
    violations: readonly Violation[];
    races: readonly Violation[];
  } {
    return {
      checks: this.ctx.monitor.checks,
      violations: this.ctx.monitor.violations(),
      races: this.ctx.monitor.races(),
    };
  }

  /**
   * After a governor run: a race still over quota that the governor saw and did not try to lower
   * becomes an `uncompensated` violation (see InvariantMonitor.judgeRaces).
   */
  judgeRaces(): void {
    this.ctx.sync();
    this.ctx.monitor.judgeRaces(this.ctx.model);
  }

  private find(name: string, project?: string, region?: string): ServiceState {
    try {
      return this.ctx.model.findService(name, project, region);
    } catch (error) {
      throw new ControlError(errorMessage(error));
    }
  }

  private view(s: ServiceState): ServiceView {
    const last = this.ctx.model.history(s).at(-1);
    const held = s.instances.length;
    const active = Math.min(held, last?.active ?? 0);
    return {
      project: s.project,
      region: s.region,
      name: s.name,
      revision: revisionName(s),
      gpu: s.spec.gpu ?? null,
      labels: { ...s.labels },
      annotations: { ...s.annotations },
      scalingMode: s.spec.scalingMode,
      maxInstances: s.maxInstances,
      minInstances: s.minInstances,
      revisionMaxInstances: s.revisionMaxInstances,
      effectiveMax: effectiveMax(s),
      instances: { active, idle: held - active },
      demand: s.lastDemand,
      reconciling: this.ctx.reconciling(s),
      etag: s.etag,
      generation: s.generation,
      refused: { ...s.refused },
      coldStartInstanceMinutes: s.coldStartInstanceMinutes,
      servedInstanceMinutes: s.servedInstanceMinutes,
      demandInstanceMinutes: s.demandInstanceMinutes,
    };
  }
}
