import { beforeAll, describe, expect, it } from 'vitest';
import {
  allText,
  block,
  type Body,
  type Config,
  dynamicBlock,
  dynamicContent,
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
  const match = /regex\("((?:[^"\\]|\\.)*)"/.exec(String(condition));
  if (match?.[1] === undefined) throw new Error(`no regex in ${String(condition)}`);
  return new RegExp(JSON.parse(`"${match[1]}"`) as string);
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

  it('validates the time zone', () => {
    const condition = String(validations(module, 'time_zone')[0]?.['condition']);
    expect(condition).toContain('"UTC"');
    const re = regexIn(condition);
    for (const ok of ['Etc/UTC', 'Europe/Paris', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5']) {
      expect(re.test(ok), ok).toBe(true);
    }
    for (const bad of ['utc', 'Paris', 'Europe/', '+02:00', 'CET ']) {
      expect(re.test(bad), bad).toBe(false);
    }
  });

  it('keeps the run deadline shorter than the function timeout, in the same variable', () => {
    const conditions = validations(module, 'function').map((v) => String(v['condition']));
    expect(conditions.some((c) => /run_deadline/.test(c) && /timeout_seconds/.test(c))).toBe(true);
    expect(conditions.some((c) => /timeout_seconds\s*<=\s*3600/.test(c))).toBe(true);
    const fn = String(module.variables.get('function')?.['type']);
    expect(fn).toContain('run_deadline     = optional(string, "240s")');
    expect(fn).toContain('timeout_seconds  = optional(number, 300)');
  });

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
    // The only mention of the default compute account is the validation that refuses it.
    const mentions = text.split('\n').filter((l) => l.includes('-compute@developer'));
    expect(mentions.length).toBe(1);
    expect(mentions[0]).toContain('!can(regex(');
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
      'GOVERNOR_LOG_FORMAT           = "json"',
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
});

describe('identity and permissions', () => {
  it('the custom role holds exactly the permissions the code uses', () => {
    const role = resource(module, 'google_project_iam_custom_role', 'governor');
    expect(role['permissions']).toBe('${local.governor_permissions}');
    const permissions = module.locals['governor_permissions'];
    expect(Array.isArray(permissions)).toBe(true);
    expect(new Set(permissions as string[])).toEqual(
      new Set([
        'run.services.list',
        'run.services.get',
        'run.services.update',
        'run.operations.get',
        'monitoring.timeSeries.list',
        'cloudquotas.quotas.get',
      ]),
    );
    expect((permissions as string[]).length).toBe(6);
  });

  it('grants the custom role to the governor in every governed project', () => {
    const binding = resource(module, 'google_project_iam_member', 'governor');
    expect(binding['for_each']).toBe('${local.governed_projects}');
    expect(binding['role']).toBe('${google_project_iam_custom_role.governor[each.key].id}');
    expect(binding['member']).toBe('${local.governor_member}');
    expect(module.locals['governor_member']).toBe(`serviceAccount:\${${GOVERNOR_SA}.email}`);
    expect(module.locals['governed_projects']).toBe('${toset(local.policy_input.projects)}');
  });

  it('every binding of the governor is one of the four it needs', () => {
    const governor = iamMembers(module).filter(([, body]) =>
      String(body['member']).includes('local.governor_member'),
    );
    expect(Object.fromEntries(governor.map(([key, body]) => [key, body['role']]))).toEqual({
      'google_project_iam_member.governor':
        '${google_project_iam_custom_role.governor[each.key].id}',
      'google_service_account_iam_member.governor_acts_as': 'roles/iam.serviceAccountUser',
      'google_project_iam_member.governor_state': 'roles/datastore.user',
      'google_pubsub_topic_iam_member.governor_publishes_alerts': 'roles/pubsub.publisher',
    });
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

  it('acts as the governed services runtime accounts listed, and no others', () => {
    const actAs = resource(module, 'google_service_account_iam_member', 'governor_acts_as');
    expect(actAs['for_each']).toBe('${toset(var.governed_service_accounts)}');
    expect(actAs['service_account_id']).toBe('projects/-/serviceAccounts/${each.key}');
    expect(module.variables.get('governed_service_accounts')?.['default']).toEqual([]);
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
