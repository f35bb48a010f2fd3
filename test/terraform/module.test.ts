import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { PERMISSION_GRANTS } from '../../src/core/permissions.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';
import { leaseTtlMs } from '../../src/reconcile/lease.js';
import { ALERT_GRACE_MS, type ReconcileOptions } from '../../src/reconcile/run.js';
import {
  allText,
  block,
  type Body,
  type Config,
  dynamicBlock,
  dynamicContent,
  evaluateCondition,
  loadConfig,
  resource,
  resourcesOf,
  stringsIn,
} from './hcl.js';

/** Structural checks of the module in terraform/, read offline (no terraform binary here). */

let module: Config;
beforeAll(async () => {
  module = await loadConfig('terraform');
});

const GOVERNOR_SA = 'google_service_account.governor';
const INVOKER_SA = 'google_service_account.invoker';

/** IAM member resources (any google_*_iam_member), as [key, body]. */
function iamMembers(config: Config): [string, Body][] {
  return [...config.resources].filter(([key]) => /^google_[a-z0-9_]+_iam_member\./.test(key));
}

function validations(config: Config, variable: string): Body[] {
  const body = config.variables.get(variable);
  const list = body?.['validation'];
  return Array.isArray(list) ? (list as Body[]) : [];
}

/** The RE2 pattern of the first regex("...", var.x) in a condition, as a JS RegExp. */
function regexIn(condition: unknown): RegExp {
  return new RegExp(patternIn(condition));
}

/** The RE2 pattern text of the first regex("...", var.x) in a condition. */
function patternIn(condition: unknown): string {
  const match = /regex\("((?:[^"\\]|\\.)*)"/.exec(String(condition));
  if (match?.[1] === undefined) throw new Error(`no regex in ${String(condition)}`);
  return JSON.parse(`"${match[1]}"`) as string;
}

describe('versions.tf', () => {
  it('requires Terraform 1.5 or newer and bounds the google provider on both sides', () => {
    const tf = module.terraform[0];
    expect(tf?.['required_version']).toBe('>= 1.5');
    const providers = block(tf, 'required_providers');
    const google = providers?.['google'] as Body | undefined;
    expect(google?.['source']).toBe('hashicorp/google');
    expect(String(google?.['version'])).toMatch(/>=\s*\d/);
    expect(String(google?.['version'])).toMatch(/<\s*\d/);
  });
});

describe('variables', () => {
  it('every variable has a type and a description', () => {
    expect(module.variables.size).toBeGreaterThan(5);
    for (const [name, body] of module.variables) {
      expect(body['type'], name).toMatch(/^\$\{.+\}$/s);
      expect(String(body['description'] ?? '').length, name).toBeGreaterThan(20);
    }
  });

  it('every validation has a condition and an error message ending in a full stop', () => {
    for (const name of module.variables.keys()) {
      for (const v of validations(module, name)) {
        expect(v['condition'], name).toBeDefined();
        expect(String(v['error_message']), name).toMatch(/\.$/);
      }
    }
  });

  it('validates the cron expression', () => {
    const re = regexIn(validations(module, 'schedule')[0]?.['condition']);
    for (const ok of ['*/5 * * * *', '0 8-20 * * mon-fri', '*/2 * * * 1,2,3', ' 0 0 1 1 * ']) {
      expect(re.test(ok), ok).toBe(true);
    }
    for (const bad of ['*/5 * * *', 'every 5 minutes', '* * * * * *', '']) {
      expect(re.test(bad), bad).toBe(false);
    }
  });

  // Cloud Scheduler's unix-cron: numbers or the first three letters of a month or day name, `*`,
  // ranges `a-b`, steps `/n` after a range or `*`, lists with commas; it "does not support L to
  // mean the last day of the month"
  // (https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules).
  it("refuses the cron forms Cloud Scheduler's syntax does not have", () => {
    const re = regexIn(validations(module, 'schedule')[0]?.['condition']);
    for (const ok of [
      '0 9 1,15 * 1-5',
      '0 0-23/2 * * *',
      '0 */2 * * *',
      '0 0 1 JAN,JUL *',
      '0 9 * * SUN',
      '0 9 * * 7',
      '30 8 1-7 * MON',
      '0 0 1 jan-jun/2 *',
    ]) {
      expect(re.test(ok), ok).toBe(true);
    }
    for (const bad of [
      '0 0 L * *',
      '0 0 * * 5L',
      '0 0 1W * *',
      '0 0 * * 1#2',
      '0 0 LW * *',
      '0 0 * * L',
    ]) {
      expect(re.test(bad), bad).toBe(false);
    }
  });

  it('validates the time zone', () => {
    const condition = String(validations(module, 'time_zone')[0]?.['condition']);
    const accepts = (zone: string) => evaluateCondition(condition, { time_zone: zone });
    // Cloud Scheduler takes "a time zone name from the tz database", and "utc" for UTC
    // (https://cloud.google.com/python/docs/reference/cloudscheduler/1.2.1/google.cloud.scheduler_v1.types.Job):
    // the names without a slash (GMT, Japan, EST5EDT) are tz database names too.
    for (const ok of [
      'Etc/UTC',
      'Europe/Paris',
      'America/Argentina/Buenos_Aires',
      'Etc/GMT+5',
      'US/Eastern',
      'UTC',
      'utc',
      'GMT',
      'Japan',
      'EST5EDT',
      'GB-Eire',
      'GMT+0',
    ]) {
      expect(accepts(ok), ok).toBe(true);
    }
    for (const bad of ['Paris', 'Europe/', '+02:00', 'CET ', 'UTC+5', 'gmt', 'Z', '']) {
      expect(accepts(bad), bad).toBe(false);
    }
  });

  // A function is a Cloud Run service, and Cloud Run refuses a revision whose CPU and memory do
  // not fit: 1, 2, 4, 6 or 8 vCPUs ("any of the values shown in the following table") or "any value
  // between 0.08 and 1";
  // 4 vCPUs need 2 GiB, 6 or 8 need 4 GiB; under 1 vCPU, more than 512 MiB needs 0.5 and more than
  // 1 GiB needs 1 (https://cloud.google.com/run/docs/configuring/services/cpu); more than 4 GiB
  // needs 2 vCPUs, more than 8 GiB 4, more than 16 GiB 6, more than 24 GiB 8, and 32 GiB is the
  // most, and 128 MiB the least
  // (https://cloud.google.com/run/docs/configuring/services/memory-limits). Refused at plan
  // time rather than by the API, after the build.
  it.each([
    ['1', '512Mi', true],
    ['1', '4Gi', true],
    ['1', '4096Mi', true],
    ['1', '4294M', true],
    ['1', '4G', true],
    ['2', '8Gi', true],
    ['4', '16Gi', true],
    ['4', '2Gi', true],
    ['6', '24Gi', true],
    ['8', '32Gi', true],
    ['0.5', '1Gi', true],
    ['0.083', '128Mi', true],
    ['1', '8Gi', false],
    ['1', '4097Mi', false],
    ['1', '4295M', false],
    ['1', '5G', false],
    ['2', '9Gi', false],
    ['4', '17Gi', false],
    ['6', '25Gi', false],
    ['8', '33Gi', false],
    ['4', '1Gi', false],
    ['6', '2Gi', false],
    ['8', '3Gi', false],
    ['0.25', '1Gi', false],
    ['0.5', '2Gi', false],
    ['1.5', '1Gi', false],
    ['9', '32Gi', false],
    ['3', '8Gi', false],
    ['5', '16Gi', false],
    ['7', '24Gi', false],
    ['0.05', '128Mi', false],
    ['one', '512Mi', false],
    ['1', '128Mi', true],
    ['1', '127Mi', false],
    ['1', '0Mi', false],
    ['1', '100M', false],
    ['0.08', '64Mi', false],
  ])('function: %s vCPU with %s is accepted: %s, as Cloud Run would', (cpu, memory, accepted) => {
    const value = {
      function: {
        timeout_seconds: 300,
        run_deadline: '240s',
        available_cpu: cpu,
        available_memory: memory,
        environment: {},
      },
    };
    const results = validations(module, 'function')
      .filter((v) => /available_(cpu|memory)/.test(String(v['condition'])))
      .map((v) => ({
        ok: evaluateCondition(String(v['condition']), value),
        message: String(v['error_message']),
      }));
    expect(results.every((r) => r.ok === true)).toBe(accepted);
    for (const r of results.filter((r) => r.ok !== true)) {
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/^function\.available_(cpu|memory) /);
    }
  });

  it.each([
    [59, false],
    [60, true],
    [300, true],
    [300.5, false],
    [1770, true],
    [1771, false],
  ])('function.timeout_seconds = %s is accepted: %s', (timeout_seconds, accepted) => {
    const check = validations(module, 'function').find((v) =>
      /timeout_seconds <= 1770/.test(String(v['condition'])),
    );
    expect(String(check?.['error_message'])).toMatch(/from 60 to 1770/);
    expect(evaluateCondition(String(check?.['condition']), { function: { timeout_seconds } })).toBe(
      accepted,
    );
  });

  it('keeps the run deadline shorter than the function timeout, in the same variable', () => {
    const conditions = validations(module, 'function').map((v) => String(v['condition']));
    expect(conditions.some((c) => /run_deadline/.test(c) && /timeout_seconds/.test(c))).toBe(true);
    expect(conditions.some((c) => /timeout_seconds\s*<=\s*1770/.test(c))).toBe(true);
    const fn = String(module.variables.get('function')?.['type']);
    expect(fn).toContain('run_deadline     = optional(string, "240s")');
    expect(fn).toContain('timeout_seconds  = optional(number, 300)');
  });

  // The function stops starting writes at the run deadline (GOVERNOR_RUN_DEADLINE, counted from
  // the request's arrival), then has ALERT_GRACE_MS to publish and record, and answers: all of it
  // must end before the function's timeout. Its lease outlives the deadline by LEASE_MARGIN_MS.
  it.each([
    ['240s', 300, true],
    ['4m', 300, true],
    ['285s', 300, true],
    ['286s', 300, false],
    ['5m', 300, false],
    ['45s', 60, true],
    ['46s', 60, false],
    ['29m', 1770, true],
    ['0s', 300, false],
    ['0m', 300, false],
    ['240', 300, false],
    ['4m30s', 300, false],
    ['240ms', 300, false],
    [' 240s', 300, false],
  ])(
    'function.run_deadline %s with a %ss timeout is accepted: %s',
    (run_deadline, timeout_seconds, accepted) => {
      const value = {
        function: {
          timeout_seconds,
          run_deadline,
          available_cpu: '1',
          available_memory: '512Mi',
          environment: {},
        },
      };
      const results = validations(module, 'function')
        .filter((v) => String(v['condition']).includes('run_deadline'))
        .map((v) => ({
          ok: evaluateCondition(String(v['condition']), value),
          message: String(v['error_message']),
        }));
      expect(results.length).toBeGreaterThanOrEqual(2);
      expect(results.every((r) => r.ok === true)).toBe(accepted);
      for (const r of results.filter((r) => r.ok !== true)) {
        expect(r.ok).toBe(false);
        expect(r.message).toMatch(/^function\.run_deadline /);
      }
      if (!accepted) return;
      // What the module accepts, the function accepts, and its work after the deadline (the alerts'
      // grace) ends before the timeout, while the lease, taken after the request arrived, lasts past
      // the deadline and its grace.
      const options = parseRuntimeOptions({ GOVERNOR_RUN_DEADLINE: run_deadline });
      expect(options.runDeadlineMs + ALERT_GRACE_MS).toBeLessThan(timeout_seconds * 1000);
      expect(leaseTtlMs({ deadlineMs: options.runDeadlineMs } as ReconcileOptions)).toBeGreaterThan(
        options.runDeadlineMs + ALERT_GRACE_MS,
      );
    },
  );

  it('requires a policy with a non-empty projects list, and a non-empty regions list when given', () => {
    const conditions = validations(module, 'policy').map((v) => String(v['condition']));
    expect(conditions.some((c) => /\.projects\) > 0/.test(c))).toBe(true);
    expect(conditions.some((c) => /\.regions\) > 0/.test(c))).toBe(true);
    expect(conditions.some((c) => /\.version == 1/.test(c))).toBe(true);
    expect(module.variables.get('policy')?.['default']).toBeUndefined();
  });

  it('validates the names, the trigger kind and the schema kinds Pub/Sub supports', () => {
    for (const name of ['project_id', 'region', 'name', 'trigger', 'alerts', 'state']) {
      expect(validations(module, name).length, name).toBeGreaterThan(0);
    }
    const nameRe = regexIn(validations(module, 'name')[0]?.['condition']);
    expect(nameRe.test('gpu-governor')).toBe(true);
    expect(nameRe.test('gpu-governor-with-a-long-name')).toBe(false); // 29 > 22: SA ids would overflow
    const alerts = validations(module, 'alerts').map((v) => String(v['condition']));
    expect(alerts.some((c) => c.includes('["AVRO", "PROTOCOL_BUFFER"]'))).toBe(true);
  });

  // https://cloud.google.com/resource-manager/docs/labels-overview#requirements: at most 64 labels;
  // keys of 1 to 63 lowercase letters (international ones included), digits, "_" or "-", starting
  // with a letter; values the same, 0 to 63, any first character.
  it('refuses labels Google would refuse, at plan time', () => {
    const conditions = validations(module, 'labels').map((v) => String(v['condition']));
    const keyCondition = conditions.find((c) => /keys\(var\.labels\)/.test(c));
    const valueCondition = conditions.find((c) => /values\(var\.labels\)/.test(c));
    const key = new RegExp(patternIn(keyCondition), 'u');
    const value = new RegExp(patternIn(valueCondition), 'u');
    for (const ok of ['team', 'cost-center', 'a_b', 'équipe', 'k'.repeat(63)]) {
      expect(key.test(ok), ok).toBe(true);
    }
    for (const bad of ['Team', '1team', '-x', 'a.b', 'a b', '', 'k'.repeat(64)]) {
      expect(key.test(bad), bad).toBe(false);
    }
    for (const ok of ['', 'ml', '42', 'x-y_z', 'sécurité', 'v'.repeat(63)]) {
      expect(value.test(ok), ok).toBe(true);
    }
    for (const bad of ['ML', 'a/b', 'a.b', 'v'.repeat(64)]) {
      expect(value.test(bad), bad).toBe(false);
    }
    // The module adds app = gpu-governor: 63 of the user's own at most.
    expect(conditions.some((c) => /length\(var\.labels\) <= 63/.test(c))).toBe(true);
  });

  // Topic.name and Subscription.name: "must start with a letter, and contain only letters
  // ([A-Za-z]), numbers ([0-9]), dashes (-), underscores (_), periods (.), tildes (~), plus (+)
  // or percent signs (%). It must be between 3 and 255 characters in length, and it must not
  // start with "goog"" (google/pubsub/v1/pubsub.proto of @google-cloud/pubsub). The topic name
  // also names <topic>-dead-letter and <topic>-subscription, so it leaves room for them.
  it('refuses topic and subscription names Pub/Sub would refuse, at plan time', () => {
    const conditions = validations(module, 'alerts').map((v) => String(v['condition']));
    const topic = conditions.find((c) => c.includes('var.alerts.topic_name'));
    const subscription = conditions.find((c) => c.includes('var.alerts.subscription.name'));
    expect(subscription, 'a validation of alerts.subscription.name').toBeDefined();
    const topicRe = regexIn(topic);
    const subscriptionRe = regexIn(subscription);
    for (const re of [topicRe, subscriptionRe]) {
      for (const ok of ['gpu-alerts', 'a.b_c~d+e%f', 'Abc']) expect(re.test(ok), ok).toBe(true);
      for (const bad of ['ab', '1abc', 'a/b', 'a b', '-abc']) {
        expect(re.test(bad), bad).toBe(false);
      }
    }
    // RE2 has no lookahead: the "goog" prefix is refused beside the pattern.
    expect(topic).toContain('!startswith(var.alerts.topic_name, "goog")');
    expect(subscription).toContain('!startswith(var.alerts.subscription.name, "goog")');
    expect(subscriptionRe.test(`a${'b'.repeat(254)}`)).toBe(true);
    expect(subscriptionRe.test(`a${'b'.repeat(255)}`)).toBe(false);
    // <topic>-subscription (13 more characters) stays within 255.
    expect(topicRe.test(`a${'b'.repeat(241)}`)).toBe(true);
    expect(topicRe.test(`a${'b'.repeat(242)}`)).toBe(false);
  });

  // https://cloud.google.com/pubsub/docs/subscription-properties: 10 minutes to 31 days.
  it("checks the alert subscription's retention as it checks the topic's", () => {
    const conditions = validations(module, 'alerts').map((v) => String(v['condition']));
    const bounds = (field: string) =>
      conditions.find(
        (c) => c.includes(`${field}, "s")) >= 600`) && c.includes(`${field}, "s")) <= 2678400`),
      );
    expect(bounds('var.alerts.message_retention_duration')).toBeDefined();
    expect(bounds('var.alerts.subscription.message_retention_duration')).toBeDefined();
  });

  // Subscription.ack_deadline_seconds: "The minimum custom deadline you can specify is 10 seconds.
  // The maximum custom deadline you can specify is 600 seconds"
  // (https://cloud.google.com/dotnet/docs/reference/Google.Cloud.PubSub.V1/latest/Google.Cloud.PubSub.V1.Subscription);
  // DeadLetterPolicy.max_delivery_attempts: "The value must be between 5 and 100"
  // (https://cloud.google.com/dotnet/docs/reference/Google.Cloud.PubSub.V1/latest/Google.Cloud.PubSub.V1.DeadLetterPolicy.html).
  it.each([
    ['ack_deadline_seconds', 10, true],
    ['ack_deadline_seconds', 600, true],
    ['ack_deadline_seconds', 9, false],
    ['ack_deadline_seconds', 601, false],
    ['max_delivery_attempts', 5, true],
    ['max_delivery_attempts', 100, true],
    ['max_delivery_attempts', 4, false],
    ['max_delivery_attempts', 101, false],
  ])('alerts.subscription.%s = %s is accepted: %s, as Pub/Sub would', (field, value, accepted) => {
    const checks = validations(module, 'alerts').filter((v) =>
      String(v['condition']).includes(`var.alerts.subscription.${field}`),
    );
    expect(checks.length).toBe(1);
    const subscription = { ack_deadline_seconds: 60, max_delivery_attempts: 10, [field]: value };
    expect(evaluateCondition(String(checks[0]?.['condition']), { alerts: { subscription } })).toBe(
      accepted,
    );
  });

  // RetryConfig.retry_count: "Values greater than 5 and negative values are not allowed"
  // (https://cloud.google.com/php/docs/reference/cloud-scheduler/1.10.0/V1.RetryConfig).
  it.each([
    [0, true],
    [5, true],
    [-1, false],
    [6, false],
    [1.5, false],
  ])('scheduler_retry.retry_count = %s is accepted: %s, as Cloud Scheduler would', (count, ok) => {
    const checks = validations(module, 'scheduler_retry').filter((v) =>
      String(v['condition']).includes('retry_count'),
    );
    expect(checks.length).toBe(1);
    const scheduler_retry = { retry_count: count };
    expect(evaluateCondition(String(checks[0]?.['condition']), { scheduler_retry })).toBe(ok);
  });

  /** The one check of scheduler_retry whose condition contains `text`, evaluated on `retry`. */
  const retryCheck = (text: string, retry: Record<string, unknown>) => {
    const checks = validations(module, 'scheduler_retry').filter((v) =>
      String(v['condition']).includes(text),
    );
    expect(checks.length).toBe(1);
    return evaluateCondition(String(checks[0]?.['condition']), { scheduler_retry: retry });
  };

  it.each([
    [0, true],
    [2, true],
    [10, true],
    [-1, false],
    [0.5, false],
  ])('scheduler_retry.max_doublings = %s is accepted: %s', (doublings, ok) => {
    expect(retryCheck('var.scheduler_retry.max_doublings', { max_doublings: doublings })).toBe(ok);
  });

  it.each([
    ['30s', '120s', true],
    ['120s', '120s', true],
    ['5s', '3600s', true],
    ['121s', '120s', false],
    ['3600s', '30s', false],
    // Another shape is the duration check's to refuse, not this one's.
    ['half a minute', '120s', true],
  ])(
    'scheduler_retry with min_backoff_duration %s and max_backoff_duration %s is accepted: %s',
    (min, max, ok) => {
      const retry = { min_backoff_duration: min, max_backoff_duration: max };
      expect(retryCheck('trimsuffix(var.scheduler_retry.min_backoff_duration', retry)).toBe(ok);
    },
  );

  it('checks that the service accounts it is given are service account emails', () => {
    const emailRe = (variable: string, field: string) =>
      regexIn(
        validations(module, variable)
          .map((v) => String(v['condition']))
          .find((c) => c.includes(field) && c.includes(']+@[')),
      );
    for (const re of [
      emailRe('governed_service_accounts', 'email'),
      emailRe('build_service_account', 'var.build_service_account'),
      emailRe('alerts', 'push_service_account_email'),
    ]) {
      for (const ok of [
        'builder@my-project.iam.gserviceaccount.com',
        'a-b@p.iam.gserviceaccount.com',
      ]) {
        expect(re.test(ok), ok).toBe(true);
      }
      for (const bad of [
        'builder',
        'me@example.com',
        'projects/p/serviceAccounts/x@p.iam.gserviceaccount.com',
      ]) {
        expect(re.test(bad), bad).toBe(false);
      }
    }
  });

  // CreateServiceRequest.service_id: "It must begin with letter, and cannot end with hyphen;
  // must contain fewer than 50 characters" (google/cloud/run/v2/service.proto of
  // @google-cloud/run;
  // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/create):
  // 1 to 49 characters.
  it('takes every Cloud Run service name Google allows in write_access, and no other', () => {
    const condition = validations(module, 'write_access')
      .map((v) => String(v['condition']))
      .find((c) => c.includes('service.name'));
    const re = regexIn(condition);
    for (const ok of ['a', 'llm-chat', 'a1', `a${'b'.repeat(48)}`]) {
      expect(re.test(ok), ok).toBe(true);
    }
    for (const bad of ['', '1llm', 'llm-', 'Llm', 'llm_chat', `a${'b'.repeat(49)}`]) {
      expect(re.test(bad), bad).toBe(false);
    }
  });

  it('checks the notification channels are channel names', () => {
    const re = regexIn(
      validations(module, 'monitoring').find((v) =>
        String(v['condition']).includes('notification_channels'),
      )?.['condition'],
    );
    expect(re.test('projects/my-project/notificationChannels/123456')).toBe(true);
    for (const bad of ['123456', 'notificationChannels/1', 'projects/p/notificationChannels/']) {
      expect(re.test(bad), bad).toBe(false);
    }
  });

  it('every var.x the module uses is declared, and every declared variable is used', () => {
    const used = new Set(
      [...allText(module).matchAll(/\bvar\.([a-z_][a-z0-9_]*)/g)].map((m) => m[1]),
    );
    expect([...used].filter((v) => v !== undefined && !module.variables.has(v))).toEqual([]);
    const code = [...module.text]
      .filter(([file]) => file !== 'variables.tf')
      .map(([, text]) => text)
      .join('\n');
    const unused = [...module.variables.keys()].filter((v) => !code.includes(`var.${v}`));
    expect(unused).toEqual([]);
  });

  it('every local and resource the module refers to exists', () => {
    const text = allText(module);
    const locals = [...text.matchAll(/\blocal\.([a-z_][a-z0-9_]*)/g)].map((m) => m[1]);
    expect(locals.filter((l) => l !== undefined && !(l in module.locals))).toEqual([]);
    const refs = [...text.matchAll(/(?<![\w."])(google_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)\b/g)];
    const missing = refs.map((m) => `${m[1]}.${m[2]}`).filter((key) => !module.resources.has(key));
    expect(missing).toEqual([]);
    for (const m of text.matchAll(/\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)/g)) {
      expect(module.data.has(`${m[1]}.${m[2]}`)).toBe(true);
    }
  });
});

describe('the function', () => {
  const fn = (): Body => resource(module, 'google_cloudfunctions2_function', 'governor');

  it('runs nodejs22 from the uploaded archive, with the contract entry points', () => {
    const build = block(fn(), 'build_config');
    expect(build?.['runtime']).toBe('nodejs22');
    expect(build?.['entry_point']).toBe('${local.http ? "governorHttp" : "governorEvent"}');
    const storage = block(block(build, 'source'), 'storage_source');
    expect(storage?.['object']).toBe('${google_storage_bucket_object.source.name}');
  });

  it('names the archive object by its content hash, so a new build redeploys', () => {
    const object = resource(module, 'google_storage_bucket_object', 'source');
    expect(object['name']).toContain('${filesha256(var.source_archive)}');
    expect(object['source']).toBe('${var.source_archive}');
  });

  it('runs one instance at a time, one request at a time', () => {
    const service = block(fn(), 'service_config');
    expect(service?.['max_instance_count']).toBe(1);
    expect(service?.['max_instance_request_concurrency']).toBe(1);
    expect(service?.['min_instance_count']).toBe(0);
    expect(service?.['timeout_seconds']).toBe('${var.function.timeout_seconds}');
  });

  it('runs as the dedicated governor account, never a default one', () => {
    expect(block(fn(), 'service_config')?.['service_account_email']).toBe(
      `\${${GOVERNOR_SA}.email}`,
    );
    expect(block(fn(), 'build_config')?.['service_account']).toBe(
      '${local.build_service_account_id}',
    );
    const text = allText(module);
    expect(text).not.toMatch(/google_compute_default_service_account|google_app_engine_default/);
    // The default compute account appears three times: the validation that refuses it as the
    // build account, the governed projects' default runtime account the governor may act as, and
    // the host project's, which Pub/Sub accepts as a push subscription's signer (descriptions
    // aside).
    const mentions = text
      .split('\n')
      .filter((l) => l.includes('-compute@developer') && !/^\s*description\s*=/.test(l));
    expect(mentions.length).toBe(3);
    expect(
      mentions.some(
        (l) =>
          l.includes('push_service_account_email') && l.includes('data.google_project.this.number'),
      ),
    ).toBe(true);
    expect(mentions.some((l) => l.includes('!can(regex('))).toBe(true);
    expect(mentions.some((l) => l.includes('data.google_project.governed[project].number'))).toBe(
      true,
    );
  });

  it('creates no service account keys and grants nothing to the public', () => {
    const text = allText(module);
    expect(text).not.toContain('google_service_account_key');
    expect(text).not.toMatch(/allUsers|allAuthenticatedUsers/);
    for (const [key, body] of iamMembers(module)) {
      expect(String(body['role']), key).not.toMatch(/^roles\/(owner|editor|viewer)$/);
    }
  });

  it('passes the policy and the state store through the environment', () => {
    expect(block(fn(), 'service_config')?.['environment_variables']).toBe('${local.environment}');
    const env = String(module.locals['environment']);
    for (const key of [
      'GOVERNOR_POLICY               = jsonencode(local.policy)',
      'GOVERNOR_STATE_STORE          = "firestore"',
      'GOVERNOR_FIRESTORE_DATABASE   = local.database_id',
      'GOVERNOR_FIRESTORE_COLLECTION = var.state.collection',
      'GOVERNOR_RUN_DEADLINE         = var.function.run_deadline',
      'GOOGLE_CLOUD_PROJECT          = var.project_id',
      'NODE_ENV                      = "production"',
    ]) {
      expect(env).toContain(key);
    }
    // The module's keys come last in merge(), so function.environment cannot override them.
    expect(env.startsWith('${merge(var.function.environment, {')).toBe(true);
    expect(module.locals['policy_input']).toBe('${try(yamldecode(var.policy), var.policy)}');
    const state = module.variables.get('state')?.['type'];
    expect(String(state)).toContain('collection          = optional(string, "gpu-governor")');
  });

  it('the Pub/Sub variant has an event trigger on the trigger topic, run as the invoker', () => {
    const trigger = dynamicContent(fn(), 'event_trigger');
    expect(trigger?.['event_type']).toBe('google.cloud.pubsub.topic.v1.messagePublished');
    expect(trigger?.['service_account_email']).toBe(`\${${INVOKER_SA}.email}`);
    expect(String(dynamicBlock(fn(), 'event_trigger')?.['for_each'])).toContain(
      'google_pubsub_topic.trigger[0].id',
    );
  });

  // An event-driven function (the Pub/Sub variant) times out after at most 540 s, an HTTP one after
  // 3600 s (https://cloud.google.com/functions/docs/configuring/timeout); the HTTP variant's own
  // bound, 1770 s, is the scheduler's (above).
  it.each([
    [false, 540, true],
    [false, 541, false],
    [false, 1770, false],
    [true, 1770, true],
  ])('with http = %s, a %ss timeout passes the plan: %s', (http, timeout_seconds, ok) => {
    const preconditions = block(fn(), 'lifecycle')?.['precondition'];
    const timeoutCheck = (Array.isArray(preconditions) ? (preconditions as Body[]) : []).find((p) =>
      String(p['condition']).includes('timeout_seconds'),
    );
    expect(String(timeoutCheck?.['error_message'])).toMatch(/540 seconds/);
    expect(
      evaluateCondition(String(timeoutCheck?.['condition']), {
        local: { http },
        function: { timeout_seconds },
      }),
    ).toBe(ok);
  });

  // In the Pub/Sub variant nothing but Eventarc calls the function: ALLOW_INTERNAL_ONLY, "Allow
  // HTTP traffic from only private VPC sources" (ServiceConfig.IngressSettings,
  // https://cloud.google.com/ruby/docs/reference/google-cloud-functions-v2/latest/Google-Cloud-Functions-V2-ServiceConfig-IngressSettings).
  it('accepts internal traffic only in the Pub/Sub variant, and any in the HTTP one', () => {
    const ingress = String(block(fn(), 'service_config')?.['ingress_settings']);
    expect(evaluateCondition(ingress, { local: { http: false } })).toBe('ALLOW_INTERNAL_ONLY');
    expect(evaluateCondition(ingress, { local: { http: true } })).toBe('ALLOW_ALL');
  });
});

describe('identity and permissions', () => {
  it('the read role holds exactly the permissions the code calls', () => {
    const role = resource(module, 'google_project_iam_custom_role', 'governor');
    expect(role['permissions']).toBe('${local.governor_role_permissions}');
    const permissions = module.locals['governor_read_permissions'] as string[];
    expect([...permissions].sort()).toEqual(
      [
        // Cloud Run Admin v2: regions, services, the update's operation, worker pools, and the
        // running job executions (ListExecutions on jobs/-: run.executions.list, no ListJobs)
        'run.locations.list',
        'run.services.list',
        'run.services.get',
        // The serving revisions' own max of a service whose latest revision does not serve, or
        // of a worker pool's instance split; for a worker pool's revision Google names no
        // permission, so run.workerpools.get (Cloud Run Viewer holds both) goes beside it
        'run.revisions.get',
        'run.workerpools.get',
        'run.operations.get',
        'run.workerpools.list',
        'run.executions.list',
        // Cloud Monitoring and Cloud Quotas
        'monitoring.timeSeries.list',
        'cloudquotas.quotas.get',
        // The governor's own metrics (custom.googleapis.com/gpu_governor/*), once per run, and
        // the descriptor their first write creates (Google does not say whether that write
        // needs it; Monitoring Metric Writer holds both)
        'monitoring.timeSeries.create',
        'monitoring.metricDescriptors.create',
      ].sort(),
    );
    // No write to the fleet, no IAM policy reads (TestIamPermissions needs none), nothing
    // project-wide to change: the two creates are the governor's own metrics.
    const ownMetrics = ['monitoring.timeSeries.create', 'monitoring.metricDescriptors.create'];
    for (const p of permissions.filter((x) => !ownMetrics.includes(x)))
      expect(p).not.toMatch(/\.(update|create|delete|setIamPolicy)$/);
  });

  it('grants run.locations.list only when the policy names no regions (its one call)', () => {
    // ListLocations is called for nothing but a policy without regions (src/observe/observe.ts).
    expect(module.locals['lists_regions']).toBe('${!can(local.policy_input.regions)}');
    expect(module.locals['governor_role_permissions']).toBe(
      '${[for p in local.governor_read_permissions : p if local.lists_regions || p != "run.locations.list"]}',
    );
  });

  it('grants no permission the code does not know it needs (src/core/permissions.ts)', () => {
    const granted = [
      ...(module.locals['governor_read_permissions'] as string[]),
      ...(module.locals['governor_write_permissions'] as string[]),
      ...(module.locals['governor_quota_request_permissions'] as string[]),
    ];
    const needed = Object.keys(PERMISSION_GRANTS);
    expect(granted.filter((p) => !needed.includes(p))).toEqual([]);
  });

  const policySchema: unknown = JSON.parse(readFileSync('schema/policy.schema.json', 'utf8'));

  it('every Terraform hint of src/core/permissions.ts names variables and fields the module declares', () => {
    const named = Object.values(PERMISSION_GRANTS).flatMap((g) =>
      [...g.terraform.matchAll(/`([a-z_]+(?:\.[a-z_]+)*)`/g)].map((m) => m[1] ?? ''),
    );
    expect(named).toContain('governed_service_accounts.default_compute_account');
    // A name is a variable of the module with each field its type declares
    // (object({ field = ... })), an output of the module (alert_topic_id), or a key of the
    // policy (`projects`, `alerts.topic`) as schema/policy.schema.json declares it.
    const isVariable = (name: string) => {
      const [variable = '', ...fields] = name.split('.');
      const type = module.variables.get(variable)?.['type'];
      return (
        type !== undefined && fields.every((f) => new RegExp(`\\b${f}\\s*=`).test(String(type)))
      );
    };
    const isPolicyKey = (name: string) => {
      let at: unknown = policySchema;
      for (const key of name.split('.'))
        at = (at as { properties?: Record<string, unknown> } | undefined)?.properties?.[key];
      return at !== undefined;
    };
    for (const name of named)
      expect(isVariable(name) || module.outputs.has(name) || isPolicyKey(name), name).toBe(true);
    expect(isVariable('governed_service_accounts.default_compute_acount')).toBe(false);
  });

  it('the read role holds every permission the code grants through it (src/core/permissions.ts)', () => {
    const read = module.locals['governor_read_permissions'] as string[];
    const throughReadRole = Object.entries(PERMISSION_GRANTS)
      .filter(([, g]) => g.terraform.startsWith("the module's read role"))
      .map(([p]) => p);
    expect(throughReadRole).toContain('run.revisions.get');
    expect(throughReadRole).toContain('run.workerpools.get');
    expect(throughReadRole).toContain('monitoring.metricDescriptors.create');
    expect(throughReadRole.filter((p) => !read.includes(p))).toEqual([]);
  });

  it("terraform/README.md's table of the governor's permissions lists exactly those of src/core/permissions.ts", () => {
    const readme = readFileSync('terraform/README.md', 'utf8');
    const section = readme.split('### Governor (')[1]?.split('\n### ')[0] ?? '';
    const listed = section
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => /^\| `([a-z]+\.[A-Za-z]+\.[A-Za-z]+)`/.exec(l)?.[1])
      .filter((p): p is string => p !== undefined);
    expect(listed.length).toBeGreaterThan(10);
    expect([...listed].sort()).toEqual(Object.keys(PERMISSION_GRANTS).sort());
  });

  it('the write role holds run.services.update alone', () => {
    const role = resource(module, 'google_project_iam_custom_role', 'governor_writer');
    expect(role['permissions']).toBe('${local.governor_write_permissions}');
    expect(module.locals['governor_write_permissions']).toEqual(['run.services.update']);
    expect(role['for_each']).toBe('${local.governed_projects}');
  });

  it('grants run.services.update on each listed service, and project-wide only on request', () => {
    const perService = resource(
      module,
      'google_cloud_run_v2_service_iam_member',
      'governor_writes',
    );
    expect(perService['for_each']).toBe('${local.writable_services}');
    expect(perService['name']).toBe('${each.value.name}');
    expect(perService['location']).toBe('${each.value.region}');
    expect(perService['project']).toBe('${each.value.project}');
    expect(perService['role']).toBe(
      '${google_project_iam_custom_role.governor_writer[each.value.project].id}',
    );
    const projectWide = resource(
      module,
      'google_project_iam_member',
      'governor_writes_project_wide',
    );
    expect(projectWide['for_each']).toBe(
      '${var.write_access.project_wide && local.may_write ? local.governed_projects : toset([])}',
    );
    // Defaults: no service, not project-wide (the narrowest grant).
    const type = String(module.variables.get('write_access')?.['type']);
    expect(type).toContain('project_wide = optional(bool, false)');
    expect(type).toMatch(/services = optional\(list\(object\(\{[\s\S]*\}\)\), \[\]\)/);
    expect(module.variables.get('write_access')?.['default']).toEqual({});
    // run.services.update is in no other role, and no predefined Cloud Run role is granted.
    expect(allText(module).match(/"run\.services\.update"/g)?.length).toBe(1);
    for (const [key, body] of iamMembers(module)) {
      expect(String(body['role']), key).not.toMatch(/^roles\/run\.(admin|developer)$/);
    }
  });

  it.each([
    ['p1', true],
    ['p2', true],
    ['elsewhere', false],
  ])('a write grant on a service of project %s passes the plan: %s', (project, ok) => {
    const binding = resource(module, 'google_cloud_run_v2_service_iam_member', 'governor_writes');
    const check = (block(binding, 'lifecycle')?.['precondition'] as Body[])[0];
    expect(String(check?.['error_message'])).toMatch(/a project the policy does not govern/);
    expect(
      evaluateCondition(String(check?.['condition']), {
        local: { governed_projects: ['p1', 'p2'] },
        each: { value: { project } },
      }),
    ).toBe(ok);
  });

  it.each([
    [[], false, true],
    [[], true, true],
    [[{ region: 'us-central1', name: 'llm' }], false, true],
    [[{ region: 'us-central1', name: 'llm' }], true, false],
  ])(
    'write_access services %j with project_wide = %s is accepted: %s',
    (services, project_wide, ok) => {
      const check = validations(module, 'write_access').find((v) =>
        String(v['condition']).includes('project_wide'),
      );
      expect(String(check?.['error_message'])).toMatch(/not both/);
      expect(
        evaluateCondition(String(check?.['condition']), {
          write_access: { services, project_wide },
        }),
      ).toBe(ok);
    },
  );

  it('refuses an enforcing policy that may write nothing, at plan time', () => {
    const fn = resource(module, 'google_cloudfunctions2_function', 'governor');
    const pre = block(fn, 'lifecycle')?.['precondition'] as Body[];
    expect(
      pre.some((p) =>
        String(p['condition']).includes(
          'try(local.policy_input.mode, "enforce") == "dry-run" || local.governor_writes',
        ),
      ),
    ).toBe(true);
    expect(String(module.locals['governor_writes'])).toBe(
      '${local.may_write && (var.write_access.project_wide || length(local.writable_services) > 0)}',
    );
  });

  it('grants no write, nor actAs, to a policy that can never enforce (a dry run writes nothing)', () => {
    // Runs write in enforce mode only: the policy's, or a request's when function.allow.enforce.
    expect(module.locals['may_write']).toBe(
      '${try(local.policy_input.mode, "enforce") != "dry-run" || try(local.policy_input.function.allow.enforce, false) == true}',
    );
    // Each per-service grant is filtered by it, the project-wide one too (above), and actAs
    // follows governor_writes, which requires it.
    expect(String(module.text.get('iam.tf'))).toMatch(
      /writable_services = \{\s+for service in var\.write_access\.services :[\s\S]*?\}\) if local\.may_write\s+\}/,
    );
    expect(String(module.locals['acts_as'])).toMatch(/^\$\{local\.governor_writes \?/);
  });

  it('grants the custom role to the governor in every governed project', () => {
    const binding = resource(module, 'google_project_iam_member', 'governor');
    expect(binding['for_each']).toBe('${local.governed_projects}');
    expect(binding['role']).toBe('${google_project_iam_custom_role.governor[each.key].id}');
    expect(binding['member']).toBe('${local.governor_member}');
    expect(module.locals['governor_member']).toBe(`serviceAccount:\${${GOVERNOR_SA}.email}`);
    expect(module.locals['governed_projects']).toBe('${toset(local.policy_input.projects)}');
  });

  it('every binding of the governor is one of those it needs', () => {
    const governor = iamMembers(module).filter(([, body]) =>
      String(body['member']).includes('local.governor_member'),
    );
    expect(Object.fromEntries(governor.map(([key, body]) => [key, body['role']]))).toEqual({
      'google_project_iam_member.governor':
        '${google_project_iam_custom_role.governor[each.key].id}',
      'google_cloud_run_v2_service_iam_member.governor_writes':
        '${google_project_iam_custom_role.governor_writer[each.value.project].id}',
      'google_project_iam_member.governor_writes_project_wide':
        '${google_project_iam_custom_role.governor_writer[each.key].id}',
      'google_service_account_iam_member.governor_acts_as': 'roles/iam.serviceAccountUser',
      'google_project_iam_member.governor_state': 'roles/datastore.user',
      'google_pubsub_topic_iam_member.governor_publishes_alerts': 'roles/pubsub.publisher',
      'google_project_iam_member.governor_quota_requests':
        '${google_project_iam_custom_role.governor_quota_requests[each.key].id}',
    });
  });

  it('grants cloudquotas.quotas.update only when quota_requests is true, in a role of its own', () => {
    const role = resource(module, 'google_project_iam_custom_role', 'governor_quota_requests');
    expect(role['permissions']).toBe('${local.governor_quota_request_permissions}');
    expect(module.locals['governor_quota_request_permissions']).toEqual([
      'cloudquotas.quotas.update',
    ]);
    expect(module.locals['quota_request_projects']).toBe(
      '${var.quota_requests ? local.governed_projects : toset([])}',
    );
    expect(role['for_each']).toBe('${local.quota_request_projects}');
    const binding = resource(module, 'google_project_iam_member', 'governor_quota_requests');
    expect(binding['for_each']).toBe('${local.quota_request_projects}');
    expect(binding['member']).toBe('${local.governor_member}');
    // Off by default; the permission is in no other role.
    expect(module.variables.get('quota_requests')?.['default']).toBe(false);
    expect(module.variables.get('quota_requests')?.['type']).toBe('${bool}');
    expect(allText(module).match(/"cloudquotas\.quotas\.update"/g)?.length).toBe(1);
    expect(module.locals['governor_read_permissions']).not.toContain('cloudquotas.quotas.update');
  });

  it('refuses a policy that files quota requests without the permission, at plan time', () => {
    const fn = resource(module, 'google_cloudfunctions2_function', 'governor');
    const pre = block(fn, 'lifecycle')?.['precondition'] as Body[];
    const check = pre.find((p) => String(p['condition']).includes('quotaRequests'));
    expect(String(check?.['condition'])).toBe(
      '${!try(local.policy_input.quotaRequests.enabled, false) || var.quota_requests}',
    );
    expect(String(check?.['error_message'])).toMatch(/set quota_requests = true/);
  });

  it('publishes on the alert topic only', () => {
    const publishers = iamMembers(module).filter(
      ([, body]) =>
        String(body['role']).startsWith('roles/pubsub.') &&
        String(body['member']).includes('governor'),
    );
    expect(publishers.map(([key]) => key)).toEqual([
      'google_pubsub_topic_iam_member.governor_publishes_alerts',
    ]);
    expect(publishers[0]?.[1]['topic']).toBe('${google_pubsub_topic.alerts.name}');
    for (const [key, body] of resourcesOf(module, 'google_project_iam_member')) {
      expect(String(body['role']), key).not.toMatch(/pubsub/);
    }
  });

  it('reaches the state database through a condition on its name', () => {
    const state = resource(module, 'google_project_iam_member', 'governor_state');
    const condition = block(state, 'condition');
    expect(String(condition?.['expression'])).toContain(
      'resource.name == "projects/${var.project_id}/databases/${local.database_id}" || resource.name.startsWith("projects/${var.project_id}/databases/${local.database_id}/")',
    );
  });

  it('acts as the governed projects default compute accounts and the accounts listed, only when it may write', () => {
    const actAs = resource(module, 'google_service_account_iam_member', 'governor_acts_as');
    expect(actAs['for_each']).toBe('${local.acts_as}');
    expect(actAs['service_account_id']).toBe('projects/-/serviceAccounts/${each.key}');
    const actsAs = String(module.locals['acts_as']);
    expect(actsAs.startsWith('${local.governor_writes ? toset(concat(')).toBe(true);
    expect(actsAs).toContain(': toset([])}');
    expect(actsAs).toContain('var.governed_service_accounts.default_compute_account ? [');
    expect(actsAs).toContain(
      '"${data.google_project.governed[project].number}-compute@developer.gserviceaccount.com"',
    );
    expect(actsAs).toContain('var.governed_service_accounts.emails');
    const type = String(module.variables.get('governed_service_accounts')?.['type']);
    expect(type).toContain('default_compute_account = optional(bool, true)');
    expect(type).toContain('emails                  = optional(list(string), [])');
    expect(module.data.get('google_project.governed')?.['for_each']).toBe(
      '${local.governed_projects}',
    );
  });

  it('the scheduler calls with an OIDC token of its own account, the only invoker', () => {
    const job = resource(module, 'google_cloud_scheduler_job', 'governor');
    const http = dynamicContent(job, 'http_target');
    const oidc = block(http, 'oidc_token');
    expect(oidc?.['service_account_email']).toBe(`\${${INVOKER_SA}.email}`);
    expect(oidc?.['audience']).toBe('${http_target.value}');
    expect(String(dynamicBlock(job, 'http_target')?.['for_each'])).toContain(
      'google_cloudfunctions2_function.governor.service_config[0].uri',
    );
    expect(http?.['http_method']).toBe('POST');

    const invokers = iamMembers(module).filter(([, body]) =>
      stringsIn(body).some((s) => s === 'roles/run.invoker'),
    );
    expect(invokers.map(([key]) => key)).toEqual([
      'google_cloud_run_v2_service_iam_member.invoker',
    ]);
    const invoker = invokers[0]?.[1];
    expect(invoker?.['member']).toBe(`serviceAccount:\${${INVOKER_SA}.email}`);
    expect(invoker?.['name']).toBe(
      '${google_cloudfunctions2_function.governor.service_config[0].service}',
    );
    expect(allText(module).match(/role\s*=\s*"roles\/run\.invoker"/g)?.length).toBe(1);
  });

  it("the scheduler's attempt deadline outlasts the longest run and stays within Google's 30 minutes", () => {
    // Job.attempt_deadline for HTTP targets: "in the interval [15 seconds, 30 minutes]".
    const job = resource(module, 'google_cloud_scheduler_job', 'governor');
    const deadline = String(job['attempt_deadline']);
    const slack = /var\.function\.timeout_seconds \+ (\d+)/.exec(deadline);
    expect(slack, deadline).not.toBeNull();
    const bounds = validations(module, 'function')
      .map((v) => /timeout_seconds\s*<=\s*(\d+)/.exec(String(v['condition'])))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]));
    expect(bounds.length).toBeGreaterThan(0);
    const longest = Math.min(...bounds);
    expect(longest + Number(slack?.[1])).toBeLessThanOrEqual(1800);
    expect(60 + Number(slack?.[1])).toBeGreaterThanOrEqual(15);
  });

  it('the scheduler has retry settings, cron and time zone from variables', () => {
    const job = resource(module, 'google_cloud_scheduler_job', 'governor');
    expect(job['schedule']).toBe('${var.schedule}');
    expect(job['time_zone']).toBe('${var.time_zone}');
    expect(block(job, 'retry_config')?.['retry_count']).toBe('${var.scheduler_retry.retry_count}');
    expect(job['depends_on']).toContain('${google_cloud_run_v2_service_iam_member.invoker}');
  });

  it('the function precondition keeps the policy on the module topic', () => {
    const fn = resource(module, 'google_cloudfunctions2_function', 'governor');
    const pre = block(block(fn, 'lifecycle'), 'precondition');
    expect(pre).toBeDefined();
    expect(String(module.locals['policy'])).toContain(
      'merge({ topic = google_pubsub_topic.alerts.id }, try(local.policy_input.alerts, {}))',
    );
  });
});

describe('alerts', () => {
  it('creates the topic with retention, and a subscription with a dead-letter topic on demand', () => {
    const topic = resource(module, 'google_pubsub_topic', 'alerts');
    expect(topic['message_retention_duration']).toBe('${var.alerts.message_retention_duration}');
    const sub = resource(module, 'google_pubsub_subscription', 'alerts');
    expect(sub['count']).toBe('${local.subscribe ? 1 : 0}');
    expect(block(sub, 'dead_letter_policy')?.['dead_letter_topic']).toBe(
      '${google_pubsub_topic.dead_letter[0].id}',
    );
    expect(dynamicContent(sub, 'push_config')?.['push_endpoint']).toBe(
      '${push_config.value.push_endpoint}',
    );
    resource(module, 'google_pubsub_subscription', 'dead_letter');
  });

  /** The preconditions of a resource whose error message matches, evaluated for `vars`. */
  function preconditionsHold(type: string, name: string, message: RegExp, vars: object): boolean {
    const list = block(resource(module, type, name), 'lifecycle')?.['precondition'];
    const checks = (Array.isArray(list) ? (list as Body[]) : []).filter((p) =>
      message.test(String(p['error_message'])),
    );
    expect(checks.length, `${type}.${name}: a precondition saying ${String(message)}`).toBe(1);
    return checks.every(
      (p) => evaluateCondition(String(p['condition']), vars as Record<string, unknown>) === true,
    );
  }

  // Subscription and topic ids are unique in a project: a second resource of the same name fails
  // the apply halfway (Pub/Sub answers ALREADY_EXISTS), after the other resources were created.
  it.each([
    [null, true],
    ['oncall', true],
    ['gpu-governor-alerts-subscription', true],
    ['gpu-governor-alerts-dead-letter', false],
  ])('alerts.subscription.name = %s passes the plan: %s', (subscriptionName, ok) => {
    expect(
      preconditionsHold('google_pubsub_subscription', 'alerts', /dead-letter subscription/, {
        alerts: { subscription: { name: subscriptionName } },
        local: { alert_topic_name: 'gpu-governor-alerts' },
      }),
    ).toBe(ok);
  });

  it.each([
    ['gpu-governor-alerts', false, true],
    ['gpu-governor-trigger', false, false],
    ['gpu-governor-trigger', true, true],
    ['gpu-governor', false, true],
  ])('alert topic %s (http = %s) passes the plan: %s', (topic, http, ok) => {
    const vars = { name: 'gpu-governor', local: { alert_topic_name: topic, http } };
    expect(preconditionsHold('google_pubsub_topic', 'alerts', /trigger topic/, vars)).toBe(ok);
  });

  it('gives the alert subscription the settings alerts.subscription documents, not fixed ones', () => {
    const sub = resource(module, 'google_pubsub_subscription', 'alerts');
    for (const key of [
      'filter',
      'ack_deadline_seconds',
      'message_retention_duration',
      'enable_message_ordering',
    ]) {
      expect(sub[key], key).toBe(`\${var.alerts.subscription.${key}}`);
    }
    expect(block(sub, 'dead_letter_policy')?.['max_delivery_attempts']).toBe(
      '${var.alerts.subscription.max_delivery_attempts}',
    );
    expect(block(dynamicContent(sub, 'push_config'), 'oidc_token')).toEqual({
      service_account_email: '${push_config.value.push_service_account_email}',
      audience: '${push_config.value.push_audience}',
    });
  });

  it('attaches a schema only when given one, never the JSON Schema', () => {
    const topic = resource(module, 'google_pubsub_topic', 'alerts');
    expect(dynamicBlock(topic, 'schema_settings')?.['for_each']).toBe(
      '${var.alerts.schema == null ? [] : [var.alerts.schema.encoding]}',
    );
    expect(allText(module)).not.toContain('alert.schema.json")');
    expect(allText(module)).not.toMatch(/file\([^)]*schema/);
  });
});

describe('outputs', () => {
  it('exist as listed, each described', () => {
    for (const name of [
      'function_uri',
      'service_account_email',
      'alert_topic_id',
      'dead_letter_topic_id',
      'trigger_topic_id',
      'alert_subscription_id',
      'scheduler_job_name',
    ]) {
      const output = module.outputs.get(name);
      expect(output, name).toBeDefined();
      expect(String(output?.['description']).length, name).toBeGreaterThan(10);
    }
    expect(module.outputs.get('function_uri')?.['value']).toBe(
      '${google_cloudfunctions2_function.governor.service_config[0].uri}',
    );
    expect(module.outputs.get('service_account_email')?.['value']).toBe(`\${${GOVERNOR_SA}.email}`);
  });
});

/** The JS RegExp of a validation's regex("(?i)...") (RE2's inline flag becomes the `i` flag). */
function caseInsensitiveRegexIn(condition: unknown): RegExp {
  const pattern = patternIn(condition);
  expect(pattern.startsWith('(?i)')).toBe(true);
  return new RegExp(pattern.slice('(?i)'.length), 'i');
}

describe('hardening (security review)', () => {
  it('run.services.update: only on the listed services by default, never a predefined role', () => {
    // Checked in "grants run.services.update on each listed service ..." above; here: nothing
    // else grants any run.* write, and the read role is the only project-wide Cloud Run grant.
    const projectBindings = resourcesOf(module, 'google_project_iam_member');
    expect([...projectBindings.keys()].sort()).toEqual(
      [
        'build_logs',
        'build_reads_function_sources',
        'governor',
        'governor_state',
        'governor_writes_project_wide',
        // cloudquotas.quotas.update alone, only with quota_requests = true (no run.* write).
        'governor_quota_requests',
      ].sort(),
    );
  });

  it('the build account gets its roles on the bucket and repository, not the project', () => {
    const projectRoles = [...resourcesOf(module, 'google_project_iam_member').values()].map((b) =>
      String(b['role']),
    );
    expect(projectRoles).not.toContain('roles/storage.objectAdmin');
    expect(projectRoles).not.toContain('roles/artifactregistry.writer');
    expect(resource(module, 'google_project_iam_member', 'build_logs')['role']).toBe(
      'roles/logging.logWriter',
    );
    const bucket = resource(module, 'google_storage_bucket_iam_member', 'build_reads_source');
    expect(bucket['bucket']).toBe('${google_storage_bucket_object.source.bucket}');
    expect(bucket['role']).toBe('roles/storage.objectAdmin');
    const repo = resource(
      module,
      'google_artifact_registry_repository_iam_member',
      'build_writes_images',
    );
    expect(repo['repository']).toBe('${google_artifact_registry_repository.function.name}');
    expect(repo['role']).toBe('roles/artifactregistry.writer');
    for (const binding of [bucket, repo]) {
      expect(binding['member']).toBe('serviceAccount:${local.build_service_account}');
    }
    // The build pushes to that repository, not to the project's shared gcf-artifacts.
    const fn = resource(module, 'google_cloudfunctions2_function', 'governor');
    expect(block(fn, 'build_config')?.['docker_repository']).toBe(
      '${google_artifact_registry_repository.function.id}',
    );
    expect(resource(module, 'google_artifact_registry_repository', 'function')['format']).toBe(
      'DOCKER',
    );
  });

  // Cloud Functions copies the archive into a source bucket of its own, gcf-v2-sources-
  // PROJECT_NUMBER-REGION ("After the code is uploaded, function code is stored in a separate source
  // bucket": https://cloud.google.com/functions/docs/building), and the build fetches it from
  // there: a build account without read access there fails every build with "Access to bucket
  // gcf-v2-sources-... denied. You must grant Storage Object Viewer permission to <account>"
  // (https://github.com/hashicorp/terraform-provider-google/issues/20571).
  it("the build account reads Cloud Functions' source bucket, through a condition on its name", () => {
    expect(module.locals['function_sources_bucket']).toBe(
      'gcf-v2-sources-${data.google_project.this.number}-${var.region}',
    );
    const binding = resource(module, 'google_project_iam_member', 'build_reads_function_sources');
    expect(binding['count']).toBe('${local.create_build_account ? 1 : 0}');
    expect(binding['project']).toBe('${var.project_id}');
    expect(binding['role']).toBe('roles/storage.objectViewer');
    expect(binding['member']).toBe('serviceAccount:${local.build_service_account}');
    expect(block(binding, 'condition')?.['expression']).toBe(
      'resource.name == "projects/_/buckets/${local.function_sources_bucket}" || resource.name.startsWith("projects/_/buckets/${local.function_sources_bucket}/")',
    );
    const fn = resource(module, 'google_cloudfunctions2_function', 'governor');
    expect(fn['depends_on']).toContain('${google_project_iam_member.build_reads_function_sources}');
    // An account given in build_service_account gets nothing from the module: the README says
    // what to grant it, that bucket included.
    const readme = readFileSync('terraform/README.md', 'utf8');
    expect(readme).toContain('gcf-v2-sources-PROJECT_NUMBER-REGION');
  });

  it("function.environment refuses GOVERNOR_STATE_DIR: the module's store is Firestore, and the function refuses a folder beside it", () => {
    // Not caught here, every run of the function would fail as misconfigured.
    const found = validations(module, 'function').find((v) =>
      String(v['condition']).includes('GOVERNOR_STATE_DIR'),
    );
    expect(String(found?.['error_message'])).toContain('GOVERNOR_STATE_DIR');
    // Every key of the environment, held to not being it (hcl.ts evaluates no `keys` or `for`).
    expect(String(found?.['condition']).replace(/\s+/g, ' ')).toMatch(
      /alltrue\(\[ ?for key in keys\(var\.function\.environment\) ?: key != "GOVERNOR_STATE_DIR" ?\]\)/,
    );
    // The function itself refuses it beside the store the module sets.
    expect(() =>
      parseRuntimeOptions({ GOVERNOR_STATE_STORE: 'firestore', GOVERNOR_STATE_DIR: '/tmp/state' }),
    ).toThrow(
      /GOVERNOR_STATE_DIR: names the file store's folder, but GOVERNOR_STATE_STORE is firestore/,
    );
  });

  it('function.environment refuses names that redirect the API calls', () => {
    const condition = validations(module, 'function')
      .map((v) => String(v['condition']))
      .find((c) => c.includes('_EMULATOR_HOST'));
    const re = caseInsensitiveRegexIn(condition);
    for (const bad of [
      'PUBSUB_EMULATOR_HOST',
      'FIRESTORE_EMULATOR_HOST',
      'GOVERNOR_EMULATOR_HOST',
      'GOVERNOR_EMULATOR_ADMIN',
      'STORAGE_EMULATOR_HOST',
      'pubsub_emulator_host',
      'HTTPS_PROXY',
      'http_proxy',
      'GRPC_PROXY',
      'NODE_TLS_REJECT_UNAUTHORIZED',
      'NODE_EXTRA_CA_CERTS',
      'NODE_OPTIONS',
      'GOOGLE_APPLICATION_CREDENTIALS',
    ]) {
      expect(re.test(bad), bad).toBe(true);
    }
    for (const ok of ['TEAM', 'LOG_LEVEL', 'EMULATOR_HOST_NOTE', 'NO_PROXY', 'GRPC_TRACE']) {
      expect(re.test(ok), ok).toBe(false);
    }
  });

  it('state: a database of its own, never (default), reached through a condition on its name', () => {
    const condition = validations(module, 'state')
      .map((v) => String(v['condition']))
      .find((c) => c.includes('database_id'));
    expect(condition).not.toContain('(default)');
    const re = regexIn(condition);
    expect(re.test('gpu-governor')).toBe(true);
    expect(re.test('(default)')).toBe(false);
    const type = String(module.variables.get('state')?.['type']);
    expect(type).toContain('create_database     = optional(bool, true)');
    expect(type).toContain('database_id         = optional(string, "gpu-governor")');
    const state = resource(module, 'google_project_iam_member', 'governor_state');
    expect(String(block(state, 'condition')?.['expression'])).toContain(
      'resource.name == "projects/${var.project_id}/databases/${local.database_id}"',
    );
  });

  it('push subscriptions always carry an OIDC token', () => {
    const condition = validations(module, 'alerts')
      .map((v) => String(v['condition']))
      .find((c) => c.includes('push_service_account_email != null'));
    expect(condition).toContain(
      'var.alerts.subscription.push_endpoint == null || var.alerts.subscription.push_service_account_email != null',
    );
    const sub = resource(module, 'google_pubsub_subscription', 'alerts');
    const push = dynamicContent(sub, 'push_config');
    // A plain block, not a dynamic one that an unset account would leave out.
    expect(block(push, 'oidc_token')?.['service_account_email']).toBe(
      '${push_config.value.push_service_account_email}',
    );
    expect(block(push, 'dynamic')).toBeUndefined();
  });

  // "The user-managed service account must be in the same project as the push subscription"
  // (https://cloud.google.com/pubsub/docs/create-push-subscription, prerequisites for enabling
  // authentication): the subscription is in project_id, so an account of another project is
  // refused at plan time rather than by the API.
  it.each([
    [null, true],
    ['alerts-push@gpu-host.iam.gserviceaccount.com', true],
    ['gpu-host@appspot.gserviceaccount.com', true],
    ['123456789012-compute@developer.gserviceaccount.com', true],
    ['alerts-push@other-project.iam.gserviceaccount.com', false],
    ['other-project@appspot.gserviceaccount.com', false],
    ['999999999999-compute@developer.gserviceaccount.com', false],
    ['alerts-push@gpu-host-2.iam.gserviceaccount.com', false],
  ])("the push account %s is accepted: %s, being of the subscription's project", (email, ok) => {
    const sub = resource(module, 'google_pubsub_subscription', 'alerts');
    const preconditions = (block(sub, 'lifecycle')?.['precondition'] ?? []) as Body[];
    const check = preconditions.find((p) =>
      String(p['condition']).includes('push_service_account_email'),
    );
    expect(check, 'a precondition on the push account').toBeDefined();
    expect(String(check?.['error_message'])).toMatch(
      /^alerts\.subscription\.push_service_account_email /,
    );
    const vars = {
      project_id: 'gpu-host',
      alerts: {
        subscription: {
          push_endpoint: email === null ? null : 'https://alerts.example.com/push',
          push_service_account_email: email,
        },
      },
      data: { google_project: { this: { number: '123456789012' } } },
    };
    expect(evaluateCondition(String(check?.['condition']), vars)).toBe(ok);
  });

  it('only Cloud Scheduler may publish to the trigger topic (through the topic policy)', () => {
    const binding = resource(module, 'google_pubsub_topic_iam_binding', 'trigger_publishers');
    expect(binding['topic']).toBe('${google_pubsub_topic.trigger[0].name}');
    expect(binding['role']).toBe('roles/pubsub.publisher');
    expect(binding['members']).toEqual(['${local.scheduler_service_agent}']);
    expect(module.locals['scheduler_service_agent']).toBe(
      'serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com',
    );
    // No other grant names the trigger topic.
    const onTrigger = [...module.resources].filter(
      ([key, body]) => key.includes('iam') && stringsIn(body).some((s) => s.includes('trigger')),
    );
    expect(onTrigger.map(([key]) => key)).toEqual([
      'google_pubsub_topic_iam_binding.trigger_publishers',
    ]);
  });
});

describe('the invoker binding on the function', () => {
  // ServiceConfig.service: "The format of this field is
  // projects/{project}/locations/{region}/services/{service}"
  // (https://cloud.google.com/php/docs/reference/cloud-functions/latest/V2.ServiceConfig); the
  // provider's google_cloud_run_v2_service_iam_* parse a long name as well as a short one ("We
  // may have gotten either a long or short name", CloudRunV2ServiceIamUpdaterProducer in
  // google/services/cloudrunv2/iam_cloud_run_v2_service.go of hashicorp/terraform-provider-google).
  it("names the service by the function's service_config[0].service, which the provider parses", () => {
    const invoker = resource(module, 'google_cloud_run_v2_service_iam_member', 'invoker');
    expect(invoker['name']).toBe(
      '${google_cloudfunctions2_function.governor.service_config[0].service}',
    );
    const readme = readFileSync('terraform/README.md', 'utf8');
    const start = readme.indexOf('## What only a real project can confirm');
    const toConfirm = readme.slice(start, readme.indexOf('\n## ', start + 1));
    expect(toConfirm).not.toContain('service_config[0].service');
  });
});

describe('who can start a run in the Pub/Sub variant (terraform/README.md, Hardening)', () => {
  // "a Cloud Scheduler Admin (or any custom role with the permission cloudscheduler.jobs.create)
  // can create jobs that publish to any Pub/Sub topics within the project"
  // (https://cloud.google.com/scheduler/docs/access-control): the topic's own policy does not
  // stop them, since the job publishes as Cloud Scheduler's service agent.
  it('names the principals who may create Cloud Scheduler jobs in the project', () => {
    const readme = readFileSync('terraform/README.md', 'utf8');
    const start = readme.indexOf("- The trigger topic's publisher role has one member");
    expect(start).toBeGreaterThan(0);
    const bullet = readme.slice(start, readme.indexOf('\n\n', start));
    expect(bullet).toContain('cloudscheduler.jobs.create');
    expect(bullet).toContain('(https://cloud.google.com/scheduler/docs/access-control)');
  });
});

describe('who deploys (terraform/README.md)', () => {
  // monitoring.tf creates a dashboard and an alert policy in every governed project:
  // monitoring.dashboards.create and monitoring.alertPolicies.create there
  // (https://cloud.google.com/iam/docs/roles-permissions/monitoring), which none of the other
  // roles the README lists holds.
  it("names the roles monitoring.tf's dashboard and alert policy need in every governed project", () => {
    expect(resource(module, 'google_monitoring_dashboard', 'governor')['for_each']).toContain(
      'local.governed_projects',
    );
    expect(resource(module, 'google_monitoring_alert_policy', 'not_running')['for_each']).toContain(
      'local.governed_projects',
    );
    const readme = readFileSync('terraform/README.md', 'utf8');
    const start = readme.indexOf('- **Who deploys.**');
    const who = readme.slice(start, readme.indexOf('\n- ', start + 1));
    const everyProject = who.slice(who.indexOf('In every'));
    expect(everyProject).toContain('`roles/monitoring.dashboardEditor`');
    expect(everyProject).toContain('`roles/monitoring.alertPolicyEditor`');
    // And the run metric's descriptor (monitoring.tf), which neither of those holds.
    expect(resource(module, 'google_monitoring_metric_descriptor', 'run')['for_each']).toBe(
      '${local.governed_projects}',
    );
    expect(everyProject).toContain('`monitoring.metricDescriptors.create`');
  });
});

describe('hardening: what remains possible, documented with its mitigations', () => {
  const readme = () => readFileSync('terraform/README.md', 'utf8');
  const section = () => {
    const text = readme();
    const start = text.indexOf(
      '**What a compromised function can still do, and the mitigations.**',
    );
    expect(start, 'the section on what a compromised function can still do').toBeGreaterThan(0);
    return text.slice(start, text.indexOf('\n### ', start));
  };

  it('says what a compromised function can still do on the services it may write', () => {
    expect(section()).toMatch(/redeploy that service with any image/);
    expect(section()).toMatch(/cannot narrow `UpdateService` to a field/);
  });

  it('names Binary Authorization, with its source and its effect on the scaling writes', () => {
    expect(section()).toContain(
      '(https://cloud.google.com/binary-authorization/docs/run/enabling-binauthz-cloud-run)',
    );
    expect(section()).toMatch(/the governor's writes fail too/);
  });

  it('gives an alert on any non-scaling change by the governor, read from the audit logs', () => {
    const filter = /```\n([\s\S]*?)```/.exec(section())?.[1] ?? '';
    expect(section()).toContain('(https://cloud.google.com/run/docs/audit-logging)');
    expect(filter).toContain('protoPayload.serviceName="run.googleapis.com"');
    expect(filter).toContain('protoPayload.authenticationInfo.principalEmail="GOVERNOR_SA_EMAIL"');
    // Any other method, or an UpdateService that carries a template (a new revision).
    expect(filter).toContain(
      'protoPayload.methodName!="google.cloud.run.v2.Services.UpdateService"',
    );
    expect(filter).toContain('protoPayload.request.service.template:*');
    // The fields the filter relies on the governor never sending: its update mask names only
    // these (test/adapters/cloud-run.int.test.ts checks the mask on the wire).
    const adapter = readFileSync('src/adapters/cloud-run.ts', 'utf8');
    expect(adapter).toContain(
      "const paths = ['scaling.max_instance_count', ...(writeAnnotations ? ['annotations'] : [])];",
    );
    expect(adapter).toContain(
      'const service: Service = { name, etag, scaling: { maxInstanceCount: update.maxInstances } };',
    );
  });
});

describe('retries of a failed run', () => {
  // The choice: a failed run is not redelivered; the next scheduled run is the retry.
  it('the Pub/Sub trigger does not retry', () => {
    const fn = resource(module, 'google_cloudfunctions2_function', 'governor');
    expect(dynamicContent(fn, 'event_trigger')?.['retry_policy']).toBe('RETRY_POLICY_DO_NOT_RETRY');
  });

  it('the code and the docs say the same', () => {
    const claims = /Pub\/Sub redelivers|redelivers the trigger|so that Pub\/Sub redelivers/i;
    for (const file of [
      'src/function/index.ts',
      'README.md',
      'docs/applying.md',
      'terraform/README.md',
    ]) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(claims);
    }
    expect(readFileSync('src/function/index.ts', 'utf8')).toContain('RETRY_POLICY_DO_NOT_RETRY');
    expect(readFileSync('terraform/README.md', 'utf8')).toContain('RETRY_POLICY_DO_NOT_RETRY');
  });
});

describe('signals.tf', () => {
  it("defines, in every governed project, the counter of Cloud Run's 429s the adapter reads", () => {
    const metric = resource(module, 'google_logging_metric', 'refused_requests');
    expect(metric['for_each']).toBe('${local.governed_projects}');
    expect(metric['project']).toBe('${each.key}');
    // The adapter reads logging.googleapis.com/user/<name>.
    const adapter = readFileSync('src/adapters/monitoring.ts', 'utf8');
    expect(adapter).toContain(`'logging.googleapis.com/user/${String(metric['name'])}'`);
    const filter = String(metric['filter']);
    expect(filter).toContain('resource.type="cloud_run_revision"');
    expect(filter).toContain('log_id("run.googleapis.com/requests")');
    expect(filter).toContain('httpRequest.status=429');
    expect(block(metric, 'metric_descriptor')).toMatchObject({
      metric_kind: 'DELTA',
      value_type: 'INT64',
    });
  });
});

describe('state.collection against what the function accepts', () => {
  it('refuses at plan time a collection id the function would refuse at every run', () => {
    // Firestore counts a collection id's 1,500 in bytes of UTF-8, and so does the function
    // (src/runtime-options.ts): one the module let through would make every run misconfigured.
    const accepts = (collection: string) =>
      validations(module, 'state').every(
        (v) =>
          evaluateCondition(String(v['condition']), {
            state: { database_id: 'gpu-governor', location_id: null, collection },
          }) === true,
      );
    const functionAccepts = (collection: string) => {
      try {
        parseRuntimeOptions({
          GOVERNOR_STATE_STORE: 'firestore',
          GOVERNOR_FIRESTORE_COLLECTION: collection,
        });
        return true;
      } catch {
        return false;
      }
    };
    for (const collection of [
      'gpu-governor',
      'a'.repeat(1_500),
      'a'.repeat(1_501),
      'é'.repeat(750),
      'é'.repeat(751),
      'é'.repeat(1_000),
      'a/b',
    ]) {
      expect(accepts(collection), `${collection.slice(0, 3)}… (${collection.length})`).toBe(
        functionAccepts(collection),
      );
    }
  });
});
