import { parseCpu, parseMemory } from '../core/quantity.js';
import type { ObservedContainer } from '../core/service.js';
import type { Gpu } from './fleet.js';
import {
  jobExecutions,
  revisionName,
  nameOf,
  revisionOf,
  trafficByName,
  type ExecutionState,
  type JobState,
  type ServiceState,
  type WorkerPoolState,
  workerPoolRevisions,
  type WorkerPoolRevision,
} from './model.js';
import { timestamp, type Message } from './rpc.js';

/** Model state rendered as Cloud Run Admin API v2 resources (snake_case, as in the protos). */

function serviceResourceName(s: { project: string; region: string; name: string }): string {
  return `projects/${s.project}/locations/${s.region}/services/${s.name}`;
}

function workerPoolResourceName(w: { project: string; region: string; name: string }): string {
  return `projects/${w.project}/locations/${w.region}/workerPools/${w.name}`;
}

function uid(name: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < name.length; i++) {
    a = Math.imul(a ^ name.charCodeAt(i), 16777619) >>> 0;
    b = Math.imul(b ^ name.charCodeAt(i), 2246822519) >>> 0;
  }
  const hex = (a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0')).repeat(2);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function startupProbe(seconds: number | undefined): Message | undefined {
  if (seconds === undefined) return undefined;
  const period = Math.min(10, seconds);
  return {
    tcp_socket: { port: 8080 },
    period_seconds: period,
    timeout_seconds: period,
    failure_threshold: Math.ceil(seconds / period),
  };
}

/** The containers of one revision of the service, with that revision's GPU (absent: none). */
function containers(s: ServiceState, gpu: Gpu | undefined): Message[] {
  const spec = s.spec;
  const limits: Record<string, string> = {
    cpu: spec.cpu ?? (gpu ? '8' : '1'),
    memory: spec.memory ?? (gpu ? '32Gi' : '512Mi'),
  };
  if (gpu) limits['nvidia.com/gpu'] = String(gpu.count);
  const main: Message = {
    name: s.name,
    image: spec.image ?? `us-docker.pkg.dev/${s.project}/models/${s.name}:latest`,
    resources: { limits, cpu_idle: spec.cpuIdle ?? !gpu, startup_cpu_boost: gpu !== undefined },
    ports: [{ name: 'http1', container_port: 8080 }],
  };
  const probe = startupProbe(spec.startupProbeSeconds);
  if (probe) main['startup_probe'] = probe;
  const sidecars = spec.sidecars.map((c) => ({
    name: c.name,
    image: c.image,
    resources: {
      limits: {
        cpu: c.cpu,
        memory: c.memory,
        ...(c.gpus > 0 ? { 'nvidia.com/gpu': String(c.gpus) } : {}),
      },
      cpu_idle: spec.cpuIdle ?? !gpu,
    },
  }));
  return [main, ...sidecars];
}

/**
 * The container facts the governor reads from Cloud Run (`ObservedService.containers` and
 * `concurrency`), straight from the model, as the Cloud Run adapter maps `serviceResource`: for
 * in-memory ports (the simulator) that skip the gRPC round trip.
 */
export function observedContainerFacts(
  s: ServiceState,
  gpu: Gpu | undefined = templateOf(s).gpu,
): {
  containers: ObservedContainer[];
  concurrency: number | null;
} {
  const spec = s.spec;
  const cpuIdle = spec.cpuIdle ?? !gpu;
  const seconds = spec.startupProbeSeconds;
  const period = seconds === undefined ? 0 : Math.min(10, seconds);
  const main = {
    name: s.name,
    cpu: spec.cpu ?? (gpu ? '8' : '1'),
    memory: spec.memory ?? (gpu ? '32Gi' : '512Mi'),
    gpus: gpu?.count ?? 0,
    startupProbe:
      seconds === undefined
        ? null
        : {
            periodSeconds: period,
            failureThreshold: Math.ceil(seconds / period),
            initialDelaySeconds: 0,
            timeoutSeconds: period,
          },
  };
  const all = [main, ...spec.sidecars.map((c) => ({ ...c, startupProbe: null }))];
  return {
    containers: all.map((c) => ({
      name: c.name,
      cpu: c.cpu,
      vcpus: parseCpu(c.cpu),
      memory: c.memory,
      memoryBytes: parseMemory(c.memory),
      gpuLimit: c.gpus > 0 ? String(c.gpus) : null,
      gpus: c.gpus,
      cpuIdle,
      startupProbe: c.startupProbe,
    })),
    concurrency: spec.concurrency > 0 ? spec.concurrency : null,
  };
}

const LATEST = 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST';
const REVISION = 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION';

/** One revision of a service the emulator models, with its place in the service's traffic. */
interface RevisionState {
  /** Short name (`{service}-{index}-{suffix}`). */
  name: string;
  /**
   * serving: the revision whose instances the model runs; new: a later one, the latest created,
   * deployed without traffic (`noTrafficRevision`, or a deployment while traffic is pinned by
   * name) or failed; previous: another one keeping a share of the traffic (`previousRevision`:
   * the one before the serving one, or the latest created where an edit made it, model.ts
   * otherRevisionIndex);
   * tagged: an older one without traffic whose tag stays (a `noTrafficRevision` with `tag`, after
   * a later deployment); retired: every other, without traffic or tag, which Cloud Run keeps (up to
   * 1000 a service, https://cloud.google.com/run/docs/managing/revisions) until it is deleted.
   */
  role: 'serving' | 'new' | 'previous' | 'tagged' | 'retired';
  /** Its own `scaling.max_instance_count`; 0: unset. */
  maxInstances: number;
  /** Its own `scaling.min_instance_count`. */
  minInstances: number;
  ready: boolean;
  /** Virtual time it was made at (its Ready condition's last transition). */
  madeAt: number;
  /** Its share of the traffic, by name (0 for a revision without traffic). */
  percent: number;
  /** A tag of its own (a 0% target). */
  tag?: string;
  /**
   * Its own GPU (absent: none). A revision is "an immutable snapshot of code and configuration",
   * with its own `node_selector`, containers and `gpu_zonal_redundancy_disabled`
   * (google/cloud/run/v2/revision.proto): what it was made with (model.ts, RevisionRecord).
   */
  gpu?: Gpu;
}

/**
 * The revisions of a service the emulator models, each as it was made, less those another writer
 * deleted (`edit` with `deleteRevision`): an older one keeping part of a split, the serving one,
 * an older tagged one without traffic, a newer one deployed without traffic or failed, and the
 * retired ones.
 */
export function serviceRevisions(s: ServiceState): RevisionState[] {
  const out: RevisionState[] = [];
  const add = (index: number, role: RevisionState['role'], percent: number) => {
    const r = revisionOf(s, index);
    if (r === undefined) return;
    const tag = s.tagged?.index === index ? s.tagged.tag : undefined;
    out.push({
      name: nameOf(s, index),
      role,
      maxInstances: r.maxInstances,
      minInstances: r.minInstances,
      ready: !r.failed,
      madeAt: r.madeAt,
      percent,
      ...(tag === undefined ? {} : { tag }),
      ...(r.gpu ? { gpu: r.gpu } : {}),
    });
  };
  const split = s.split;
  if (split) add(split.index, 'previous', split.percent);
  // A split's older revision that is deleted is gone from the traffic: the serving one takes it
  // all, as the service's traffic shows. (Another writer's edit cannot delete one that serves:
  // model.ts, deleteRefusal; a state built by hand may hold one.)
  const kept = out.find((r) => !s.deletedRevisions.includes(r.name))?.percent ?? 0;
  add(s.revisionIndex, 'serving', 100 - kept);
  const tagged = s.tagged?.index;
  if (tagged !== undefined && tagged !== s.revisionIndex && tagged !== s.latestIndex)
    add(tagged, 'tagged', 0);
  if (s.latestIndex !== s.revisionIndex && s.latestIndex !== split?.index)
    add(s.latestIndex, 'new', 0);
  // The retired ones, newest first.
  const placed = new Set([split?.index, s.revisionIndex, tagged, s.latestIndex]);
  for (const r of [...s.revisions].sort((a, b) => b.index - a.index))
    if (!placed.has(r.index)) add(r.index, 'retired', 0);
  return out.filter((r) => !s.deletedRevisions.includes(r.name));
}

/**
 * The latest created revision among `revs` (those of {@link serviceRevisions}): a newer one
 * without traffic, one an edit made for a split, or the serving one.
 */
export function latestRevision(
  s: ServiceState,
  revs: readonly RevisionState[],
): RevisionState | undefined {
  const name = nameOf(s, s.latestIndex);
  return revs.find((r) => r.name === name) ?? revs.find((r) => r.role === 'serving');
}

/**
 * The service's template, as GetService shows it and the in-memory ports read it (ports.ts): the
 * latest created revision's own min, max (0: unset) and GPU, whatever serves (else the serving
 * one's, else the service's). Service.template is "The template used to create revisions for this
 * Service" (google/cloud/run/v2/service.proto), so after `gcloud run deploy --no-traffic` (or an
 * edit's split that made the latest revision) it is that revision's. Read from the revisions'
 * records (as {@link latestRevision} finds it among {@link serviceRevisions}, without listing
 * them all: a service keeps up to 1000).
 */
export function templateOf(s: ServiceState): {
  minInstances: number;
  maxInstances: number;
  gpu: Gpu | undefined;
} {
  const live = (index: number) =>
    s.deletedRevisions.includes(nameOf(s, index)) ? undefined : revisionOf(s, index);
  const latest = live(s.latestIndex) ?? live(s.revisionIndex);
  return latest
    ? { minInstances: latest.minInstances, maxInstances: latest.maxInstances, gpu: latest.gpu }
    : {
        minInstances: s.revisionMinInstances,
        maxInstances: s.revisionMaxInstances,
        gpu: s.spec.gpu,
      };
}

/** A revision's or template's GPU fields: its accelerator and zonal redundancy (none without one). */
function gpuFields(gpu: Gpu | undefined): Message {
  return gpu
    ? {
        node_selector: { accelerator: gpu.accelerator },
        gpu_zonal_redundancy_disabled: !gpu.zonalRedundancy,
      }
    : {};
}

/**
 * A revision as `GetRevision` answers it: its name, service, own scaling, readiness, and its own
 * GPU (node selector, containers' limits, zonal redundancy).
 */
export function revisionResource(s: ServiceState, r: RevisionState): Message {
  const service = serviceResourceName(s);
  const name = `${service}/revisions/${r.name}`;
  const state = r.ready ? 'CONDITION_SUCCEEDED' : 'CONDITION_FAILED';
  return {
    containers: containers(s, r.gpu),
    ...gpuFields(r.gpu),
    name,
    uid: uid(name),
    generation: '1',
    service,
    scaling: {
      min_instance_count: r.minInstances,
      max_instance_count: r.maxInstances,
    },
    conditions: [{ type: 'Ready', state, last_transition_time: timestamp(r.madeAt) }],
    reconciling: false,
    observed_generation: '1',
    etag: `"${uid(name).slice(0, 8)}"`,
  };
}

export function serviceResource(
  s: ServiceState,
  reconciling: boolean,
  transitionMs: number,
): Message {
  const name = serviceResourceName(s);
  const revs = serviceRevisions(s);
  const latest = latestRevision(s, revs);
  const readyLatest = latest?.ready ? latest : revs.find((r) => r.role === 'serving');
  const revisionPath = (r: string) => `${name}/revisions/${r}`;
  const previous = revs.find((r) => r.role === 'previous');
  const serving = revisionName(s);
  // Traffic: LATEST (the latest ready) unless pinned by name (a revision deployed without traffic,
  // or a split with an older revision).
  const byName = trafficByName(s);
  const traffic: Message[] = byName
    ? [
        ...(previous
          ? [{ type: REVISION, percent: previous.percent, revision: previous.name }]
          : []),
        { type: REVISION, percent: 100 - (previous?.percent ?? 0), revision: serving },
      ]
    : [{ type: LATEST, percent: 100 }];
  const tagged = revs.find((r) => r.percent === 0 && r.ready && r.tag !== undefined);
  if (tagged) traffic.push({ type: REVISION, percent: 0, revision: tagged.name, tag: tagged.tag });
  const trafficStatuses: Message[] = traffic.map((t) =>
    t['type'] === LATEST ? { ...t, revision: serving } : t,
  );
  // The template describes the latest created revision, with its own GPU and its own scaling (min
  // and max): Service.template is "The template used to create revisions for this Service"
  // (google/cloud/run/v2/service.proto), so after `gcloud run deploy --no-traffic` it is the new
  // revision's, whatever the revision that keeps the traffic holds.
  const own = templateOf(s);
  const gpu = own.gpu;
  const template: Message = {
    labels: {},
    annotations: {},
    scaling: {
      min_instance_count: own.minInstances,
      max_instance_count: own.maxInstances,
    },
    timeout: { seconds: '300' },
    service_account: runtimeServiceAccount(s.project),
    containers: containers(s, gpu),
    execution_environment: 'EXECUTION_ENVIRONMENT_GEN2',
    max_instance_request_concurrency: s.spec.concurrency,
  };
  Object.assign(template, gpuFields(gpu));
  const scaling: Message = {
    min_instance_count: s.minInstances,
    scaling_mode: s.spec.scalingMode,
    max_instance_count: s.maxInstances,
  };
  if (s.spec.manualInstanceCount !== undefined)
    scaling['manual_instance_count'] = s.spec.manualInstanceCount;
  const ready = {
    type: 'Ready',
    state: reconciling ? 'CONDITION_RECONCILING' : 'CONDITION_SUCCEEDED',
    last_transition_time: timestamp(transitionMs),
  };
  const hash = uid(name).slice(0, 10).replace(/-/g, '');
  return {
    name,
    // A service created again under a deleted one's name is a new resource, with a uid of its
    // own (`incarnation` in model.ts).
    uid: uid(s.incarnation === 0 ? name : `${name}@${s.incarnation}`),
    generation: String(s.generation),
    labels: { ...s.labels },
    annotations: { ...s.annotations },
    create_time: timestamp(s.createTime),
    update_time: timestamp(s.updateTime),
    creator: `deployer@${s.project}.iam.gserviceaccount.com`,
    last_modifier: `deployer@${s.project}.iam.gserviceaccount.com`,
    launch_stage: 'GA',
    template,
    traffic,
    scaling,
    observed_generation: String(reconciling ? s.generation - 1 : s.generation),
    terminal_condition: ready,
    conditions: [
      {
        type: 'ConfigurationsReady',
        state: ready.state,
        last_transition_time: ready.last_transition_time,
      },
      { type: 'RoutesReady', state: ready.state, last_transition_time: ready.last_transition_time },
    ],
    latest_ready_revision: revisionPath(readyLatest?.name ?? serving),
    latest_created_revision: revisionPath(latest?.name ?? serving),
    traffic_statuses: trafficStatuses,
    uri: `https://${s.name}-${hash}-${s.region.replace(/[^a-z]/g, '').slice(0, 2)}.a.run.app`,
    urls: [`https://${s.name}-${hash}.${s.region}.run.app`],
    reconciling,
    etag: s.etag,
  };
}

/** A worker pool revision's template: its containers and its own GPU. */
function workerPoolTemplate(w: WorkerPoolState, gpu: Gpu | undefined): Message {
  const limits: Record<string, string> = { cpu: gpu ? '8' : '1', memory: gpu ? '32Gi' : '512Mi' };
  if (gpu) limits['nvidia.com/gpu'] = String(gpu.count);
  return {
    containers: [
      {
        name: w.name,
        image: `us-docker.pkg.dev/${w.project}/workers/${w.name}:latest`,
        resources: { limits },
      },
    ],
    ...gpuFields(gpu),
  };
}

const SPLIT_LATEST = 'INSTANCE_SPLIT_ALLOCATION_TYPE_LATEST';
const SPLIT_REVISION = 'INSTANCE_SPLIT_ALLOCATION_TYPE_REVISION';

/**
 * A worker pool as ListWorkerPools answers it. Its instances go to the latest ready revision
 * (`instance_splits` empty or LATEST: "defaults to 100% instances assigned to the latest `Ready`
 * Revision", google/cloud/run/v2/worker_pool.proto), or with an instance split to an older
 * revision and the latest, each by name (`instance_split_statuses` says the same).
 */
export function workerPoolResource(w: WorkerPoolState): Message {
  const name = workerPoolResourceName(w);
  const revisions = workerPoolRevisions(w);
  const latest = revisions[revisions.length - 1]?.name ?? '';
  const split: Message[] =
    revisions.length > 1
      ? revisions.map((r) => ({ type: SPLIT_REVISION, revision: r.name, percent: r.percent }))
      : [{ type: SPLIT_LATEST, percent: 100 }];
  return {
    name,
    uid: uid(name),
    generation: '1',
    labels: { ...w.spec.labels },
    create_time: timestamp(w.createTime),
    update_time: timestamp(w.createTime),
    launch_stage: 'GA',
    template: workerPoolTemplate(w, w.spec.gpu),
    instance_splits: split,
    scaling: { manual_instance_count: w.spec.manualInstanceCount },
    observed_generation: '1',
    terminal_condition: {
      type: 'Ready',
      state: 'CONDITION_SUCCEEDED',
      last_transition_time: timestamp(w.createTime),
    },
    latest_ready_revision: `${name}/revisions/${latest}`,
    latest_created_revision: `${name}/revisions/${latest}`,
    instance_split_statuses: split.map((t) =>
      t['type'] === SPLIT_LATEST ? { type: SPLIT_REVISION, revision: latest, percent: 100 } : t,
    ),
    reconciling: false,
    etag: `"${Buffer.from(`${name}#1`).toString('base64url').slice(-16)}"`,
  };
}

/**
 * A worker pool revision as `GetRevision` answers it: its name, its worker pool, its own GPU
 * (node selector, containers' limits, zonal redundancy), ready.
 */
export function workerPoolRevisionResource(w: WorkerPoolState, r: WorkerPoolRevision): Message {
  const pool = workerPoolResourceName(w);
  const name = `${pool}/revisions/${r.name}`;
  return {
    ...workerPoolTemplate(w, r.gpu),
    name,
    uid: uid(name),
    generation: '1',
    conditions: [
      {
        type: 'Ready',
        state: 'CONDITION_SUCCEEDED',
        last_transition_time: timestamp(w.createTime),
      },
    ],
    reconciling: false,
    observed_generation: '1',
    etag: `"${uid(name).slice(0, 8)}"`,
  };
}

function jobResourceName(j: { project: string; region: string; name: string }): string {
  return `projects/${j.project}/locations/${j.region}/jobs/${j.name}`;
}

/** A job's TaskTemplate: the GPU is declared as on a revision template. */
function taskTemplate(j: JobState): Message {
  const gpu = j.spec.gpu;
  const limits: Record<string, string> = { cpu: gpu ? '8' : '1', memory: gpu ? '32Gi' : '512Mi' };
  if (gpu) limits['nvidia.com/gpu'] = String(gpu.count);
  const template: Message = {
    containers: [
      {
        name: j.name,
        image: `us-docker.pkg.dev/${j.project}/jobs/${j.name}:latest`,
        resources: { limits },
      },
    ],
    max_retries: 3,
    timeout: { seconds: '3600' },
    execution_environment: 'EXECUTION_ENVIRONMENT_GEN2',
  };
  if (gpu) {
    template['node_selector'] = { accelerator: gpu.accelerator };
    template['gpu_zonal_redundancy_disabled'] = !gpu.zonalRedundancy;
  }
  return template;
}

function jobEtag(name: string): string {
  return `"${Buffer.from(`${name}#1`).toString('base64url').slice(-16)}"`;
}

export function jobResource(j: JobState, nowMs: number): Message {
  const name = jobResourceName(j);
  const executions = jobExecutions(j, nowMs);
  const latest = executions.reduce<ExecutionState | undefined>(
    (a, e) => (a === undefined || e.startAt > a.startAt ? e : a),
    undefined,
  );
  const message: Message = {
    name,
    uid: uid(name),
    generation: '1',
    labels: { ...j.spec.labels },
    create_time: timestamp(j.createTime),
    update_time: timestamp(j.createTime),
    launch_stage: 'GA',
    template: {
      parallelism: j.spec.parallelism,
      task_count: j.spec.taskCount,
      template: taskTemplate(j),
    },
    observed_generation: '1',
    terminal_condition: {
      type: 'Ready',
      state: 'CONDITION_SUCCEEDED',
      last_transition_time: timestamp(j.createTime),
    },
    execution_count: executions.length,
    reconciling: false,
    etag: jobEtag(name),
  };
  if (latest) {
    message['latest_created_execution'] = {
      name: `${name}/executions/${latest.name}`,
      create_time: timestamp(latest.startAt),
      ...(latest.completedAt === undefined
        ? { completion_status: 'EXECUTION_RUNNING' }
        : {
            completion_time: timestamp(latest.completedAt),
            completion_status: 'EXECUTION_SUCCEEDED',
          }),
    };
  }
  return message;
}

export function executionResource(e: ExecutionState): Message {
  const name = `${jobResourceName(e.job)}/executions/${e.name}`;
  const done = e.completedAt !== undefined;
  const completed = {
    type: 'Completed',
    state: done ? 'CONDITION_SUCCEEDED' : 'CONDITION_RECONCILING',
    last_transition_time: timestamp(e.completedAt ?? e.startAt),
  };
  return {
    name,
    uid: uid(name),
    generation: '1',
    labels: { ...e.job.spec.labels, 'run.googleapis.com/jobUid': uid(jobResourceName(e.job)) },
    create_time: timestamp(e.startAt),
    start_time: timestamp(e.startAt),
    ...(done ? { completion_time: timestamp(e.completedAt ?? e.startAt) } : {}),
    update_time: timestamp(e.completedAt ?? e.startAt),
    launch_stage: 'GA',
    job: e.job.name,
    parallelism: e.parallelism,
    task_count: e.taskCount,
    template: taskTemplate(e.job),
    reconciling: !done,
    conditions: [completed],
    observed_generation: '1',
    running_count: e.running,
    succeeded_count: e.succeeded,
    failed_count: 0,
    cancelled_count: 0,
    retried_count: 0,
    etag: jobEtag(name),
  };
}

/** The runtime service account of every emulated service of a project (its template's). */
export function runtimeServiceAccount(project: string): string {
  return `${project.replace(/[^a-z0-9-]/g, '')}-run@${project}.iam.gserviceaccount.com`;
}
