import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFunction, type RunningFunction } from '../../bench/function-host.js';
import {
  buildFunctionPackage,
  FUNCTION_MAIN,
  functionPackageJson,
  type PackageResult,
} from '../../scripts/package.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

/**
 * The function's archive as `npm run package` builds it from this tree, laid out as Google's build
 * leaves it (the archive's files, the dependencies installed beside them), then served by
 * functions-framework in a process of its own: every module it holds loads, and a run answers.
 * Needs `npm run build` first.
 */
const root = join(import.meta.dirname, '../..');
const exec = promisify(execFile);
const PROJECT = 'archive-project';
const REGION = 'us-central1';
const TOPIC = `projects/${PROJECT}/topics/alerts`;

let scratch: string;
let app: string;
let archive: PackageResult;
let emulator: RunningEmulator;
let fn: RunningFunction;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'governor-archive-'));
  archive = await buildFunctionPackage({ root, out: join(scratch, 'function.zip') });
  // The archive's files (package.test.ts checks the zip holds them byte for byte), and the
  // dependencies the build installs from its lock: this tree's.
  app = join(scratch, 'app');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  for (const entry of archive.entries) {
    mkdirSync(join(app, dirname(entry)), { recursive: true });
    const text =
      entry === 'package.json'
        ? JSON.stringify(functionPackageJson(pkg), null, 2)
        : readFileSync(join(root, entry));
    writeFileSync(join(app, entry), text);
  }
  symlinkSync(join(root, 'node_modules'), join(app, 'node_modules'), 'dir');

  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 35,
      topics: [TOPIC],
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 4 }],
          services: [{ name: 'chat', region: REGION, gpu: {}, maxInstances: 2, demand: 1 }],
        },
      ],
    },
    speed: 'manual',
    operationDelayMs: 0,
  });
  fn = await startFunction({
    source: join(app, FUNCTION_MAIN),
    env: {
      ...emulator.env,
      GOVERNOR_POLICY: JSON.stringify({
        version: 1,
        projects: [PROJECT],
        regions: [REGION],
        services: [{ match: {} }],
        alerts: { topic: TOPIC },
      }),
      GOVERNOR_STATE_DIR: join(scratch, 'state'),
      NODE_ENV: 'production',
    },
  });
}, 60_000);

afterAll(async () => {
  await fn?.stop();
  await emulator?.stop();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe("the function's archive", () => {
  it('holds the function and what it loads, not the CLI, emulator, simulator or chaos harness', () => {
    const modules = archive.entries.filter((e) => e.endsWith('.js'));
    expect(modules).toContain(FUNCTION_MAIN);
    expect(modules).toContain('dist/src/adapters/load.js');
    expect(modules.filter((m) => /^dist\/src\/(cli|emulator|simulate|chaos)\//.test(m))).toEqual(
      [],
    );
    expect(modules.every((m) => m.startsWith('dist/src/'))).toBe(true);
  });

  it('loads every module it holds, with nothing else of the tree beside it', async () => {
    const urls = archive.entries
      .filter((e) => e.endsWith('.js'))
      .map((e) => pathToFileURL(join(app, e)).href);
    const script = `for (const u of ${JSON.stringify(urls)}) await import(u);\nconsole.log('loaded');`;
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none' },
    });
    expect(stdout.trim()).toBe('loaded');
  }, 30_000);

  it('served by functions-framework, answers a run', async () => {
    const run = await fn.run();
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body).toMatchObject({ outcome: 'ok', error: null });
  }, 30_000);
});
