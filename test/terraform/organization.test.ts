import { beforeAll, describe, expect, it } from 'vitest';
import { block, loadConfig, resource, type Body, type Config } from './hcl.js';

/** Structural checks of the organisation variant (terraform/organization) and its example. */

let org: Config;
let single: Config;
let example: Config;
beforeAll(async () => {
  [org, single, example] = await Promise.all([
    loadConfig('terraform/organization'),
    loadConfig('terraform'),
    loadConfig('terraform/examples/org-folders'),
  ]);
});

describe('the organisation role', () => {
  it('holds exactly the single-project read permissions, the search, and the write when asked', () => {
    const read = org.locals['org_read_permissions'] as string[];
    const singleRead = single.locals['governor_read_permissions'] as string[];
    expect([...read].sort()).toEqual(
      [...singleRead, 'cloudasset.assets.searchAllResources'].sort(),
    );
    expect(org.locals['org_write_permissions']).toEqual([
      'run.services.update',
      'iam.serviceAccounts.actAs',
    ]);
    const role = resource(org, 'google_organization_iam_custom_role', 'governor');
    expect(role['org_id']).toBe('${var.organization_id}');
    expect(String(role['permissions'])).toMatch(
      /var\.write \? concat\(local\.org_read_permissions, local\.org_write_permissions\) : local\.org_read_permissions/,
    );
  });

  it('is granted on each folder, or on the organisation when no folder is named', () => {
    const folder = resource(org, 'google_folder_iam_member', 'governor');
    expect(folder['for_each']).toBe('${toset(var.folder_ids)}');
    expect(folder['role']).toBe('${google_organization_iam_custom_role.governor.name}');
    const whole = resource(org, 'google_organization_iam_member', 'governor');
    expect(whole['count']).toBe('${length(var.folder_ids) == 0 ? 1 : 0}');
    // Nothing broader: no other grant above the host project.
    const above = [...org.resources.keys()].filter((k) =>
      /^google_(organization|folder)_iam_(member|binding|policy)\./.test(k),
    );
    expect(above.sort()).toEqual([
      'google_folder_iam_member.governor',
      'google_organization_iam_member.governor',
    ]);
  });
});

describe('the work topic', () => {
  it('pushes to the unit function with an OIDC token, retries, then dead-letters', () => {
    const sub = resource(org, 'google_pubsub_subscription', 'work');
    const push = block(sub, 'push_config');
    expect(push?.['push_endpoint']).toBe(
      '${google_cloudfunctions2_function.unit.service_config[0].uri}',
    );
    const oidc = block(push, 'oidc_token');
    expect(oidc?.['service_account_email']).toBe('${google_service_account.invoker.email}');
    const dlq = block(sub, 'dead_letter_policy');
    expect(dlq?.['dead_letter_topic']).toBe('${google_pubsub_topic.dead_letter.id}');
    expect(dlq?.['max_delivery_attempts']).toBe('${var.max_delivery_attempts}');
    expect(block(sub, 'retry_policy')).toMatchObject({ minimum_backoff: '10s' });
    expect(sub['ack_deadline_seconds']).toBe('${var.timeout_seconds}');
  });

  it('tells the unit function the max delivery attempts of the same variable as the dead-letter policy', () => {
    const env = org.locals['environment'] as Record<string, string>;
    expect(env['GOVERNOR_MAX_DELIVERY_ATTEMPTS']).toBe('${tostring(var.max_delivery_attempts)}');
    const dlq = block(resource(org, 'google_pubsub_subscription', 'work'), 'dead_letter_policy');
    expect(dlq?.['max_delivery_attempts']).toBe('${var.max_delivery_attempts}');
    // The unit's environment is that one (its run deadline leaves it time to alert and answer
    // within the function's timeout, which is the subscription's ack deadline).
    const unit = block(resource(org, 'google_cloudfunctions2_function', 'unit'), 'service_config');
    expect(unit?.['environment_variables']).toBe('${local.environment}');
    expect(env['GOVERNOR_RUN_DEADLINE']).toBe('${var.timeout_seconds - 30}s');
    expect(unit?.['timeout_seconds']).toBe('${var.timeout_seconds}');
  });

  it("lets Pub/Sub's service agent forward dead letters, and alerts on them", () => {
    const pub = resource(org, 'google_pubsub_topic_iam_member', 'agent_publishes_dead_letters');
    expect(pub).toMatchObject({ role: 'roles/pubsub.publisher', member: '${local.pubsub_agent}' });
    const sub = resource(org, 'google_pubsub_subscription_iam_member', 'agent_subscribes_work');
    expect(sub).toMatchObject({ role: 'roles/pubsub.subscriber', member: '${local.pubsub_agent}' });
    const alert = resource(org, 'google_monitoring_alert_policy', 'dead_letters');
    const cond = block(alert, 'conditions');
    expect(String(block(cond, 'condition_threshold')?.['filter'])).toContain(
      'subscription/num_undelivered_messages',
    );
  });
});

describe('the functions', () => {
  it('bound the concurrency: one dispatch, unit_concurrency units of one request each', () => {
    const dispatch = block(
      resource(org, 'google_cloudfunctions2_function', 'dispatch'),
      'service_config',
    );
    expect(dispatch).toMatchObject({ max_instance_count: 1, max_instance_request_concurrency: 1 });
    const unit = resource(org, 'google_cloudfunctions2_function', 'unit');
    expect(block(unit, 'build_config')?.['entry_point']).toBe('governorUnit');
    expect(block(unit, 'service_config')).toMatchObject({
      max_instance_count: '${var.unit_concurrency}',
      max_instance_request_concurrency: 1,
    });
    expect(
      block(resource(org, 'google_cloudfunctions2_function', 'dispatch'), 'build_config')?.[
        'entry_point'
      ],
    ).toBe('governorDispatch');
  });

  it('rejects a delivery-attempt count Pub/Sub would refuse', () => {
    const v = org.variables.get('max_delivery_attempts') as Body;
    const validation = (v['validation'] as Body[])[0];
    expect(String(validation?.['condition'])).toContain('>= 5');
    expect(String(validation?.['condition'])).toContain('<= 100');
  });
});

describe('examples/org-folders', () => {
  it('governs three folders through the organisation module', () => {
    const mod = example.modules.get('gpu_governor_org');
    expect(mod?.['source']).toBe('../../organization');
    const folders = example.variables.get('folder_ids')?.['default'] as string[];
    expect(folders).toHaveLength(3);
    for (const key of Object.keys(mod ?? {}).filter((k) => k !== 'source'))
      expect(org.variables.has(key), key).toBe(true);
    for (const [name, v] of org.variables)
      if (!('default' in v)) expect(mod, name).toHaveProperty(name);
  });
});
