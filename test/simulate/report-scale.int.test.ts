import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLOURS } from '../../src/simulate/report-charts.js';
import { renderReport } from '../../src/simulate/report.js';
import {
  STRATEGIES,
  STRATEGY_LABELS,
  type SimulationResult,
  type StrategyResult,
} from '../../src/simulate/result.js';
import {
  charts,
  expectNoGap,
  launchChromium,
  openReport,
  spacing,
  TOLERANCE,
} from './report-browser.js';

/**
 * The report at scale, in headless Chromium: results made by hand of one to sixty services over
 * three hours or a week, some named with HTML in them. No empty band under a plot, no peak of
 * demand lost, the page small, escaped and readable. (The report of a simulation: report.int.)
 */

/** Text that would run as script or end an attribute if the page did not escape it. */
const EVIL = '<script>alert(1)</script>"onload="alert(2)\'<img src=x onerror=alert(3)>';

/**
 * A result made by hand: `count` services over `minutes`, named past 60 characters with HTML in
 * them when `evil`, across the end of summer time in New York (a scenario accepts only Cloud Run
 * names, and simulating a week of sixty services takes a minute). Caps move every 5 minutes, as a
 * busy governor's would.
 */
function handResult(count: number, minutes: number, evil: boolean): SimulationResult {
  const pool = evil ? `p-${EVIL}/us-central1/nvidia-l4/zonal` : 'p/us-central1/nvidia-l4/zonal';
  const names = Array.from({ length: count }, (_, i) =>
    evil
      ? `team-${String(i).padStart(2, '0')}-serving-with-a-rather-long-model-name-${EVIL}`
      : `svc-${String(i).padStart(2, '0')}`,
  );
  const wave = (i: number, m: number) =>
    1 + Math.round(2 + 2 * Math.sin((m / 1440 + i / 60) * 2 * Math.PI));
  const strategy = (s: (typeof STRATEGIES)[number]): StrategyResult => {
    const refused = Array.from({ length: minutes }, (_, m) => (m % 97 < 10 ? (m % 7) + 1 : 0));
    const total = refused.reduce((a, v) => a + v, 0);
    return {
      strategy: s,
      label: STRATEGY_LABELS[s],
      pools: [
        {
          pool,
          quota: 150,
          available: 150,
          services: count,
          demandGpuMinutes: 1,
          refusedGpuMinutes: total,
          refusedCapGpuMinutes: total,
          refusedQuotaGpuMinutes: 0,
          idleGpuMinutes: 0,
          writes: 0,
          writesPerServiceHour: 0,
          scarceMinutes: 0,
          shareError: null,
          priorityInversions: 0,
          capsOverQuotaMinutes: 0,
          invariantViolations: null,
        },
      ],
      services: names.map((name) => ({
        pool,
        name,
        managed: true,
        priority: 0,
        weight: 1,
        demandGpuMinutes: 1,
        refusedGpuMinutes: 1,
        refusedCapGpuMinutes: 1,
        refusedQuotaGpuMinutes: 0,
        idleGpuMinutes: 0,
        writes: 0,
        reversals: 0,
      })),
      totals: {
        refusedGpuMinutes: total,
        idleGpuMinutes: 0,
        writesPerServiceHour: 0,
        reversalsPerServiceDay: 0,
        invariantViolations: s === 'governor' ? 0 : null,
        failedRuns: 0,
      },
      violations: [],
      failedRuns: [],
      series: [
        {
          pool,
          quota: 150,
          available: 150,
          quotaChanges: [],
          services: names,
          // Under the quota of 150 but for one minute in 97, 80 GPUs above the rest.
          demand: Array.from(
            { length: minutes },
            (_, m) => 100 + 30 * Math.sin((m / 1440) * 2 * Math.PI) + (m % 97 === 50 ? 80 : 0),
          ),
          caps: Object.fromEntries(
            names.map((n, i) => [
              n,
              Array.from({ length: minutes }, (_, m) => wave(i, m - (m % 5))),
            ]),
          ),
          refused,
        },
      ],
    };
  };
  return {
    label: evil ? EVIL : `${count} services`,
    start: '2026-10-29T00:00:00.000Z',
    timezone: 'America/New_York',
    minutes,
    tickMinutes: 5,
    lagMinutes: 3,
    viaEmulator: false,
    strategies: STRATEGIES.map(strategy),
    headline: null,
  };
}

describe('the report of many services over a week, in headless Chromium', () => {
  let browser: Browser;
  let big: string;
  let bigBytes: number;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-report-'));
    big = join(dir, 'big.html');
    const bigHtml = renderReport(handResult(60, 7 * 1440, true), { subtitle: EVIL, notes: [EVIL] });
    bigBytes = Buffer.byteLength(bigHtml);
    await writeFile(big, bigHtml);
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => browser?.close());

  const open = (width: number, path: string) => openReport(browser, path, width);

  it.each([
    [1, 180],
    [3, 180],
    [60, 180],
    [1, 7 * 1440],
    [3, 7 * 1440],
    [60, 7 * 1440],
  ])(
    '%i services over %i minutes: no empty band under a plot, and no peak of demand lost',
    async (count, minutes) => {
      // Before: each legend row was reserved 2 px more than ECharts draws, the gap after the last
      // entry of a row counted, the last line of tick labels reserved when the ticks are days, and a
      // label too wide for the legend put under an empty row: 20 to 34 px of nothing between the
      // axis and the legend on a phone and under a week of sixty services.
      const path = join(dir, `hand-${count}-${minutes}.html`);
      await writeFile(path, renderReport(handResult(count, minutes, count === 60)));
      for (const width of [1280, 390]) {
        const { page } = await open(width, path);
        expectNoGap(await spacing(page));
        // Before: where a chart has more minutes than pixels (a week; three hours on a phone
        // are not), the thin demand line was the mean of each few minutes, and a minute's
        // peak 80 GPUs over the rest, 30 over the quota, was drawn 8 GPUs up, under the quota.
        const caps = await page.$eval(
          'figure[data-chart="caps"]',
          (f, minuteColour) => {
            const shown = [...f.querySelectorAll(':scope > div')].find(
              (d) => d.getBoundingClientRect().width > 0,
            );
            const top = (colour: string) =>
              Math.min(
                ...[
                  ...(shown?.querySelectorAll<SVGPathElement>(
                    `g[clip-path] path[stroke="${colour}"]`,
                  ) ?? []),
                ]
                  .filter((p) => p.getAttribute('fill') === 'none')
                  .map((p) => p.getBBox().y),
              );
            return {
              quota: top('#000000'),
              minute: top(minuteColour),
              label: shown?.getAttribute('aria-label') ?? '',
              names: (
                JSON.parse(shown?.getAttribute('data-series') ?? '[]') as { name: string }[]
              ).map((d) => d.name),
            };
          },
          COLOURS.demandMinute,
        );
        expect(caps.minute).toBeLessThan(caps.quota - 10);
        // Three hours fit in the pixels of every width; a week in none.
        if (minutes > 360) {
          expect(caps.names).toContainEqual(
            expect.stringMatching(/^demand, busiest minute of each \d+ min$/),
          );
          expect(caps.label).toMatch(/the busiest minute of each \d+ minutes/);
        } else {
          expect(caps.names).toContain('demand, per minute');
          expect(caps.label).toContain('demand minute by minute');
        }
        await page.close();
      }
    },
  );

  it.each([390, 700])(
    'at %i px, a service name of many characters leaves the numbers of its row in view',
    async (width) => {
      // Before: the name column, which stays in place as the table scrolls, was as wide as the
      // longest name on one line, wider than the table's box on a phone: every number of the
      // per-service table scrolled under it and none could be read, nor the whole name.
      const { page } = await open(width, big);
      const table = await page.$eval('table.services', (t) => {
        const names = [...t.querySelectorAll<HTMLElement>('tbody th')];
        return {
          box: t.clientWidth,
          column: Math.max(...names.map((n) => n.getBoundingClientRect().width)),
          cut: names.filter((n) => n.scrollWidth > n.clientWidth + 1).length,
        };
      });
      expect(table.column).toBeLessThanOrEqual(table.box / 2);
      expect(table.cut).toBe(0);
      await page.close();
    },
  );

  it.each([1280, 390])(
    'at %i px, names of 300 characters keep the tables and the legend in shape, whole in their titles',
    async (width) => {
      // Before: a 300-character name was printed whole. At 1280 px the per-service table's name
      // column was 2,737 px wide, so the numbers of every row sat under it out of reach; the caps
      // table (the chart's numbers) gave that service a column 2,645 px wide, and a name of words
      // a column of 212 px and a header row 1,227 px tall; the legend ran 33 px past the picture.
      const long: Record<string, string> = {
        'svc-00': `svc-00-${'x'.repeat(293)}`,
        'svc-01': `svc-01 ${'word '.repeat(58)}end`,
        'svc-02': `svc-02-${EVIL}${'y'.repeat(300 - 7 - EVIL.length)}`,
      };
      const rename = (n: string) => long[n] ?? n;
      const hand = handResult(3, 180, false);
      const path = join(dir, `long-names-${width}.html`);
      await writeFile(
        path,
        renderReport({
          ...hand,
          strategies: hand.strategies.map((s) => ({
            ...s,
            services: s.services.map((x) => ({ ...x, name: rename(x.name) })),
            series: s.series.map((p) => ({
              ...p,
              services: p.services.map(rename),
              caps: Object.fromEntries(Object.entries(p.caps).map(([n, c]) => [rename(n), c])),
            })),
          })),
        }),
      );
      expect(Object.values(long).map((n) => n.length)).toEqual([300, 300, 300]);
      const { page, dialogs } = await open(width, path);
      await page.$$eval('details', (ds) => ds.forEach((d) => (d.open = true)));
      const tables = await page.evaluate(() => {
        const box = (t: Element | null) => t?.clientWidth ?? 0;
        const services = document.querySelector('table.services');
        const caps = document.querySelector('table.service-caps');
        const names = [...(caps?.querySelectorAll('thead th') ?? [])].slice(1);
        return {
          servicesBox: box(services),
          nameColumn: Math.max(
            ...[...(services?.querySelectorAll('tbody th') ?? [])].map(
              (c) => c.getBoundingClientRect().width,
            ),
          ),
          capsBox: box(caps),
          capsColumn: Math.max(...names.map((c) => c.getBoundingClientRect().width)),
          capsHeader: caps?.querySelector('thead tr')?.getBoundingClientRect().height ?? 0,
          titles: [...document.querySelectorAll('[title]')]
            .map((e) => e.getAttribute('title') ?? '')
            .filter((t) => t.length === 300),
          page: document.documentElement.scrollWidth,
        };
      });
      expect(tables.page).toBeLessThanOrEqual(width);
      expect(tables.nameColumn).toBeLessThanOrEqual(tables.servicesBox / 2);
      // As wide as the longest Cloud Run name's at most, on a phone too: 63 characters.
      expect(tables.capsColumn).toBeLessThanOrEqual(Math.min(600, tables.capsBox));
      expect(tables.capsHeader).toBeLessThanOrEqual(300);
      // Every name whole in the title of each place it is shortened: two tables and the prose.
      for (const name of Object.values(long))
        expect(tables.titles.filter((t) => t === name).length, name).toBeGreaterThanOrEqual(2);
      const [caps] = await charts(page);
      expect(caps?.textRight).toBeLessThanOrEqual((caps?.svgRight ?? 0) + TOLERANCE);
      expect(dialogs).toEqual([]);
      await page.close();
    },
  );

  it.each([1280, 390])(
    'sixty services over a week, named with HTML in them, at %i px: small, escaped, readable',
    async (width) => {
      // Before: 5.7 MB for a week of sixty services, twelve colours for sixty bands, a legend
      // of thirty rows, and one offset from UTC for a week across the end of summer time. The
      // bands' patterns (a copy of each band's area, filled with it) and each service's caps
      // hour by hour took it from 1.05 MB to 1.56 MB.
      expect(bigBytes).toBeLessThan(1_600_000);
      const { page, requests, dialogs } = await open(width, big);
      expect(requests).toEqual([`file://${big}`]);
      expect(dialogs).toEqual([]);
      const dom = await page.evaluate(() => ({
        scripts: document.querySelectorAll('script, img, iframe').length,
        handlers: [...document.querySelectorAll('*')].flatMap((e) =>
          e.getAttributeNames().filter((a) => a.startsWith('on')),
        ),
        h1: document.querySelector('h1')?.textContent ?? '',
        width: document.documentElement.scrollWidth,
      }));
      expect(dom.scripts).toBe(0);
      expect(dom.handlers).toEqual([]);
      expect(dom.h1).toBe(`Governor simulation: ${EVIL}`);
      expect(dom.width).toBeLessThanOrEqual(width);
      const [caps] = await charts(page);
      expect(caps?.declared.length).toBeLessThanOrEqual(15);
      expect(new Set(caps?.declared.map((d) => d.colour)).size).toBe(caps?.declared.length);
      expect(caps?.declared.map((d) => d.name)).toContain('caps of the 50 other services');
      expect(caps?.axisNames).toContain('time (America/New_York, UTC-04:00 then -05:00)');
      expect(caps?.textRight).toBeLessThanOrEqual((caps?.svgRight ?? 0) + TOLERANCE);
      await page.screenshot({
        path: join(process.env.SCREENSHOT_DIR ?? dir, `simulation-report-big-${width}.png`),
        fullPage: true,
      });
      await page.close();
    },
  );
});
