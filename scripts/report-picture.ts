import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { main } from '../src/cli/main.js';
import { argumentsOrExit } from './arguments.js';

/**
 * Redraws docs/report.png, the README's picture of the simulation report: the quickstart's
 * `governor simulate` on the example fleet, its report opened in headless Chromium 1280 px wide,
 * photographed from the top to the end of the first chart. Needs Debian's chromium (`CHROMIUM` names another binary).
 *
 *   npm run build && node dist/scripts/report-picture.js
 */
argumentsOrExit({
  name: 'report-picture',
  text: '[CHROMIUM=PATH] npm run report-picture (redraws docs/report.png; takes no arguments)',
});
const dir = await mkdtemp(join(tmpdir(), 'governor-report-picture-'));
try {
  const report = join(dir, 'report.html');
  const quiet = { write: () => true };
  const code = await main(
    [
      'simulate',
      '--policy',
      'examples/sim-policy.yaml',
      '--fleet',
      'examples/sim-mixed.yaml',
      '--report',
      report,
    ],
    { stdout: quiet, stderr: process.stderr, env: process.env },
  );
  if (code !== 0) throw new Error(`governor simulate exited ${code}`);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`file://${report}`);
    // From the top of the page to the end of the first pool's first chart.
    const bottom = await page.$eval('figure.chart', (f) => f.getBoundingClientRect().bottom);
    await page.screenshot({
      path: join('docs', 'report.png'),
      fullPage: true,
      clip: { x: 0, y: 0, width: 1280, height: Math.ceil(bottom) + 16 },
    });
    console.log('wrote docs/report.png');
  } finally {
    await browser.close();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
