import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SEED, settingOrThrow, wholeNumberSetting } from '../../src/chaos/settings.js';
import { main } from '../../src/cli/main.js';
import { parsePolicy, parsePolicyText } from '../../src/core/policy.js';
import { parseSnapshot, parseSnapshotText } from '../../src/core/snapshot.js';
import { FleetError, validateFleet } from '../../src/emulator/fleet.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { InputError } from '../../src/core/errors.js';
import { handle } from '../../src/function/handler.js';
import { memoryLogger } from '../../src/log.js';

/**
 * Fuzz: generated policies, snapshots, fleet files and function payloads (valid documents with
 * one or more mutations: a key dropped, an unknown key added, a value of the wrong type or out
 * of range), more than 10,000 in all. Each is either accepted, or refused as bad input (exit 2,
 * HTTP 400) with a message naming the field; never a crash, never a hang, never a write. The
 * seed is printed (CHAOS_SEED reproduces it).
 */

// A fixed seed by default, so that CI is reproducible; CHAOS_SEED explores others.
const SEED = settingOrThrow(wholeNumberSetting(process.env, 'CHAOS_SEED', 20261127, 0, MAX_SEED));
const params = (numRuns: number) => ({ seed: SEED, numRuns });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

function paths(value: Json, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

const junk: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double({ noNaN: false }).map((d) => (Number.isFinite(d) ? d : -1)),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', '-1', '1e309', '15x', '25:00', 'nvidia-l4', 'enforce', '*'),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.constant(null).map((): Json => ({ nested: { deeper: [1, 'x'] } })),
);

type Mutation =
  | { op: 'delete'; at: number }
  | { op: 'set'; at: number; value: Json }
  | { op: 'unknown'; at: number; key: string; value: Json };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: junk }),
  fc.record({
    op: fc.constant('unknown' as const),
    at: fc.nat(),
    key: fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9]{0,10}$/),
    value: junk,
  }),
);

/** Applies the mutations; returns the document and the paths it touched. */
function mutate(base: Json, ms: readonly Mutation[]): { doc: Json; touched: Path[] } {
  let doc = structuredClone(base);
  const touched: Path[] = [];
  for (const m of ms) {
    const all = paths(doc).filter((p) => p.length > 0);
    const objects = paths(doc).filter((p) => {
      const v = get(doc, p);
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    });
    if (m.op === 'unknown') {
      const at = objects[m.at % objects.length] ?? [];
      const target = get(doc, at) as { [k: string]: Json };
      if (m.key in target) continue;
      target[m.key] = structuredClone(m.value);
      touched.push([...at, m.key]);
      continue;
    }
    const at = all[m.at % Math.max(1, all.length)];
    if (!at) continue;
    const parent = get(doc, at.slice(0, -1));
    const last = at[at.length - 1] as string | number;
    if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else if (parent && typeof parent === 'object') delete parent[String(last)];
    } else if (Array.isArray(parent)) parent[Number(last)] = structuredClone(m.value);
    else if (parent && typeof parent === 'object') parent[String(last)] = structuredClone(m.value);
    else doc = structuredClone(m.value);
    touched.push(at);
  }
  return { doc, touched };
}

function get(doc: Json, path: Path): Json {
  let v: Json = doc;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return null;
    v = (Array.isArray(v) ? v[Number(p)] : v[String(p)]) ?? null;
  }
  return v;
}

/** The error's message names one of the touched fields (its top-level key at least). */
function namesAField(message: string, touched: Path[]): boolean {
  if (touched.some((p) => p.length === 0)) return true;
  return touched.some((p) => message.includes(String(p[0])));
}

const examplePolicy = parseYaml(readFileSync('examples/policy.yaml', 'utf8')) as Json;
const exampleSnapshot = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as Json;
const exampleFleet = parseYaml(readFileSync('examples/fleet.yaml', 'utf8')) as Json;

let counted = 0;

describe('fuzz', () => {
  it(`policies: accepted, or refused naming the field (seed ${SEED})`, () => {
    console.log(`fuzz seed ${SEED} (CHAOS_SEED=${SEED} reproduces it)`);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        counted += 1;
        const { doc, touched } = mutate(examplePolicy, ms);
        try {
          parsePolicy(doc);
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
          const text = (e as InputError).message;
          expect(namesAField(text, touched), `${text}\n${JSON.stringify(touched)}`).toBe(true);
        }
      }),
      params(4000),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        counted += 1;
        try {
          parsePolicyText(text);
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
        }
      }),
      params(500),
    );
  });

  it('snapshots: accepted, or refused naming the field', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        counted += 1;
        const { doc, touched } = mutate(exampleSnapshot, ms);
        try {
          parseSnapshot(doc);
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
          const text = (e as InputError).message;
          expect(namesAField(text, touched), `${text}\n${JSON.stringify(touched)}`).toBe(true);
        }
      }),
      params(3000),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        counted += 1;
        try {
          parseSnapshotText(text);
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
        }
      }),
      params(300),
    );
  });

  it('fleet files: accepted, or refused naming the field', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 2 }), (ms) => {
        counted += 1;
        const { doc, touched } = mutate(exampleFleet, ms);
        try {
          validateFleet(doc);
        } catch (e) {
          expect(e).toBeInstanceOf(FleetError);
          const text = (e as FleetError).message;
          expect(namesAField(text, touched), `${text}\n${JSON.stringify(touched)}`).toBe(true);
        }
      }),
      params(1500),
    );
  });

  it('function payloads: 400 naming the field, nothing run', async () => {
    const env = {}; // no policy: a valid payload gets as far as "misconfigured" (500), never further
    const checked = { named: 0, misconfigured: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          junk,
          fc.record(
            {
              mode: fc.oneof(fc.constantFrom('enforce', 'dry-run'), junk),
              restore: fc.oneof(fc.boolean(), junk),
              extra: junk,
            },
            { requiredKeys: [] },
          ),
        ),
        async (payload) => {
          counted += 1;
          const answer = await handle(payload, env, memoryLogger());
          if (answer.status === 400) {
            const body = JSON.stringify(answer.body);
            const keys =
              payload && typeof payload === 'object' && !Array.isArray(payload)
                ? Object.keys(payload)
                : [];
            if (keys.length > 0) {
              expect(
                keys.some((k) => body.includes(k)),
                body,
              ).toBe(true);
              checked.named += 1;
            }
          } else {
            expect(answer.status).toBe(500);
            expect(String(answer.body.error)).toContain('misconfigured');
            checked.misconfigured += 1;
          }
        },
      ),
      params(1500),
    );
    // Both branches ran: the field-naming check was not left to chance.
    expect(checked.named).toBeGreaterThan(0);
    expect(checked.misconfigured).toBeGreaterThan(0);
  });

  it(`more than 10,000 inputs in all`, () => {
    expect(counted).toBeGreaterThanOrEqual(10_000);
  });
});

describe('fuzz through the command line and the HTTP surface', () => {
  let emulator: RunningEmulator;
  const dir = mkdtempSync(join(tmpdir(), 'governor-fuzz-'));
  beforeAll(async () => {
    emulator = await startEmulator({ fleet: 'examples/fleet.yaml', speed: 'manual' });
  });
  afterAll(async () => {
    await emulator?.stop();
  });

  it('governor validate / plan / apply (in process): exit 0 or 2 naming the field, nothing written', async () => {
    let n = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 2 }), async (ms) => {
        const { doc, touched } = mutate(examplePolicy, ms);
        const file = join(dir, `p${n++}.json`);
        writeFileSync(file, JSON.stringify(doc));
        let err = '';
        const io = {
          stdout: { write: () => true },
          stderr: { write: (s: string) => (err += s) },
          env: { ...process.env, ...emulator.env, GOVERNOR_STATE_DIR: join(dir, 'state') },
        };
        const validate = await main(['validate', '--policy', file], io);
        expect([0, 2]).toContain(validate);
        if (validate === 2) {
          rejected += 1;
          expect(namesAField(err, touched), err).toBe(true);
          // A policy that does not validate is never applied.
          const applied = await main(['apply', '--yes', '--policy', file], io);
          expect(applied).toBe(2);
        }
        expect(emulator.writes()).toEqual([]);
      }),
      params(150),
    );
    expect(rejected).toBeGreaterThan(0); // the invalid branch ran, so its checks did
  }, 120_000);

  it('the real process: exit 2 and the field named', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'version: 1\nprojects: [p]\nreserve: lots\nbogus: 1\n');
    const r = spawnSync(process.execPath, ['bin/governor.js', 'validate', '--policy', file], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('reserve');
    expect(r.stderr).toContain('bogus');
  });

  it('the HTTP entry point: 400 naming the field, nothing written', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, emulator.env, {
      GOVERNOR_POLICY: readFileSync('examples/demo-policy.yaml', 'utf8'),
      GOVERNOR_STATE_DIR: join(dir, 'fn-state'),
    });
    const { getTestServer } = await import('@google-cloud/functions-framework/testing');
    await import('../../src/function/index.js');
    const server = getTestServer('governorHttp');
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const bad = fc.sample(
        fc.record({ mode: junk.filter((v) => v !== 'enforce' && v !== 'dry-run'), junkKey: junk }),
        { seed: SEED, numRuns: 20 },
      );
      for (const body of bad) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect(res.status).toBe(400);
        expect(await res.text()).toMatch(/mode|junkKey/);
      }
      expect(emulator.writes()).toEqual([]);
    } finally {
      await new Promise((r) => server.close(r));
      process.env = saved;
    }
  });
});
