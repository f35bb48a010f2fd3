import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { block, type Body, type Config, isBody, loadConfig } from './hcl.js';

/**
 * Each example is a complete root module: it pins Terraform and the provider, configures the
 * provider, calls the module by relative path with every required input, declares every variable
 * it uses, and hands the module a policy the governor accepts.
 */

const EXAMPLES = ['basic', 'multi-region'] as const;

let module: Config;
const examples = new Map<string, Config>();
beforeAll(async () => {
  module = await loadConfig('terraform');
  for (const name of EXAMPLES) examples.set(name, await loadConfig(`terraform/examples/${name}`));
});

function example(name: string): Config {
  const config = examples.get(name);
  if (config === undefined) throw new Error(`example ${name} not loaded`);
  return config;
}

function governorModule(config: Config): Body {
  const call = config.modules.get('gpu_governor');
  if (call === undefined) throw new Error(`${config.dir} does not call module "gpu_governor"`);
  return call;
}

/** What the module does to the policy before the function sees it (alerts.topic filled in). */
function asDeployed(policy: unknown, project: string): unknown {
  if (!isBody(policy)) return policy;
  const alerts = isBody(policy['alerts']) ? policy['alerts'] : {};
  return {
    ...policy,
    alerts: { topic: `projects/${project}/topics/gpu-governor-alerts`, ...alerts },
  };
}

/** Replaces "${var.x}" in strings of an hcl2json value with the given values. */
function substitute(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{var\.([a-z_]+)\}/g, (whole, name: string) => vars[name] ?? whole);
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (isBody(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  }
  return value;
}

/** Renders the multi-region policy template the way templatefile() does, for its constructs. */
function renderPolicyTemplate(text: string, project: string, regions: string[]): string {
  const rendered = text
    .replace(
      /%\{ for (\w+) in regions ~\}\n([\s\S]*?)%\{ endfor ~\}\n/g,
      (_whole, name: string, body: string) =>
        regions.map((region) => body.replaceAll(`\${${name}}`, region)).join(''),
    )
    .replaceAll('${join(", ", regions)}', regions.join(', '))
    .replaceAll('${project_id}', project);
  if (/[$%]\{/.test(rendered)) throw new Error(`unrendered template syntax left:\n${rendered}`);
  return rendered;
}

describe.each(EXAMPLES)('examples/%s', (name) => {
  it('pins Terraform and the google provider like the module', () => {
    const tf = example(name).terraform[0];
    expect(tf?.['required_version']).toBe(module.terraform[0]?.['required_version']);
    const pinned = block(tf, 'required_providers')?.['google'];
    expect(pinned).toEqual(block(module.terraform[0], 'required_providers')?.['google']);
    expect(example(name).providers.has('google')).toBe(true);
  });

  it('calls the module by relative path', () => {
    expect(governorModule(example(name))['source']).toBe('../..');
  });

  it('sets every required input, and only inputs the module declares', () => {
    const call = governorModule(example(name));
    const args = Object.keys(call).filter(
      (k) => !['source', 'providers', 'depends_on'].includes(k),
    );
    for (const arg of args) expect(module.variables.has(arg), arg).toBe(true);
    const required = [...module.variables]
      .filter(([, body]) => !('default' in body))
      .map(([variable]) => variable);
    expect(required.sort()).toEqual(['policy', 'project_id', 'region', 'source_archive']);
    for (const variable of required) expect(args, variable).toContain(variable);
  });

  it('declares every variable it uses, each typed and described', () => {
    const config = example(name);
    const text = [...config.text.values()].join('\n');
    for (const m of text.matchAll(/\bvar\.([a-z_][a-z0-9_]*)/g)) {
      expect(config.variables.has(m[1] ?? ''), m[0]).toBe(true);
    }
    for (const [variable, body] of config.variables) {
      expect(body['type'], variable).toBeDefined();
      expect(body['description'], variable).toBeDefined();
    }
  });

  it('outputs only what the module outputs', () => {
    for (const [output, body] of example(name).outputs) {
      const ref = /^\$\{module\.gpu_governor\.([a-z_]+)\}$/.exec(String(body['value']));
      expect(ref, output).not.toBeNull();
      expect(module.outputs.has(ref?.[1] ?? ''), output).toBe(true);
    }
  });

  it('finds the archive that npm run package writes', () => {
    const archive = example(name).variables.get('source_archive')?.['default'];
    expect(join('terraform/examples', name, String(archive))).toBe(join('dist/function.zip'));
  });
});

describe('examples/basic', () => {
  it('governs one region in dry-run with a policy object the governor accepts', () => {
    const call = governorModule(example('basic'));
    const policy = substitute(call['policy'], {
      project_id: 'my-project',
      region: 'us-central1',
    });
    const parsed = parsePolicy(asDeployed(policy, 'my-project'));
    expect(parsed.mode).toBe('dry-run');
    expect(parsed.regions).toEqual(['us-central1']);
  });
});

describe('examples/multi-region', () => {
  const dir = 'terraform/examples/multi-region';

  it('governs several regions, both L4 pools in each, with a policy the governor accepts', () => {
    const config = example('multi-region');
    const regions = config.variables.get('governed_regions')?.['default'];
    expect(Array.isArray(regions) && regions.length).toBeGreaterThanOrEqual(2);
    const call = governorModule(config);
    expect(String(call['policy'])).toContain('templatefile("${path.module}/policy.yaml.tftpl"');
    const template = join(dir, 'policy.yaml.tftpl');
    expect(existsSync(template)).toBe(true);
    const text = renderPolicyTemplate(
      readFileSync(template, 'utf8'),
      'my-project',
      regions as string[],
    );
    const parsed = parsePolicy(asDeployed(parseYaml(text), 'my-project'));
    expect(parsed.regions).toEqual(regions);
    for (const region of regions as string[]) {
      const pools = (parsed.pools ?? []).filter((p) => p.region === region);
      expect(pools.map((p) => p.zonalRedundancy).sort()).toEqual([false, true]);
      expect(pools.every((p) => p.accelerator === 'nvidia-l4')).toBe(true);
    }
  });

  // Each service is granted on by name (google_cloud_run_v2_service_iam_member), and Cloud Run
  // answers NOT_FOUND for a service that does not exist: a default naming services the user's
  // project does not have would fail the apply halfway. The user names their own.
  it('takes the services it may update from the user, with no made-up default', () => {
    const writable = example('multi-region').variables.get('writable_services');
    expect(writable).toBeDefined();
    expect(writable && 'default' in writable).toBe(false);
    expect(String(governorModule(example('multi-region'))['write_access'])).not.toContain(
      'llm-chat',
    );
    const readme = readFileSync('terraform/README.md', 'utf8');
    expect(readme).toContain("-var 'writable_services=");
  });

  it('creates a subscription to the alerts', () => {
    const alerts = governorModule(example('multi-region'))['alerts'];
    expect(isBody(alerts) && isBody(alerts['subscription'])).toBe(true);
  });
});
