import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOVERNOR_METRICS, METRIC_PREFIX } from '../../src/core/governor-metrics.js';
import { alertsDocJsonBlocks } from '../support/alerts-doc.js';

/**
 * docs/quickstart.md, run as written: the `governor emulator` of step 2 as a process, whose export
 * lines the other steps use, then every command of the page's `sh` blocks in order: each
 * `npx governor …` as the built CLI, each `curl …`/`jq …` line through `sh` with the exported
 * variables, and the sample output printed under a command checked against what it printed. The
 * install lines are what made the clone this test runs in. The whole page must take less than
 * the ten minutes it promises. Needs the build (`npm test` builds first), curl and jq.
 */

const exec = promisify(execFile);
const PAGE = 'docs/quickstart.md';
const TEN_MINUTES = 10 * 60_000;

interface Exported {
  GOVERNOR_EMULATOR_HOST: string;
  GOVERNOR_EMULATOR_ADMIN: string;
  PUBSUB_EMULATOR_HOST: string;
}

interface Step {
  /** The command line as written, comment removed. */
  line: string;
  /** The plain block printed right after the command's block, if any: what it shows. */
  sample: string[] | null;
}

/** Every command of the page's `sh` blocks, in order, each with the sample output after it. */
function steps(): Step[] {
  const text = readFileSync(PAGE, 'utf8');
  const blocks = [...text.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1] ?? '',
    body: m[2] ?? '',
    end: (m.index ?? 0) + m[0].length,
  }));
  const out: Step[] = [];
  blocks.forEach((b, i) => {
    if (b.lang !== 'sh') return;
    const next = blocks[i + 1];
    // A sample belongs to the last command of the block it follows, with only prose between.
    const between = next ? text.slice(b.end, text.indexOf('```', b.end)) : '';
    const sample =
      next && next.lang === '' && !between.includes('#')
        ? next.body.split('\n').filter((l) => l.trim() !== '' && l.trim() !== '…')
        : null;
    const lines = b.body
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter((l) => l !== '');
    lines.forEach((line, k) => out.push({ line, sample: k === lines.length - 1 ? sample : null }));
  });
  return out;
}

/** Whitespace-insensitive: the sample's columns are spaces, the output's may be tabs. */
const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

describe('docs/quickstart.md', () => {
  let emulator: ChildProcess;
  let env: Exported;
  let state: string;
  const started = Date.now();

  beforeAll(async () => {
    state = await mkdtemp(join(tmpdir(), 'governor-quickstart-'));
    emulator = spawn(process.execPath, ['bin/governor.js', 'emulator'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    env = await new Promise<Exported>((resolve, reject) => {
      let out = '';
      emulator.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const found = Object.fromEntries(
          [...out.matchAll(/^export (\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]),
        );
        if (Object.keys(found).length === 3) resolve(found as unknown as Exported);
      });
      emulator.on('exit', (code) => reject(new Error(`the emulator exited (${code}): ${out}`)));
    });
  }, 60_000);

  afterAll(() => {
    if (emulator.exitCode === null) emulator.kill('SIGKILL');
  });

  const childEnv = () => ({
    ...process.env,
    ...env,
    NO_COLOR: '1',
    GOVERNOR_STATE_DIR: state,
  });

  async function run(file: string, args: string[]): Promise<string> {
    try {
      const { stdout } = await exec(file, args, { env: childEnv(), maxBuffer: 16 << 20 });
      return stdout;
    } catch (e) {
      const err = e as { code?: number; stderr?: string };
      throw new Error(`${[file, ...args].join(' ')} exited ${err.code}: ${err.stderr}`);
    }
  }

  interface Published {
    attributes: Record<string, string>;
    data: string;
    orderingKey: string;
  }

  async function published(): Promise<Published[]> {
    const response = await fetch(`${env.GOVERNOR_EMULATOR_ADMIN}/published`);
    return (await response.json()) as Published[];
  }

  it(
    'runs every command of the page, within ten minutes, and shows what it says',
    async () => {
      const all = steps();
      const install = [
        'git clone <this repository> cloud-run-gpu-governor',
        'cd cloud-run-gpu-governor',
        'npm ci',
      ];
      expect(all.slice(0, 3).map((s) => s.line)).toEqual(install);
      // What they make: the clone this test runs in, built by npm ci's prepare script.
      expect(JSON.parse(readFileSync('package.json', 'utf8')).scripts.prepare).toBe(
        'npm run build',
      );
      expect(existsSync('dist/src/cli/main.js')).toBe(true);

      const rest = all.slice(3);
      const governor = rest.filter((s) => s.line.startsWith('npx governor '));
      expect(governor.map((s) => s.line.split(/\s+/)[2])).toEqual([
        '--help',
        'emulator',
        'validate',
        'status',
        'plan',
        'apply',
        'apply',
        'simulate',
      ]);
      // Nothing else the test does not know how to run.
      for (const s of rest)
        expect(s.line, 'a command the quickstart test cannot run').toMatch(
          /^(npx governor|curl|jq) /,
        );

      const outputs: { line: string; stdout: string }[] = [];
      const applied: Published[][] = [];
      const sampled: string[] = [];
      let lastApply: number | null = null;
      for (const s of rest) {
        let stdout: string;
        if (s.line.startsWith('npx governor ')) {
          const args = s.line.split(/\s+/).slice(2);
          if (args[0] === 'emulator') continue; // running since beforeAll
          const report = args.indexOf('--report');
          if (report >= 0) args[report + 1] = join(state, 'sim.html');
          // A person reads the output before the next apply: at least the 5 s Cloud Monitoring
          // keeps between two points of a series (each run writes one point of the governor's
          // metrics near its end), counted from when the previous apply ended, since a run that
          // starts faster than the one before could otherwise write its point too soon.
          if (args[0] === 'apply' && lastApply !== null) {
            const wait = Math.max(0, lastApply + 5_500 - Date.now());
            await new Promise((r) => setTimeout(r, wait));
          }
          const before = (await published()).length;
          stdout = await run(process.execPath, ['bin/governor.js', ...args]);
          if (args[0] === 'apply') lastApply = Date.now();
          if (args[0] === 'apply') applied.push((await published()).slice(before));
        } else {
          stdout = await run('sh', ['-c', s.line]);
        }
        outputs.push({ line: s.line, stdout });
        if (s.sample) {
          sampled.push(s.line.split(/\s+/).slice(0, 3).join(' '));
          const printed = stdout.split('\n').map(squash);
          for (const line of s.sample) expect(printed, `${s.line} prints`).toContain(squash(line));
        }
      }
      // The samples under apply (step 4), the metrics and the dashboard's charts (step 5).
      expect(sampled).toEqual([
        'npx governor apply',
        'curl -s "$GOVERNOR_EMULATOR_ADMIN/metrics-written"',
        "jq -r '.mosaicLayout.tiles[].widget.title'",
      ]);
      const out = (prefix: string) =>
        outputs.filter((o) => o.line.startsWith(prefix)).map((o) => o.stdout);

      // Step 3: the plan lowers three caps so the zonal pool fits its budget.
      const [plan] = out('npx governor plan');
      expect(plan).toMatch(/caps 11 → 7/);
      expect(plan).toContain(
        'unmanaged 3 (service render-frames: 2, worker pool video-encoder: 1) · budget 7 GPUs',
      );

      // Step 4: the alerts it promises, listed once by apply and published whole.
      const [first, second] = applied;
      const types = (first ?? []).map((m) => m.attributes['type']);
      expect(types).toContain('pool.over-budget');
      expect(types).toContain('service.starved');
      expect(types).toContain('rebalance.applied');
      const rebalance = (first ?? []).find((m) => m.attributes['type'] === 'rebalance.applied');
      expect(JSON.parse(rebalance?.data ?? '{}')).toMatchObject({
        details: { writes: [{}, {}, {}] },
      });
      const [apply1, apply2] = out('npx governor apply');
      expect(apply1).toMatch(
        /^Alerts \(\d+, published to projects\/demo-gpu-project\/topics\/gpu-governor-alerts\):$/m,
      );
      const whole = out('curl -s "$GOVERNOR_EMULATOR_ADMIN/published"')[0] ?? '';
      expect(whole).toContain('"type": "rebalance.applied"');
      expect(whole).toContain('"dedupKey"');
      // docs/alerts.md shows "a real message, published by `governor apply` on the emulator's
      // example fleet": this run's llm-chat starved message, but for what names the run and its
      // time, with its attributes and ordering key.
      const [sampleData, sampleAttributes] = await alertsDocJsonBlocks();
      const starved = (first ?? []).find(
        (m) => m.attributes['type'] === 'service.starved' && m.attributes['service'] === 'llm-chat',
      );
      const withoutRun = (m: unknown) => {
        const { id, runId, time, details, ...rest } = m as Record<string, unknown>;
        const { firingSince, ...numbers } = details as Record<string, unknown>;
        expect([id, runId, time, firingSince].every((v) => typeof v === 'string')).toBe(true);
        return { ...rest, details: numbers };
      };
      expect(withoutRun(JSON.parse(starved?.data ?? '{}'))).toEqual(withoutRun(sampleData));
      expect(starved?.attributes).toEqual(sampleAttributes);
      const doc = readFileSync('docs/alerts.md', 'utf8');
      expect(doc).toContain(`ordering key is the pool, \`${starved?.orderingKey}\``);
      // Every field of the details each message carries is named in its type's row of the page
      // ("the pool's numbers" are those of pool.over-budget's row), or among the fields every
      // condition and every resolved message carries.
      const row = (type: string) =>
        doc.split('\n').find((l) => l.startsWith(`| \`${type}\``)) ?? '';
      const named = (type: string): string[] => {
        const text = row(type);
        const own = [...text.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1] ?? '');
        return text.includes("the pool's numbers") ? [...own, ...named('pool.over-budget')] : own;
      };
      const common = doc.slice(doc.indexOf('Conditions also carry'), doc.indexOf('## When'));
      const unnamed = [...(first ?? []), ...(second ?? [])].flatMap((m) => {
        const alert = JSON.parse(m.data) as { type: string; details: object };
        return Object.keys(alert.details)
          .filter((k) => !named(alert.type).includes(k) && !common.includes(`\`${k}\``))
          .map((k) => `${alert.type}: ${k}`);
      });
      expect(new Set((first ?? []).map((m) => m.attributes['type'])).size).toBeGreaterThan(4);
      expect(unnamed).toEqual([]);

      // "Run apply again": nothing written, and the over-budget condition resolves, once.
      expect(apply2).toMatch(/0 written, 0 skipped, 0 failed/);
      expect((second ?? []).map((m) => [m.attributes['type'], m.attributes['status']])).toEqual([
        ['pool.over-budget', 'resolved'],
      ]);

      // Step 5: each run wrote every metric of the governor's once per series (one
      // CreateTimeSeries per run, one project), and the dashboard charts what was written.
      const calls = (await (await fetch(`${env.GOVERNOR_EMULATOR_ADMIN}/calls`)).json()) as {
        method: string;
        code: string;
      }[];
      expect(
        calls.filter((c) => c.method.endsWith('/CreateTimeSeries')).map((c) => c.code),
      ).toEqual(['OK', 'OK']);
      const written = (await (
        await fetch(`${env.GOVERNOR_EMULATOR_ADMIN}/metrics-written`)
      ).json()) as { metric: { type: string }; points: unknown[] }[];
      expect([...new Set(written.map((s) => s.metric.type))].sort()).toEqual(
        GOVERNOR_METRICS.map((m) => `${METRIC_PREFIX}${m}`).sort(),
      );
      for (const s of written) expect(s.points, s.metric.type).toHaveLength(2);
      const dashboard = readFileSync('terraform/dashboards/governor.json', 'utf8');
      const charted = new Set(
        [...dashboard.matchAll(/metric\.type=\\"([^\\"]+)\\"/g)].map((m) => m[1] ?? ''),
      );
      expect([...charted].sort()).toEqual([...new Set(written.map((s) => s.metric.type))].sort());

      // Step 6: the report is a page.
      expect(await readFile(join(state, 'sim.html'), 'utf8')).toContain('<svg');

      // Step 7: Ctrl-C stops the emulator.
      const exited = new Promise<number | null>((resolve) => emulator.on('exit', resolve));
      emulator.kill('SIGINT');
      expect(await exited).toBe(0);

      expect(Date.now() - started).toBeLessThan(TEN_MINUTES);
    },
    TEN_MINUTES,
  );
});
