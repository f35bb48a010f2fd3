import { mkdtempSync, rmSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { main } from '../src/cli/main.js';
import { argumentsOrExit } from './arguments.js';
import { errorMessage } from '../src/core/errors.js';

/**
 * Redraws docs/report.png, the README's picture of the simulation report: the quickstart's
 * `governor simulate` on the example fleet, its report opened in headless Chromium 1280 px wide,
 * photographed from the top to the end of the first chart. Needs Debian's chromium (`CHROMIUM` names another binary).
 *
 *   npm run build && node dist/scripts/report-picture.js
 *
 * Whatever ends it (an error, Ctrl-C, SIGTERM), it removes its temporary directory and closes
 * Chromium; a failure is one line, exit 1.
 */
argumentsOrExit({
  name: 'report-picture',
  text: '[CHROMIUM=PATH] npm run report-picture (redraws docs/report.png; takes no arguments)',
});
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

let browser: Browser | undefined;
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    void (browser?.close() ?? Promise.resolve())
      .catch(() => undefined)
      .finally(() => process.exit(code));
  });
}
// Made at once (no await) once the handlers above are in place, and removed on every exit,
// process.exit from a handler included (a `finally` does not run then).
const dir = mkdtempSync(join(tmpdir(), 'governor-report-picture-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

async function draw(): Promise<void> {
  try {
    await access(chromiumPath, constants.X_OK);
  } catch {
    // Checked first: before the day's simulation it would wait for, and before Playwright
    // launches (a launch that fails leaves its profile directory behind).
    throw new Error(
      `no Chromium to run at ${chromiumPath}: install Debian's chromium, or set CHROMIUM to its binary`,
    );
  }
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
  // The signals are this script's (above): Playwright's own handlers would exit before the
  // temporary directory is removed, or (SIGTERM) not at all.
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    handleSIGINT: false,
    handleSIGTERM: false,
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
    browser = undefined;
  }
}

try {
  await draw();
} catch (error) {
  const message = errorMessage(error);
  // Playwright's messages carry a call log on the lines after the first.
  process.stderr.write(`report-picture: ${message.split('\n')[0] ?? ''}\n`);
  process.exitCode = 1;
}
