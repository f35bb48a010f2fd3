import fc from 'fast-check';
import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { plan, PlanningStoppedError } from '../../src/core/planner.js';
import {
  globWildcards,
  MAX_GLOB_WILDCARDS,
  parsePolicy,
  Policy,
  repeatedVariable,
} from '../../src/core/policy.js';
import { compileRules, type ServiceLike } from '../../src/core/rules.js';
import type { Snapshot } from '../../src/core/snapshot.js';
import { InputError } from '../../src/core/errors.js';
import { assertProperty, fcParams } from '../support/fleet-arbitrary.js';
import { governAll, POOL, snapshotService } from '../support/fixtures.js';

/**
 * Matching the policy's rules takes bounded time: globs whose backtracking RegExp could run for
 * minutes are refused when the policy is read, and the planner stops when its caller's deadline
 * passes.
 */

function ruleFaults(name: string): string[] {
  try {
    parsePolicy({ version: 1, projects: ['p'], services: [{ match: { name } }] });
  } catch (e) {
    if (e instanceof InputError) return e.faults.map((f) => `${f.path}: ${f.message}`);
    throw e;
  }
  return [];
}

describe('name globs', () => {
  it('refuses a glob with too many wildcards, naming its path', () => {
    const faults = ruleFaults('*a*a*a*a*a*a*a*a*a*a*a*a*b');
    expect(faults.join('\n')).toMatch(
      /^services\[0\]\.match\.name: glob "\*a\*a.*b" has 13 wildcards .*at most 4/m,
    );
    expect(ruleFaults('*?*?*?*?*?*?b').join('\n')).toContain('has 6 wildcards');
    expect(ruleFaults('+(a)+(b)+(c)+(d)+(e)').join('\n')).toContain('has 5 wildcards');
  });

  it('keeps ordinary globs', () => {
    for (const glob of [
      'llm-*',
      '*-prod-*',
      'team-*-gpu-*',
      '**',
      'llm-?',
      'llm-[a-c]*',
      '{a,b}-*',
    ])
      expect(ruleFaults(glob)).toEqual([]);
    const resolve = compileRules(
      parsePolicy({ version: 1, projects: ['p'], services: [{ match: { name: '*-prod-*' } }] }),
      0,
    );
    const svc = (name: string) => ({ ...POOL, name, labels: {} });
    expect(resolve(svc('llm-prod-a')).managed).toBe(true);
    expect(resolve(svc('llm-dev-a')).managed).toBe(false);
  });

  it('matches a name exactly as picomatch does, and labels exactly', () => {
    // The rules test a glob's RegExp directly (without picomatch's per-call result objects): the
    // answers must be picomatch's own, the empty name and a glob equal to the name included.
    const globs = ['llm-*', '*-prod-*', '**', 'llm-?', 'llm-[a-c]*', '{a,b}-*', 'a.b', 'x+(y)'];
    const names = ['', 'llm-', 'llm-1', 'llm-12', 'llm-b7', 'a-x', 'c-x', 'a.b', 'axb', 'x', 'xyy'];
    for (const glob of [...globs, ...names.filter((n) => n !== '')]) {
      const resolve = compileRules(
        parsePolicy({ version: 1, projects: ['p'], services: [{ match: { name: glob } }] }),
        0,
      );
      for (const name of [...names, glob])
        expect({ glob, name, managed: resolve({ ...POOL, name, labels: {} }).managed }).toEqual({
          glob,
          name,
          managed: picomatch(glob)(name),
        });
    }
    const resolve = compileRules(
      parsePolicy({
        version: 1,
        projects: ['p'],
        services: [{ match: { labels: { team: 'search', tier: 'gold' } } }],
      }),
      0,
    );
    const labelled = (labels: Record<string, string>) =>
      resolve({ ...POOL, name: 'svc', labels }).managed;
    expect(labelled({ team: 'search', tier: 'gold', other: 'x' })).toBe(true);
    expect(labelled({ team: 'search' })).toBe(false);
    expect(labelled({ team: 'search', tier: 'silver' })).toBe(false);
    expect(
      labelled(Object.create({ team: 'search', tier: 'gold' }) as Record<string, string>),
    ).toBe(false);
  });

  it('counts runs of "*", extglob and brace groups, not escaped or bracketed characters', () => {
    expect(globWildcards('llm-*')).toBe(1);
    expect(globWildcards('**')).toBe(1);
    expect(globWildcards('a\\*b[*]c')).toBe(0);
    expect(globWildcards('@(a|b)-*')).toBe(2);
    expect(globWildcards('?(a|aa)+(b)!(c)*')).toBe(4);
    expect(globWildcards('a?b')).toBe(0);
    expect(globWildcards('{a,b}-*')).toBe(2);
    expect(globWildcards('\\{a,b}[{]')).toBe(0);
  });

  it('refuses brace alternations past the limit: each is tried both ways', () => {
    // picomatch compiles {a,aa} to (a|aa): forty of them against a name they almost match ran for
    // hours, with no "*" at all.
    const glob = '{a,aa}'.repeat(40);
    expect(ruleFaults(glob).join('\n')).toMatch(/match\.name: glob .* has 40 wildcards/);
    expect(ruleFaults('{a,b}{c,d}-*')).toEqual([]);
  });

  it('refuses a repeated group of varying length, however few wildcards it has', () => {
    for (const [glob, nested] of [
      ['+(*)b', '*'],
      ['*(*a)', '*'],
      ['+(a|aa)', '|'],
      ['x+({a,aa})', '{'],
      ['+(@(a))', '@('],
      ['+((a*))', '*'],
    ] as const) {
      expect(repeatedVariable(glob)).toBe(nested);
      expect(ruleFaults(glob).join('\n')).toContain(
        `glob "${glob}" repeats a pattern of varying length ("${nested}"`,
      );
    }
    // The same for the project globs of discovery.
    expect(() =>
      parsePolicy({
        version: 1,
        projects: [],
        discovery: { organization: '123', include: ['+(*)b'] },
      }),
    ).toThrow(/discovery\.include\[0\]: glob "\+\(\*\)b" repeats a pattern of varying length/);
    for (const glob of ['+([a-z])-*', '*(ab)', '@(a|aa)-*', '+(?)', 'a\\+(*)', '+([*])'])
      expect({ glob, nested: repeatedVariable(glob) }).toEqual({ glob, nested: null });
  });

  it('matches the worst name for the globs it keeps in bounded time', () => {
    // The shapes still allowed, each at the limit, against names that almost match.
    const globs = [
      '{a,aa}{a,aa}{a,aa}{a,aa}',
      '*{a,aa}*{a,aa}',
      '+([a-z])+([a-z])+([a-z])+([a-z])b',
      '@(a|aa)@(a|aa)*(a)*b',
    ];
    for (const glob of globs) {
      expect({ glob, faults: ruleFaults(glob) }).toEqual({ glob, faults: [] });
      const resolve = compileRules(
        parsePolicy({ version: 1, projects: ['p'], services: [{ match: { name: glob } }] }),
        0,
      );
      const started = performance.now();
      resolve({ ...POOL, name: `${'a'.repeat(48)}c`, labels: {} });
      expect({ glob, ms: performance.now() - started < 1000 }).toEqual({ glob, ms: true });
    }
  });

  it('matches the worst name for the largest glob allowed in bounded time', () => {
    const glob = `${'*a'.repeat(MAX_GLOB_WILDCARDS - 1)}*b`;
    expect(ruleFaults(glob)).toEqual([]);
    const resolve = compileRules(
      parsePolicy({ version: 1, projects: ['p'], services: [{ match: { name: glob } }] }),
      0,
    );
    const started = performance.now();
    // A Cloud Run service name has at most 49 characters; this one almost matches everywhere.
    expect(resolve({ ...POOL, name: `${'a'.repeat(48)}c`, labels: {} }).managed).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('rule lookup', () => {
  // The rules are looked up by literal name and by project (rules.ts) rather than scanned one by
  // one: the answer must stay the first rule, in the policy's order, that a scan would match.
  const names = ['llm-a', 'llm-b', 'LLM-a', 'x_1', 'svc', 'svc-2'];
  const rule = fc.record(
    {
      name: fc.constantFrom(...names, 'llm-*', '*', 'svc*', '{svc,x_1}', 'llm-?'),
      project: fc.constantFrom('p', 'q'),
      region: fc.constantFrom('us-central1', 'europe-west4'),
      labels: fc.constantFrom<Record<string, string>>(
        { team: 'a' },
        { team: 'b' },
        { team: 'a', tier: 'gold' },
      ),
    },
    { requiredKeys: [] },
  );
  const service = fc.record({
    name: fc.constantFrom(...names, 'llm-zz', 'other'),
    project: fc.constantFrom('p', 'q', 'z'),
    region: fc.constantFrom('us-central1', 'europe-west4'),
    labels: fc.constantFrom<Record<string, string>>(
      {},
      { team: 'a' },
      { team: 'b', tier: 'gold' },
      { team: 'a', tier: 'gold' },
    ),
  });

  function scan(
    rules: { name?: string; project?: string; region?: string; labels?: Record<string, string> }[],
    s: { name: string; project: string; region: string; labels: Record<string, string> },
  ): number | null {
    const i = rules.findIndex(
      (r) =>
        (r.name === undefined || picomatch(r.name)(s.name)) &&
        (r.project === undefined || r.project === s.project) &&
        (r.region === undefined || r.region === s.region) &&
        Object.entries(r.labels ?? {}).every(([k, v]) => s.labels[k] === v),
    );
    return i < 0 ? null : i;
  }

  it("answers the first matching rule in the policy's order, as a scan of every rule does", () => {
    assertProperty(
      fc.property(
        fc.array(rule, { maxLength: 12 }),
        fc.array(service, { minLength: 1, maxLength: 8 }),
        (rules, services) => {
          // The schema alone: a rule an earlier one shadows is refused by parsePolicy, but the
          // lookup must still answer as the scan does.
          const resolve = compileRules(
            Policy.parse({
              version: 1,
              projects: ['p', 'q', 'z'],
              services: rules.map((match) => ({ match })),
            }),
            0,
          );
          for (const s of services) {
            const svc = { ...s, accelerator: 'nvidia-l4' };
            expect({ s, rule: resolve(svc).rule }).toEqual({ s, rule: scan(rules, svc) });
          }
        },
      ),
      fcParams(3000),
    );
  });

  it("reads a few rules per service, not the policy's every rule", () => {
    // The lookup's work, counted rather than timed (timings of a few milliseconds move with the
    // machine's caches and collector, docs/performance.md): each read of a service's field is
    // counted, on the shape large organisations write, one rule per service by name and project,
    // then a glob and a label rule. A scan reads a field of the service for every rule it tries.
    const RULES = 2_000;
    const project = (i: number) => `project-${i % 4}`;
    const resolve = compileRules(
      parsePolicy({
        version: 1,
        projects: ['project-0', 'project-1', 'project-2', 'project-3'],
        services: [
          ...Array.from({ length: RULES }, (_, i) => ({
            match: { project: project(i), name: `svc-${i}` },
          })),
          { match: { name: 'batch-*' } },
          { match: { labels: { tier: 'gold' } } },
        ],
      }),
      0,
    );
    let reads = 0;
    const service = (fields: ServiceLike): ServiceLike => {
      const out = {} as ServiceLike;
      for (const [k, v] of Object.entries(fields))
        Object.defineProperty(out, k, {
          enumerable: true,
          get: () => {
            reads++;
            return v;
          },
        });
      return out;
    };
    const cases: [ServiceLike, number | null][] = [
      [{ ...POOL, project: project(7), name: 'svc-7', labels: {} }, 7],
      [{ ...POOL, project: project(RULES - 1), name: `svc-${RULES - 1}`, labels: {} }, RULES - 1],
      [{ ...POOL, project: project(3), name: 'batch-3', labels: {} }, RULES],
      [{ ...POOL, project: project(5), name: 'other', labels: { tier: 'gold' } }, RULES + 1],
      [{ ...POOL, project: project(5), name: 'other', labels: {} }, null],
      // Named by a rule of another project: that rule is tried, and no other of its bucket.
      [{ ...POOL, project: project(8), name: 'svc-9', labels: {} }, null],
    ];
    for (const [fields, rule] of cases) {
      reads = 0;
      expect({ name: fields.name, rule: resolve(service(fields)).rule }).toEqual({
        name: fields.name,
        rule,
      });
      // Its name's bucket (one rule), its project's (none here) and the general list (two
      // rules), each rule reading at most every field once, and the buckets' keys.
      expect(reads, fields.name).toBeLessThanOrEqual(20);
    }
  });

  it('treats a name of letters, digits, "-" and "_" as itself only, as picomatch does', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
    assertProperty(
      fc.property(word, word, (glob, name) => {
        expect(picomatch(glob)(name)).toBe(glob === name);
        expect(picomatch(glob)(glob)).toBe(true);
      }),
      fcParams(3000),
    );
  });
});

describe('the planner and the run deadline', () => {
  const snapshot: Snapshot = {
    version: 1,
    takenAt: '2026-11-27T15:00:00Z',
    pools: [{ ...POOL, quota: 100 }],
    services: Array.from({ length: 100 }, (_, i) =>
      snapshotService(`svc-${String(i).padStart(3, '0')}`, 1, { current: 1, peak: 1 }),
    ),
    unmanagedUsage: [],
  };

  it('stops with PlanningStoppedError once shouldStop says so, and asks while matching', () => {
    let asked = 0;
    const stopAfter = (n: number) => () => ++asked > n;
    expect(() =>
      plan(snapshot, governAll(), '2026-11-27T15:00:00Z', { shouldStop: stopAfter(2) }),
    ).toThrow(PlanningStoppedError);
    expect(asked).toBe(3);
  });

  it('asks once more between matching and allocating: a deadline passed there stops too', () => {
    // 100 services: asked at the 1st, 33rd, 65th and 97th matched, then before allocating.
    let asked = 0;
    const at = '2026-11-27T15:00:00Z';
    expect(() => plan(snapshot, governAll(), at, { shouldStop: () => ++asked > 4 })).toThrow(
      /planning stopped before allocating: the run deadline passed/,
    );
    expect(asked).toBe(5);
  });

  it('plans as before when shouldStop never says so', () => {
    const at = '2026-11-27T15:00:00Z';
    expect(plan(snapshot, governAll(), at, { shouldStop: () => false })).toEqual(
      plan(snapshot, governAll(), at),
    );
  });
});
