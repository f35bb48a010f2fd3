import { existsSync } from 'node:fs';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { renderReport } from '../../src/simulate/report.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { benchPolicy, mixedFleetScenario, TRACE_DIR } from '../../src/simulate/scenarios.js';
import { simulate } from '../../src/simulate/simulate.js';

const CHROMIUM = '/usr/bin/chromium';

describe('the report', () => {
  it('opens in headless Chromium with every chart drawn with data', async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    const input = await buildScenario(
      parseScenario(mixedFleetScenario(0.7, 4)),
      TRACE_DIR,
      'mixed fleet',
    );
    const result = await simulate(input, parsePolicy(benchPolicy()), { hours: 4 });
    const html = renderReport(result, { subtitle: 'test' });
    expect(html).not.toMatch(/<script/i);
    const dir = await mkdtemp(join(tmpdir(), 'governor-report-'));
    const file = join(dir, 'report.html');
    await writeFile(file, html);

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(`file://${file}`);
      const charts = await page.$$eval('figure.chart', (figures) =>
        figures.map((f) => {
          const svg = f.querySelector('svg');
          const box = svg?.getBoundingClientRect();
          return {
            kind: f.getAttribute('data-chart'),
            points: Number(f.getAttribute('data-points')),
            paths: svg ? svg.querySelectorAll('path').length : 0,
            width: box?.width ?? 0,
            height: box?.height ?? 0,
            text: svg?.textContent ?? '',
          };
        }),
      );
      expect(charts.map((c) => c.kind)).toEqual(['caps', 'refused']);
      for (const c of charts) {
        expect(c.points).toBe(240);
        expect(c.paths).toBeGreaterThan(10);
        expect(c.width).toBeGreaterThan(500);
        expect(c.height).toBeGreaterThan(200);
      }
      expect(charts[0]?.text).toContain('quota');
      expect(charts[1]?.text).toContain('clairvoyant oracle');
      const rows = await page.$$eval('table.comparison tbody tr', (trs) =>
        trs.map((tr) => tr.querySelector('th')?.textContent),
      );
      expect(rows).toEqual([
        'governor',
        "fleet's static caps",
        'static equal split',
        'static, proportional to peak',
        'over-commit (all at quota)',
        'clairvoyant oracle',
      ]);
      const shot = join(process.env.SCREENSHOT_DIR ?? dir, 'simulation-report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect((await stat(shot)).size).toBeGreaterThan(20_000);
      console.log(`report screenshot: ${shot}`);
    } finally {
      await browser.close();
    }
  });
});
