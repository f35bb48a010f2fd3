import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * docs/quickstart.md, run as written: the `governor emulator` of step 2 as a process, whose export
 * lines the other steps use, and every other `npx governor …` line of the page in order (the
 * simulation shortened to one hour). Needs the build (`npm test` builds first).
 */

const exec = promisify(execFile);

interface Exported {
  GOVERNOR_EMULATOR_HOST: string;
  GOVERNOR_EMULATOR_ADMIN: string;
  PUBSUB_EMULATOR_HOST: string;
}

async function commands(): Promise<string[][]> {
  const text = await readFile('docs/quickstart.md', 'utf8');
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  return blocks
    .flatMap((b) => b.split('\n'))
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith('npx governor '))
    .map((line) => line.split(/\s+/).slice(2));
}

describe('docs/quickstart.md', () => {
  let emulator: ChildProcess;
  let env: Exported;
  let state: string;

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
    emulator?.kill('SIGINT');
  });

  async function governor(args: string[]): Promise<{ code: number; stdout: string }> {
    try {
      const { stdout } = await exec(process.execPath, ['bin/governor.js', ...args], {
        env: { ...process.env, ...env, NO_COLOR: '1', GOVERNOR_STATE_DIR: state },
        maxBuffer: 16 << 20,
      });
      return { code: 0, stdout };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      throw new Error(`governor ${args.join(' ')} exited ${err.code}: ${err.stderr}`);
    }
  }

  async function published(): Promise<{ attributes: Record<string, string>; data: string }[]> {
    const response = await fetch(`${env.GOVERNOR_EMULATOR_ADMIN}/published`);
    return (await response.json()) as { attributes: Record<string, string>; data: string }[];
  }

  it('runs every command of the page, and the alerts it promises arrive', async () => {
    const lines = await commands();
    expect(lines.map((l) => l[0])).toEqual([
      '--help',
      'emulator',
      'validate',
      'status',
      'plan',
      'apply',
      'simulate',
    ]);
    const outputs = new Map<string, string>();
    for (const args of lines) {
      if (args[0] === 'emulator') continue; // running since beforeAll
      const run = args[0] === 'simulate' ? [...args, '--hours', '1'] : args;
      if (run.includes('--report')) run[run.indexOf('--report') + 1] = join(state, 'sim.html');
      outputs.set(args[0] ?? '', (await governor(run)).stdout);
    }
    expect(outputs.get('plan')).toMatch(/caps 11 → 7/);
    expect(outputs.get('plan')).toContain(
      'unmanaged 3 (service render-frames: 2, worker pool video-encoder: 1) · budget 7 GPUs',
    );
    const first = await published();
    const types = first.map((m) => m.attributes.type);
    expect(types).toContain('pool.over-budget');
    expect(types).toContain('service.starved');
    expect(types).toContain('rebalance.applied');
    const applied = first.find((m) => m.attributes.type === 'rebalance.applied');
    expect(JSON.parse(applied?.data ?? '{}')).toMatchObject({
      details: { writes: [{}, {}, {}] },
    });
    expect(await readFile(join(state, 'sim.html'), 'utf8')).toContain('<svg');

    // "Run apply again": the over-budget condition resolves, once.
    await governor(['apply', '--policy', 'examples/demo-policy.yaml', '--yes']);
    const again = (await published()).slice(first.length);
    const overBudget = again.filter((m) => m.attributes.type === 'pool.over-budget');
    expect(overBudget.map((m) => m.attributes.status)).toEqual(['resolved']);
    expect(again.some((m) => m.attributes.type === 'rebalance.applied')).toBe(false);
  }, 180_000);
});
