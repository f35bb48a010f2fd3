import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport } from '../../src/cli/audit-command.js';
import type { Io } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

/**
 * `governor audit` on services whose limits Cloud Run would not have written so: odd units, a
 * value that is no quantity, a GPU on a sidecar as well. Through the real Cloud Run client against
 * the emulator, each is judged or reported as unreadable, never crashes the command nor passes.
 */

const PROJECT = 'odd-project';
const REGION = 'us-central1';
const tmp = mkdtempSync(join(tmpdir(), 'governor-audit-odd-'));
const policy = join(tmp, 'policy.yaml');
writeFileSync(policy, `version: 1\nprojects: [${PROJECT}]\nregions: [${REGION}]\n`);

const good = { maxInstances: 1, concurrency: 8, startupProbeSeconds: 240 };
const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 8 }],
      services: [
        { name: 'decimal', region: REGION, gpu: {}, ...good, cpu: '8000m', memory: '16G' },
        { name: 'lots', region: REGION, gpu: {}, ...good, cpu: 'lots', memory: '32768Mi' },
        {
          name: 'two-gpus',
          region: REGION,
          gpu: {},
          ...good,
          sidecars: [{ name: 'helper', cpu: '1', memory: '1Gi', gpus: 1 }],
        },
        { name: 'clean', region: REGION, gpu: {}, ...good, cpu: '8', memory: '32Gi' },
      ],
    },
  ],
};

let emulator: RunningEmulator;
beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual' });
});
afterAll(async () => {
  await emulator?.stop();
});

describe('governor audit on odd limits', () => {
  it('reports each as Google would judge it, or as unreadable, and exits 1', async () => {
    let stdout = '';
    let stderr = '';
    const io: Io = {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      env: { ...process.env, ...emulator.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
    };
    const code = await main(['audit', '--policy', policy, '--json'], io);
    expect(stderr).toBe('');
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as AuditReport;
    const found = Object.fromEntries(
      report.services.map((s) => [s.name, s.findings.map((f) => `${f.rule}: ${f.problem}`)]),
    );
    expect(found).toEqual({
      clean: [],
      decimal: [
        'memory-minimum: decimal has 16G (16000000000 bytes: G is 10^9 bytes, Gi 2^30), below the minimum of 16 GiB for nvidia-l4',
      ],
      lots: ['cpu-minimum: the CPU limit "lots" of lots is not a CPU quantity'],
      'two-gpus': [
        'gpu-per-instance: 2 GPUs per instance (two-gpus: 1, helper: 1); Cloud Run attaches exactly one',
        'gpu-single-container: 2 containers ask for a GPU (two-gpus, helper); only one may',
      ],
    });
    expect(report.summary).toEqual({
      services: 4,
      failingRequired: 3,
      recommendedOnly: 0,
      clean: 1,
    });
  });
});

describe('governor audit on names and values with control characters', () => {
  const HOSTILE = 'hostile-project';
  const EU = 'europe-west4';
  let hostile: RunningEmulator;
  beforeAll(async () => {
    hostile = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 0,
        projects: [
          {
            id: HOSTILE,
            pools: [
              { region: REGION, quota: 8 },
              { region: EU, quota: 8 },
            ],
            services: [
              { name: 'web', region: REGION, gpu: {}, ...good, cpu: '\u001b[2J\u001b]0;x\u0007' },
              { name: 'eu', region: EU, gpu: {}, ...good },
            ],
          },
        ],
      },
      speed: 'manual',
      // The European listing answers a service of another region, named with a terminal escape.
      answer: (method, request, fleet) => {
        if (method !== 'ListServices') return undefined;
        const answer = fleet() as { services: Record<string, unknown>[] };
        if (!JSON.stringify(request).includes(EU)) return answer;
        return {
          ...answer,
          services: answer.services.map((s) => ({
            ...s,
            name: `projects/${HOSTILE}/locations/${REGION}/services/x\u001b[31m\nforged`,
          })),
        };
      },
    });
  });
  afterAll(async () => {
    await hostile?.stop();
  });

  it('prints each on one line, its control characters as spaces', async () => {
    const file = join(tmp, 'hostile.yaml');
    writeFileSync(file, `version: 1\nprojects: [${HOSTILE}]\nregions: [${REGION}, ${EU}]\n`);
    let stdout = '';
    let stderr = '';
    const io: Io = {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      env: { ...process.env, ...hostile.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
    };
    const code = await main(['audit', '--policy', file], io);
    expect(code).toBe(1);
    expect(stdout).toContain('the CPU limit " [2J ]0;x " of web is not a CPU quantity');
    expect(stderr).toMatch(
      /^warning: hostile-project\/europe-west4: services unreadable.*x \[31m forged/m,
    );
    for (const text of [stdout, stderr]) {
      expect(text.replace(/\n/g, '')).not.toMatch(/\p{Cc}/u);
      expect(text).not.toMatch(/^forged/m);
    }
  });
});
