import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { AUDIT_RULE_IDS } from '../../src/core/audit-rules.js';
import { Match, parsePolicy, parsePolicyText } from '../../src/core/policy.js';
import { jsonSchemas } from '../../src/core/schemas.js';

function faultsOf(raw: unknown): string[] {
  try {
    parsePolicy(raw);
  } catch (e) {
    if (e instanceof InputError) return e.faults.map((f) => `${f.path}: ${f.message}`);
    throw e;
  }
  throw new Error('expected the policy to be rejected');
}

describe('policy', () => {
  it('accepts the commented example with every key, YAML and the same document as JSON', () => {
    const text = readFileSync('examples/policy.yaml', 'utf8');
    const policy = parsePolicyText(text);
    expect(policy.services).toHaveLength(3);
    expect(policy.services[0]?.schedule[0]?.timezone).toBe('America/New_York');
    expect(parsePolicyText(JSON.stringify(policy))).toEqual(policy);
  });

  it('the commented example names every key of the schema (the README says it shows them all)', () => {
    const keys = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (typeof node !== 'object' || node === null) return;
      const { properties } = node as { properties?: unknown };
      if (typeof properties === 'object' && properties !== null)
        for (const key of Object.keys(properties)) keys.add(key);
      Object.values(node).forEach(walk);
    };
    walk(jsonSchemas()['policy.schema.json']);
    expect(keys.size).toBeGreaterThan(50);
    // The audit's rule ids are listed in the README's "Fleet audit"; `$schema` is the example's
    // first line, for editors.
    const skip = new Set<string>(['$schema', ...AUDIT_RULE_IDS]);
    const text = readFileSync('examples/policy.yaml', 'utf8');
    const shown = (key: string) => new RegExp(`(^|[\\s{,#-])${key}:`, 'm').test(text);
    expect([...keys].filter((k) => !skip.has(k) && !shown(k))).toEqual([]);
  });

  it('fills the documented defaults', () => {
    const p = parsePolicy({ version: 1, projects: ['p'] });
    expect(p).toMatchObject({
      mode: 'enforce',
      reserve: 0,
      pools: [],
      services: [],
      defaults: {
        min: 1,
        weight: 1,
        priority: 0,
        headroom: 0.2,
        targetUtilization: 0.8,
        scaleDownDelay: '15m',
        lookback: '30m',
        staleAfter: '10m',
        reclaimWindow: '10m',
        reverseDelay: '30m',
        preempt: false,
      },
      limits: { maxChangesPerRun: 50 },
      alerts: { pressure: 0.9, renotifyAfter: '1h' },
    });
    expect(p.defaults.max).toBeUndefined();
  });

  it('the commented example shows each default as the schema fills it (its max is an example)', () => {
    const shown = parsePolicyText(readFileSync('examples/policy.yaml', 'utf8')).defaults;
    const filled = parsePolicy({ version: 1, projects: ['p'] }).defaults;
    expect({ ...shown, max: undefined }).toEqual({ ...filled, max: undefined });
  });

  it('lists every fault at once, each with its path', () => {
    const faults = faultsOf({
      version: 1,
      projects: ['p'],
      defaults: { min: 3, max: 2, weight: -1 },
      services: [{ match: {}, bogus: 1 }],
    });
    expect(faults).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^defaults\.weight: /),
        'services[0].bogus: unknown key',
        expect.stringMatching(/^defaults: min 3 is greater than max 2/),
      ]),
    );
  });

  it('accepts a min equal to the max, in the defaults, a rule and a window', () => {
    // Only a min greater than the max is a fault: equal pins the cap.
    const p = parsePolicy({
      version: 1,
      projects: ['p'],
      defaults: { min: 2, max: 2 },
      services: [
        {
          match: { name: 'a' },
          min: 3,
          max: 3,
          schedule: [{ start: '08:00', end: '20:00', min: 4, max: 4 }],
        },
        // A window's min equal to the rule's max, and the other way round.
        { match: { name: 'b' }, max: 5, schedule: [{ start: '08:00', end: '20:00', min: 5 }] },
        {
          match: { name: 'c' },
          min: 5,
          max: 9,
          schedule: [{ start: '08:00', end: '20:00', max: 5 }],
        },
      ],
    });
    expect(p.defaults).toMatchObject({ min: 2, max: 2 });
    expect(p.services[0]).toMatchObject({ min: 3, max: 3 });
  });

  it('names the key an unknown one is a typo of, at its own place, and only a near one', () => {
    const faults = faultsOf({
      version: 1,
      projects: ['p'],
      servcies: [],
      defaults: { headrom: 0.2, xyzzy: 1, mx: 3 },
      services: [{ match: { nam: 'llm-*' }, priorty: 10, schedule: [{ strat: '09:00' }] }],
      pools: [{ region: 'us-central1', qouta: 4 }],
      limits: { writesPerMinit: 5 },
    });
    expect(faults).toEqual(
      expect.arrayContaining([
        'servcies: unknown key (did you mean "services"?)',
        'defaults.headrom: unknown key (did you mean "headroom"?)',
        'defaults.xyzzy: unknown key',
        // Too short to guess: "mx" is one edit from "max" and from "min".
        'defaults.mx: unknown key',
        'services[0].match.nam: unknown key (did you mean "name"?)',
        'services[0].priorty: unknown key (did you mean "priority"?)',
        'services[0].schedule[0].strat: unknown key (did you mean "start"?)',
        'pools[0].qouta: unknown key (did you mean "quota"?)',
        'limits.writesPerMinit: unknown key (did you mean "writesPerMinute"?)',
      ]),
    );
  });

  it('bounds the windows read from Monitoring, and every duration', () => {
    const withDefaults = (defaults: Record<string, unknown>) => ({
      version: 1,
      projects: ['p'],
      defaults,
      services: [{ match: {} }],
    });
    // A lookback within Monitoring's latency reads running services as idle.
    expect(faultsOf(withDefaults({ lookback: '2m' }))).toEqual([
      'defaults.lookback: expected at least staleAfter (10m): a shorter window may hold no point of a running service, which then reads as idle',
    ]);
    expect(faultsOf(withDefaults({ staleAfter: '4m', lookback: '5m' }))).toEqual([
      expect.stringMatching(/^defaults\.staleAfter: expected at least 5m: Cloud Monitoring shows/),
    ]);
    expect(faultsOf(withDefaults({ lookback: '7d1m' }))).toEqual([
      'defaults.lookback: expected at most 7d: every minute of it is read for every service in each run',
    ]);
    expect(faultsOf(withDefaults({ reverseDelay: '99999999999999999999d' }))).toEqual([
      'defaults.reverseDelay: expected at most 366d',
    ]);
    expect(faultsOf(withDefaults({ scaleDownDelay: '366d1ms' }))).toEqual([
      'defaults.scaleDownDelay: expected at most 366d',
    ]);
    // Busy GPUs ÷ a target near 0 made a demand of 10^300 GPUs ("over target 0%"), and below
    // about 10^-308 an infinite one, which a plan's JSON writes as null ("unknown").
    for (const target of [1e-300, 0.001, 0.009]) {
      expect(faultsOf(withDefaults({ targetUtilization: target })), String(target)).toEqual([
        expect.stringMatching(/^defaults\.targetUtilization: expected at least 0\.01 \(1%\)/),
      ]);
    }
    expect(parsePolicy(withDefaults({ targetUtilization: 0.01 })).defaults.targetUtilization).toBe(
      0.01,
    );
    // Refusals are counted in whole minutes: a reclaim window under a minute would mean "never"
    // to its reader, but the planner would count the newest minute.
    expect(
      faultsOf({
        ...withDefaults({ reclaimWindow: '0s' }),
        services: [{ match: { name: 'a' }, reclaimWindow: '59s' }, { match: {} }],
      }),
    ).toEqual([
      'defaults.reclaimWindow: expected at least 1m: refusals are counted per minute, back from the newest',
      'services[0].reclaimWindow: expected at least 1m: refusals are counted per minute, back from the newest',
    ]);
    // A work message's age is judged with a minute of clock skew allowed: a fanout.staleAfter
    // under that drops every message on its delivery time alone, and nothing is governed.
    expect(
      faultsOf({
        ...withDefaults({}),
        fanout: { topic: 'projects/p/topics/work', staleAfter: '0s' },
      }),
    ).toEqual([
      'fanout.staleAfter: expected at least 1m: a work message is judged with a minute of clock skew allowed, so a shorter one would drop every message on its delivery time alone',
    ]);
    expect(() =>
      parsePolicy({
        ...withDefaults({}),
        fanout: { topic: 'projects/p/topics/work', staleAfter: '1m' },
      }),
    ).not.toThrow();
    // At the limits, and a lookback equal to staleAfter, are accepted.
    for (const defaults of [
      { staleAfter: '5m', lookback: '5m' },
      { lookback: '7d', reverseDelay: '366d' },
      { lookback: '10m' },
      { reclaimWindow: '1m', scaleDownDelay: '0s', reverseDelay: '0s' },
      // Longer than the lookback: refusals are read over the lookback, weights halve slower.
      { lookback: '10m', reclaimWindow: '600m' },
    ]) {
      expect(() => parsePolicy(withDefaults(defaults)), JSON.stringify(defaults)).not.toThrow();
    }
  });

  it('takes each unit of a duration once, largest first: anything else is a typo', () => {
    const withLookback = (lookback: string) => ({
      version: 1,
      projects: ['p'],
      defaults: { lookback },
      services: [{ match: {} }],
    });
    for (const typo of ['1h1h', '30m1h', '1m1m1m', '30s1m', '1ms1s', '1d1d']) {
      expect(faultsOf(withLookback(typo)), typo).toEqual([
        `defaults.lookback: ${JSON.stringify(typo)}: each unit once, largest first, e.g. "1h30m"`,
      ]);
    }
    expect(faultsOf(withLookback('1 hour'))).toEqual([
      'defaults.lookback: expected a duration such as "90s", "15m" or "1h30m"',
    ]);
    for (const lookback of ['1h30m', '1d2h3m4s5ms', '1h1ms', '10m', '600s', '1d']) {
      expect(() => parsePolicy(withLookback(lookback)), lookback).not.toThrow();
    }
  });

  it('rejects wrong types and unknown keys anywhere with their path', () => {
    const faults = faultsOf({
      version: 2,
      projects: 'p',
      mode: 'yolo',
      limits: { maxChangesPerRun: 0, extra: true },
      alerts: { topic: 'alerts', renotifyAfter: 'soon' },
    });
    expect(faults.join('\n')).toMatch(/^version: /m);
    expect(faults.join('\n')).toMatch(/^projects: /m);
    expect(faults.join('\n')).toMatch(/^mode: /m);
    expect(faults).toContain('limits.extra: unknown key');
    expect(faults.join('\n')).toMatch(/^limits\.maxChangesPerRun: /m);
    expect(faults.join('\n')).toMatch(
      /^alerts\.topic: expected "projects\/PROJECT\/topics\/TOPIC"/m,
    );
    expect(faults.join('\n')).toMatch(/^alerts\.renotifyAfter: expected a duration/m);
  });

  it('checks min ≤ max across defaults, rules and time windows', () => {
    const faults = faultsOf({
      version: 1,
      projects: ['p'],
      defaults: { min: 3, max: 4 },
      services: [
        { match: { name: 'a-*' }, min: 5 },
        {
          match: { name: 'b-*' },
          min: 1,
          max: 3,
          schedule: [{ start: '08:00', end: '18:00', min: 4 }],
        },
        // The min each inherits: the defaults' for a rule, the rule's for its window.
        { match: { name: 'c-*' }, max: 2 },
        { match: { name: 'd-*' }, schedule: [{ start: '08:00', end: '18:00', max: 2 }] },
      ],
    });
    expect(faults).toContain('services[0]: min 5 is greater than max 4 (with the defaults)');
    expect(faults).toContain(
      'services[1].schedule[0]: min 4 is greater than max 3 while the window holds',
    );
    expect(faults).toContain('services[2]: min 3 is greater than max 2 (with the defaults)');
    expect(faults).toContain(
      'services[3].schedule[0]: min 3 is greater than max 2 while the window holds',
    );
  });

  it('checks time zones, weekdays, clock times and empty windows', () => {
    const faults = faultsOf({
      version: 1,
      projects: ['p'],
      services: [
        {
          match: {},
          schedule: [
            { days: ['mon', 'funday'], start: '25:00', end: '10:00', timezone: 'Mars/Olympus' },
            { start: '09:00', end: '09:00' },
            { start: '09:00', end: '10:00', timezone: '' },
            { start: '24:00', end: '06:00' },
            { start: '25:00', end: '26:00' },
          ],
        },
      ],
    });
    const text = faults.join('\n');
    // 24:00 may end a window, never start one (no window could hold from it).
    expect(faults).toContain('services[0].schedule[3].start: a window cannot start at 24:00');
    // Two unreadable bounds are two faults, not also "both 25:00".
    expect(faults.filter((f) => f.startsWith('services[0].schedule[4]'))).toEqual([
      expect.stringMatching(/^services\[0\]\.schedule\[4\]\.start: expected a time/),
      expect.stringMatching(/^services\[0\]\.schedule\[4\]\.end: expected a time/),
    ]);
    expect(text).toMatch(/^services\[0\]\.schedule\[0\]\.days\[1\]: /m);
    expect(text).toMatch(/^services\[0\]\.schedule\[0\]\.start: expected a time/m);
    expect(text).toContain(
      'services[0].schedule[0].timezone: unknown IANA time zone "Mars/Olympus"',
    );
    // Equal bounds: no length, or a whole day? Refused, saying how to write a whole day.
    expect(faults).toContain(
      'services[0].schedule[1].end: start and end are both 09:00: a window of no length, or of a whole day? Write 00:00 to 24:00 for whole days, or two windows',
    );
    // An empty zone is one fault, not two, and says what a zone looks like.
    expect(faults.filter((f) => f.startsWith('services[0].schedule[2].timezone'))).toEqual([
      'services[0].schedule[2].timezone: expected an IANA time zone such as "America/New_York" (leave the key out for UTC)',
    ]);
  });

  it('checks globs, pool keys and references to projects and regions', () => {
    const faults = faultsOf({
      version: 1,
      projects: ['p', 'p'],
      regions: ['us-central1', 'us-east4', 'us-central1'],
      pools: [
        { region: 'us-central1', quota: 8 },
        { region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true, quota: 6 },
        { region: 'europe-west4', project: 'q' },
      ],
      services: [{ match: { name: 'llm-[', project: 'q' } }],
    });
    expect(faults).toContain('projects[1]: "p" is listed twice');
    expect(faults).toContain('regions[2]: "us-central1" is listed twice');
    expect(faults).toContain('pools[1]: same pool as pools[0] (*/us-central1/nvidia-l4/zonal)');
    expect(faults).toContain('pools[2].project: "q" is not one of the policy\'s projects');
    expect(faults).toContain('pools[2].region: "europe-west4" is not one of the policy\'s regions');
    expect(faults.join('\n')).toMatch(/^services\[0\]\.match\.name: invalid glob "llm-\["/m);
    expect(faults).toContain('services[0].match.project: "q" is not one of the policy\'s projects');
    // With discovery, the projects listed are not all there are: a rule may name another.
    expect(
      parsePolicy({
        version: 1,
        projects: ['p'],
        discovery: { organization: '1' },
        services: [{ match: { project: 'q' } }],
      }).services[0]?.match,
    ).toEqual({ project: 'q' });
  });

  it('refuses a rule that can never match: an earlier rule matches every service it would', () => {
    const rules = [
      { match: { name: 'llm-*', labels: { team: 'search' } } }, // 0
      { match: { name: 'llm-chat', labels: { team: 'search', tier: 'gold' } } }, // 1: by 0
      { match: { name: 'llm-*', labels: { team: 'search' } }, managed: false }, // 2: the same as 0
      { match: { name: 'llm-chat', region: 'us-central1' } }, // 3: llm-* has labels, this none
      { match: { name: 'embed-*' } }, // 4
      { match: { name: 'embed-?*' } }, // 5: two globs are not compared
      { match: { project: 'p' } }, // 6
      { match: { project: 'p', name: 'ocr', accelerator: 'nvidia-l4' } }, // 7: by 6
      { match: { project: 'q' } }, // 8
      { match: {} }, // 9: catch-all
      { match: { name: 'render-*' }, managed: false }, // 10: by 9
    ];
    const faults = faultsOf({ version: 1, projects: ['p', 'q'], services: rules });
    const shadowed = faults.filter((f) => f.includes('can never match'));
    expect(shadowed.map((f) => f.split(': ')[0])).toEqual([
      'services[1].match',
      'services[2].match',
      'services[7].match',
      'services[10].match',
    ]);
    expect(shadowed).toContain(
      'services[10].match: can never match: services[9] comes first and matches every service this rule would (the first matching rule wins); move this rule above it, or remove it',
    );
    expect(shadowed.find((f) => f.startsWith('services[7]'))).toContain('services[6] comes first');
    expect(faults).toHaveLength(4);
    // The narrower rule first, each has its turn: nothing is refused.
    const ordered = [rules[1], rules[0], rules[7], rules[6], rules[10], rules[9]];
    expect(
      parsePolicy({ version: 1, projects: ['p', 'q'], services: ordered }).services,
    ).toHaveLength(6);
    // Covered by an earlier rule of the same literal name and by an earlier general one: the
    // fault names the one that comes first, which is the one that takes its services.
    const twice = faultsOf({
      version: 1,
      projects: ['p'],
      services: [{ match: { project: 'p' } }, { match: { name: 'ocr' } }, rules[7]],
    });
    expect(twice).toEqual([
      expect.stringContaining('services[2].match: can never match: services[0] comes first'),
    ]);
  });

  it('compares every key of a match: a rule differing by any one is not shadowed', () => {
    // Two values of each key of Match but the name and the labels; a key added to Match fails
    // here until it has its pair, rather than being taken as matching everything.
    const pairs: Record<string, [string, string]> = {
      project: ['p', 'q'],
      region: ['us-central1', 'europe-west4'],
      accelerator: ['nvidia-l4', 'nvidia-rtx-pro-6000'],
    };
    expect(Object.keys(Match.shape).filter((k) => k !== 'name' && k !== 'labels')).toEqual(
      Object.keys(pairs),
    );
    for (const [key, [a, b]] of Object.entries(pairs)) {
      const policy = (second: string) => ({
        version: 1,
        projects: ['p', 'q'],
        services: [{ match: { [key]: a } }, { match: { [key]: second, name: 'x' } }],
      });
      expect(parsePolicy(policy(b)).services, key).toHaveLength(2);
      expect(faultsOf(policy(a)).join('\n'), key).toContain('services[1].match: can never match');
    }
  });

  it("refuses a rule's region outside the policy's regions, and labels no service can have", () => {
    const faults = faultsOf({
      version: 1,
      projects: ['p'],
      regions: ['us-central1'],
      services: [
        { match: { region: 'europe-west4' } },
        { match: { region: 'us-central1-a' } },
        {
          match: {
            labels: {
              Team: 'search',
              'app.kubernetes.io/name': 'x',
              '1st': 'x',
              tier: 'Gold',
              size: 'x'.repeat(64),
            },
          },
        },
      ],
    });
    expect(faults).toContain(
      'services[0].match.region: "europe-west4" is not one of the policy\'s regions: no service there is read, so the rule can never match',
    );
    expect(faults).toContain(
      'services[1].match.region: expected a Cloud Run region such as "us-central1"',
    );
    const labels = faults.filter((f) => f.startsWith('services[2].match.labels.'));
    expect(labels.map((f) => f.split(': ')[0])).toEqual([
      'services[2].match.labels.Team',
      'services[2].match.labels.app.kubernetes.io/name',
      'services[2].match.labels.1st',
      'services[2].match.labels.tier',
      'services[2].match.labels.size',
    ]);
    expect(labels[0]).toContain('cannot be a label key');
    expect(labels[3]).toContain('"Gold" cannot be a label value');
    // Google allows international characters, digits, "_" and "-", and an empty value.
    const ok = parsePolicy({
      version: 1,
      projects: ['p'],
      services: [{ match: { labels: { équipe: 'données', env_2: '', 'cost-center': 'c-12' } } }],
    });
    expect(ok.services[0]?.match.labels).toEqual({
      équipe: 'données',
      env_2: '',
      'cost-center': 'c-12',
    });
  });

  it('refuses an accelerator not in the form Cloud Run names one, in pools and matches', () => {
    const faults = faultsOf({
      version: 1,
      projects: ['p'],
      pools: [{ region: 'us-central1', accelerator: 'NVIDIA L4' }],
      services: [{ match: { accelerator: 'nvidia_l4' } }],
    });
    expect(faults.join('\n')).toMatch(
      /^pools\[0\]\.accelerator: expected a GPU type such as "nvidia-l4"/m,
    );
    expect(faults.join('\n')).toMatch(
      /^services\[0\]\.match\.accelerator: expected a GPU type such as "nvidia-l4"/m,
    );
    // A well-formed type Cloud Run does not document (yet) is valid: a warning, not a fault.
    expect(
      parsePolicy({
        version: 1,
        projects: ['p'],
        pools: [{ region: 'us-central1', accelerator: 'nvidia-b200' }],
      }).pools[0]?.accelerator,
    ).toBe('nvidia-b200');
  });

  it('refuses projects and regions that could not be one segment of a resource name', () => {
    const projects = [
      '../x',
      'a/b',
      '%2F',
      'a b',
      'My-Project',
      'ünï',
      'p"x',
      '-p',
      'a'.repeat(31),
    ];
    const regions = [
      '../x',
      'us central1',
      '-',
      'US-CENTRAL1',
      'r'.repeat(64),
      'us-central1-a',
      'global',
    ];
    const faults = faultsOf({
      version: 1,
      projects,
      regions,
      pools: [{ project: 'a/b', region: 'a/b' }],
    });
    const project = /^expected a project id such as "my-project"/;
    const region = /^expected a Cloud Run region such as "us-central1"/;
    for (const i of projects.keys())
      expect(faults.find((f) => f.startsWith(`projects[${i}]: `))?.split(': ')[1]).toMatch(project);
    for (const i of regions.keys())
      expect(faults.find((f) => f.startsWith(`regions[${i}]: `))?.split(': ')[1]).toMatch(region);
    expect(faults.find((f) => f.startsWith('pools[0].project: '))).toMatch(/project id/);
    expect(faults.find((f) => f.startsWith('pools[0].region: '))).toMatch(/region such as/);
    // Google's ids, project numbers and legacy domain-scoped projects are kept.
    const ok = ['my-project', 'p', '123456789012', 'example.com:my-project', 'a'.repeat(30)];
    expect(
      parsePolicy({ version: 1, projects: ok, regions: ['us-central1', 'europe-west10'] }).projects,
    ).toEqual(ok);
  });

  it("refuses an alert or work topic Pub/Sub would refuse, naming Google's rule", () => {
    // Each one passed `governor validate`, and every run then failed to publish its alerts.
    const bad = ['goog-alerts', 'GOOGLE', '1alerts', 'ab', 'a b c', 'alerts!', 'a'.repeat(256)];
    for (const id of bad) {
      const topic = `projects/p/topics/${id}`;
      const faults = faultsOf({ version: 1, projects: ['p'], alerts: { topic } });
      expect(faults, id).toHaveLength(1);
      expect(faults[0], id).toMatch(/^alerts\.topic: the topic id must /);
      const work = faultsOf({ version: 1, projects: ['p'], fanout: { topic } });
      expect(
        work.filter((f) => f.startsWith('fanout.topic: the topic id must ')),
        id,
      ).toHaveLength(1);
    }
    // Every character Google allows, at both bounds of the length.
    for (const id of ['abc', 'A-_.~+%9', 'a'.repeat(255)]) {
      const topic = `projects/p/topics/${id}`;
      expect(parsePolicy({ version: 1, projects: ['p'], alerts: { topic } }).alerts.topic).toBe(
        topic,
      );
    }
  });

  it('refuses a topic whose project is no project id, a terminal escape in it among them', () => {
    // The project part was any text but a slash: `governor validate` passed
    // "projects/p\u001b[31m…/topics/alerts", and `governor demo` and `apply` printed it as it was,
    // its escapes acting on the terminal. Pub/Sub names a topic's project by its project id.
    const bad = ['p\u001b]0;title\u0007', 'p\r', 'My-Project', 'p q', '-p', 'p\u202e'];
    for (const project of bad) {
      const topic = `projects/${project}/topics/alerts`;
      const faults = faultsOf({ version: 1, projects: ['p'], alerts: { topic } });
      expect(faults, project).toHaveLength(1);
      expect(faults[0], project).toMatch(
        /^alerts\.topic: the topic's project must be a project id/,
      );
      expect(faultsOf({ version: 1, projects: ['p'], fanout: { topic } }).join('\n')).toMatch(
        /fanout\.topic: the topic's project must be a project id/,
      );
    }
    for (const project of ['p', '123456789012', 'example.com:my-project', 'a'.repeat(30)]) {
      const topic = `projects/${project}/topics/alerts`;
      expect(parsePolicy({ version: 1, projects: ['p'], alerts: { topic } }).alerts.topic).toBe(
        topic,
      );
    }
  });

  it('refuses a __proto__ label key with its path, from YAML and from JSON', () => {
    // JSON.parse and YAML make "__proto__" an own key; a plain z.record used to drop it silently,
    // so the rule matched every service instead of none.
    const fault = 'services[0].match.labels.__proto__: "__proto__" cannot be a key here';
    for (const text of [
      'version: 1\nprojects: [p]\nservices:\n  - match: { labels: { __proto__: x, team: a } }\n',
      '{"version": 1, "projects": ["p"], "services": [{"match": {"labels": {"__proto__": "x"}}}]}',
    ]) {
      try {
        parsePolicyText(text);
        throw new Error('expected the policy to be rejected');
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        expect(e.faults.map((f) => `${f.path}: ${f.message}`).join('\n')).toContain(fault);
      }
    }
    // "constructor" is an ordinary key: kept, and matched only as an own label.
    const p = parsePolicyText(
      'version: 1\nprojects: [p]\nservices:\n  - match: { labels: { constructor: x } }\n',
    );
    expect(p.services[0]?.match.labels).toEqual({ constructor: 'x' });
  });

  it('names the line of a YAML syntax error, and rejects duplicate keys', () => {
    expect(() => parsePolicyText('version: 1\nprojects: [p\n')).toThrow(/line \d+/);
    expect(() => parsePolicyText('version: 1\nversion: 1\nprojects: [p]\n')).toThrow(InputError);
  });
});

describe('a policy with many time windows', () => {
  const original = Intl.DateTimeFormat;
  afterEach(() => {
    Intl.DateTimeFormat = original;
  });

  // Checking a zone builds an Intl.DateTimeFormat, which loads the zone's data: a few hundred
  // microseconds and tens of kilobytes each. A policy of 10,000 windows in a few zones took 3.4 s
  // and 400 MB to validate when each window checked its zone afresh.
  it('checks each time zone once, not once per window', () => {
    let built = 0;
    Intl.DateTimeFormat = new Proxy(original, {
      construct(target, args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
        built++;
        return new target(...args);
      },
    });
    const zones = ['Pacific/Chatham', 'America/St_Johns', 'Asia/Kathmandu'];
    const policy = parsePolicy({
      version: 1,
      projects: ['p'],
      services: Array.from({ length: 600 }, (_, i) => ({
        match: { name: `svc-${i}` },
        schedule: [{ start: '08:00', end: '20:00', timezone: zones[i % 3], min: 1 }],
      })),
    });
    expect(policy.services).toHaveLength(600);
    expect(built).toBeLessThanOrEqual(2 * zones.length);
    expect(() =>
      parsePolicy({
        version: 1,
        projects: ['p'],
        services: [
          { match: {}, schedule: [{ start: '08:00', end: '20:00', timezone: 'Pacific/Chatam' }] },
        ],
      }),
    ).toThrow(/unknown IANA time zone "Pacific\/Chatam"/);
  });
});
