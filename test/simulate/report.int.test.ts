import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { renderReport } from '../../src/simulate/report.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { benchPolicy, mixedFleetScenario, TRACE_DIR } from '../../src/simulate/scenarios.js';
import { simulate } from '../../src/simulate/simulate.js';
import type { SimulationResult } from '../../src/simulate/result.js';
import {
  charts,
  expectNoGap,
  launchChromium,
  openReport,
  spacing,
  TOLERANCE,
} from './report-browser.js';

/**
 * The report as a person sees it: rendered from a short simulation, opened in headless Chromium
 * at a desktop and a narrow width, measured. Text must not overlap, every legend entry must have
 * its series' colour, the axes must say their units and time zone, and the page must load
 * nothing from anywhere. (Reports of many services over a week, made by hand: report-scale.)
 */

const WIDTHS = [1280, 700, 390] as const;

interface Box {
  what: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

function overlaps(a: Box, b: Box): boolean {
  const dx = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const dy = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return dx > TOLERANCE && dy > TOLERANCE;
}

/** Bounding boxes of every visible SVG text and of the text of every HTML heading and caption. */
async function textBoxes(page: Page): Promise<Box[]> {
  return page.evaluate(() => {
    const out: { what: string; x: number; y: number; width: number; height: number }[] = [];
    const push = (what: string, r: DOMRect) => {
      if (r.width > 0 && r.height > 0)
        out.push({ what, x: r.x, y: r.y, width: r.width, height: r.height });
    };
    for (const t of document.querySelectorAll('svg text'))
      push(`svg text "${t.textContent ?? ''}"`, t.getBoundingClientRect());
    for (const h of document.querySelectorAll('h1, h2, h3, caption, th, dt')) {
      // A closed <details> shows only its summary (Chromium still gives its content boxes).
      if (h.closest('details:not([open])')) continue;
      const range = document.createRange();
      range.selectNodeContents(h);
      for (const r of range.getClientRects()) push(`<${h.tagName}> "${h.textContent ?? ''}"`, r);
    }
    return out;
  });
}

/** The most two outlines (`Icon.marker`) differ by at a sample. */
function outlineDistance(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - (b[i] ?? Infinity))));
}

describe('the report in headless Chromium', () => {
  let browser: Browser;
  let file: string;
  let dir: string;
  let simulated: SimulationResult;

  beforeAll(async () => {
    const input = await buildScenario(
      parseScenario({ ...mixedFleetScenario(0.7, 4), timezone: 'Europe/Berlin' }),
      TRACE_DIR,
      'mixed fleet',
    );
    const result = await simulate(input, parsePolicy(benchPolicy()), { hours: 4 });
    simulated = result;
    const html = renderReport(result, { subtitle: 'test', notes: ['a note for the reader'] });
    dir = await mkdtemp(join(tmpdir(), 'governor-report-'));
    file = join(dir, 'report.html');
    await writeFile(file, html);
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => browser?.close());

  const open = (width: number) => openReport(browser, file, width);

  it('draws both charts of the pool with data, and loads nothing but itself', async () => {
    const { page, requests } = await open(1280);
    const figures = await page.$$eval('figure.chart', (fs) =>
      fs.map((f) => ({
        kind: f.getAttribute('data-chart'),
        points: Number(f.getAttribute('data-points')),
        paths: f.querySelector('.wide svg')?.querySelectorAll('path').length ?? 0,
        width: f.querySelector('.wide svg')?.getBoundingClientRect().width ?? 0,
      })),
    );
    expect(figures.map((f) => f.kind)).toEqual(['caps', 'refused']);
    for (const f of figures) {
      expect(f.points).toBe(240);
      expect(f.paths).toBeGreaterThan(10);
      expect(f.width).toBeGreaterThan(900);
    }
    expect(requests).toEqual([`file://${file}`]);
    const html = await page.content();
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(\s*['"]?https?:/i);
    expect(html).not.toMatch(/(?:src|href)\s*=\s*["']?https?:/i);
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
      'best at the same tick (hindsight)',
      'best at the same tick, policy kept (hindsight)',
      'best at ≤ 2 writes/svc/h (hindsight)',
    ]);
    await page.close();
  });

  it('explains every table column and links how to read the page', async () => {
    const { page } = await open(1280);
    const tables = await page.$$eval('table:not(.numbers)', (ts) =>
      ts.map((t) => ({
        caption: t.querySelector('caption')?.textContent ?? '',
        untitled: [...t.querySelectorAll('thead th')]
          .filter((th) => !th.getAttribute('title'))
          .map((th) => th.textContent),
        explained: t.nextElementSibling?.matches('dl.columns') ?? false,
      })),
    );
    expect(tables.length).toBeGreaterThanOrEqual(2);
    for (const t of tables) {
      expect(t.caption).not.toBe('');
      expect(t.untitled).toEqual([]);
      expect(t.explained).toBe(true);
    }
    expect(await page.textContent('table.services thead')).toMatch(/priority.*weight/);
    expect(await page.getAttribute('a[href="#how-to-read"]', 'href')).toBe('#how-to-read');
    expect(await page.textContent('#how-to-read h2')).toBe('How to read this page');
    await page.close();
  });

  it.each([390, 1280])(
    'at %i px, a table scrolled to its last column still names each row',
    async (width) => {
      // Before: a table wider than the window scrolled in its own box, its first column with the
      // rest, so on a phone the numbers of the last strategies stood beside no strategy's and no
      // service's name.
      const { page } = await open(width);
      const lost = await page.$$eval('table', (tables) =>
        tables
          .filter((t) => t.getBoundingClientRect().width > 0 && t.scrollWidth > t.clientWidth + 1)
          .flatMap((t) => {
            t.scrollLeft = t.scrollWidth;
            const box = t.getBoundingClientRect();
            return [...t.querySelectorAll('tr > :first-child')]
              .filter((c) => {
                const r = c.getBoundingClientRect();
                return r.left < box.left - 1 || r.right > box.right + 1;
              })
              .map((c) => `${t.className}: ${c.textContent ?? ''}`);
          }),
      );
      expect(lost).toEqual([]);
      await page.close();
    },
  );

  it('at 1280 px, each service name and each of its cells keeps to one line', async () => {
    // Nine strategy columns squeezed the name column: "code-tokyo" broke at its hyphen and
    // "37 (5 writes)" under it. The table scrolls in its own box instead.
    const { page } = await open(1280);
    const wrapped = await page.$$eval('table.services tbody th, table.services tbody td', (cells) =>
      cells
        .filter((c) => {
          const range = document.createRange();
          range.selectNodeContents(c);
          const line = parseFloat(getComputedStyle(c).lineHeight);
          return range.getBoundingClientRect().height > 1.5 * line;
        })
        .map((c) => c.textContent ?? ''),
    );
    expect(wrapped).toEqual([]);
    await page.close();
  });

  it.each([800, 1000, 1100])(
    'at %i px, between the phone and the desktop layouts, only a table scrolls, never the page',
    async (width) => {
      const { page } = await open(width);
      const wide = await page.$$eval('table', (ts) =>
        ts.filter((t) => t.scrollWidth > t.clientWidth).map((t) => t.className),
      );
      // The per-service table has a column per strategy: wider than these windows.
      expect(wide).toContain('services');
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        width,
      );
      await page.close();
    },
  );

  for (const width of WIDTHS) {
    it(`at ${width} px: no text overlaps, legends fit and match their series, axes say units and zone`, async () => {
      const { page } = await open(width);
      const boxes = await textBoxes(page);
      expect(boxes.length).toBeGreaterThan(50);
      const clashes: string[] = [];
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++) {
          const a = boxes[i];
          const b = boxes[j];
          if (a && b && overlaps(a, b)) clashes.push(`${a.what} × ${b.what}`);
        }
      expect(clashes).toEqual([]);

      // Nothing wider than the window but what scrolls in its own box, every caption readable
      // whole, and each chart drawn for the width it is shown at (its text keeps its size).
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        width,
      );
      const captions = await page.$$eval('caption', (cs) =>
        cs.map((c) => {
          const range = document.createRange();
          range.selectNodeContents(c);
          return { text: c.textContent ?? '', right: range.getBoundingClientRect().right };
        }),
      );
      expect(captions.length).toBeGreaterThan(0);
      for (const c of captions) expect(c.right, c.text).toBeLessThanOrEqual(width);
      const visible = await charts(page);
      expect(visible).toHaveLength(2);
      for (const chart of visible) {
        expect(chart.scale).toBeGreaterThan(0.9);
        expect(chart.scale).toBeLessThanOrEqual(1);
        // A plain legend: every entry whole, none paged away, nothing drawn past the picture.
        for (const name of chart.names) expect(chart.legendTexts).toContain(name);
        expect(chart.labels.some((t) => /^\d+\/\d+$/.test(t))).toBe(false);
        expect(chart.textRight).toBeLessThanOrEqual(chart.svgRight + TOLERANCE);
        // Colours: the entry's icon has the declared colour, and so has its series' line; a
        // line's entry has its dash and its marker, as on the plot.
        expect(new Set(chart.declared.map((s) => s.colour)).size).toBe(chart.declared.length);
        expect(chart.icons).toHaveLength(chart.declared.length);
        for (const icon of chart.icons) {
          const drawn = chart.lines[icon.series];
          expect(drawn?.stroke).toBe(icon.colour);
          if (icon.line) expect(icon.dash).toBe(drawn?.dash);
          const marks = chart.markers[icon.series];
          if (icon.marker && marks) {
            expect(outlineDistance(icon.marker, marks.shape)).toBeLessThan(0.15);
          } else expect([icon.marker, marks]).toEqual([null, undefined]);
        }
        for (const s of chart.declared)
          expect(chart.icons.map((i) => i.colour)).toContain(s.colour);
        if (chart.kind === 'refused') {
          // Colour is not all that tells the strategies apart (WCAG 1.4.1): each has its own
          // dash and its own marker, on the plot and in the legend.
          expect(chart.icons.every((i) => i.line && i.marker)).toBe(true);
          expect(new Set(chart.icons.map((i) => i.dash)).size).toBe(chart.icons.length);
          expect(new Set(chart.icons.map((i) => i.markerPath)).size).toBe(chart.icons.length);
          for (const icon of chart.icons)
            expect(chart.markers[icon.series]?.count).toBeGreaterThanOrEqual(1);
          // Told apart by shape on the plot too, by more than a legend marker may differ from
          // its series' markers above.
          const shapes = Object.values(chart.markers).map((m) => m.shape);
          for (let i = 0; i < shapes.length; i++)
            for (let j = i + 1; j < shapes.length; j++)
              expect(outlineDistance(shapes[i] ?? [], shapes[j] ?? [])).toBeGreaterThan(0.15);
        }
        // Axes: units, the scenario's time zone, and a date under the first tick.
        expect(chart.axisNames.some((n) => n.startsWith('time (Europe/Berlin, UTC+01:00)'))).toBe(
          true,
        );
        expect(chart.axisNames.some((n) => n === 'GPUs' || n === 'GPU-minutes')).toBe(true);
        expect(chart.labels).toContain('Tue 24 Nov');
      }
      expectNoGap(await spacing(page));
      const shot = join(process.env.SCREENSHOT_DIR ?? dir, `simulation-report-${width}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      expect((await stat(shot)).size).toBeGreaterThan(20_000);
      console.log(`report screenshot: ${shot}`);
      await page.close();
    });
  }

  it('gives every chart a name in words and its numbers in a table, equal to the comparison', async () => {
    // Before: a chart was an SVG of tick labels to a screen reader, and its numbers were
    // nowhere else on the page.
    const { page } = await open(1280);
    const named = await page.$$eval('figure.chart > div', (divs) =>
      divs
        .filter((d) => d.getBoundingClientRect().width > 0)
        .map((d) => ({ role: d.getAttribute('role'), label: d.getAttribute('aria-label') ?? '' })),
    );
    expect(named).toHaveLength(2);
    for (const n of named) {
      expect(n.role).toBe('img');
      expect(n.label).toMatch(/GPU-minutes/);
    }
    const compared = await page.$$eval('table.comparison tbody tr', (trs) =>
      trs.map((tr) => tr.querySelector('td')?.textContent ?? ''),
    );
    // The refused chart's table: its last row is each strategy's total, as in the comparison.
    const last = await page.$$eval('figure[data-chart="refused"] table.numbers', ([t]) => ({
      heads: [...(t?.querySelectorAll('thead th[scope="col"]') ?? [])].map((th) => th.textContent),
      row: [...(t?.querySelectorAll('tbody tr:last-child td') ?? [])].map((td) => td.textContent),
      rows: t?.querySelectorAll('tbody th[scope="row"]').length,
    }));
    expect(last.rows).toBe(4);
    expect(last.heads.slice(1)).toEqual(
      await page.$$eval('table.comparison tbody th', (ths) => ths.map((th) => th.textContent)),
    );
    expect(last.row).toEqual(compared);
    for (const label of compared) expect(named[1]?.label).toContain(label);
    // The caps chart's numbers: each service's cap, a column each, as the simulation set it.
    const caps = await page.$eval('figure[data-chart="caps"] table.service-caps', (t) => ({
      heads: [...t.querySelectorAll('thead th[scope="col"]')].map((th) => th.textContent),
      rows: [...t.querySelectorAll('tbody tr')].map((tr) => ({
        period: tr.querySelector('th[scope="row"]')?.textContent ?? '',
        cells: [...tr.querySelectorAll('td')].map((td) => Number(td.textContent)),
      })),
    }));
    const series = simulated.strategies.find((s) => s.strategy === 'governor')?.series[0];
    if (!series) throw new Error('no governor series');
    expect(caps.heads).toEqual(['period (Europe/Berlin)', ...series.services]);
    expect(caps.rows).toHaveLength(4);
    caps.rows.forEach((row, hour) => {
      const mean = (values: readonly number[]) =>
        values.slice(hour * 60, hour * 60 + 60).reduce((a, v) => a + v, 0) / 60;
      expect(row.cells).toEqual(
        series.services.map((n) => Math.round(mean(series.caps[n] ?? []) * 10) / 10),
      );
    });
    await page.close();
  });

  it('keeps headings in order and every text at a contrast of 4.5:1 or more', async () => {
    const { page } = await open(1280);
    await page.$$eval('details', (ds) => ds.forEach((d) => (d.open = true)));
    const levels = await page.$$eval('h1, h2, h3, h4', (hs) => hs.map((h) => Number(h.tagName[1])));
    expect(levels[0]).toBe(1);
    for (let i = 1; i < levels.length; i++)
      expect(levels[i] ?? 0).toBeLessThanOrEqual((levels[i - 1] ?? 0) + 1);
    const low = await page.evaluate(() => {
      const rgb = (c: string): number[] => (c.match(/[\d.]+/g) ?? []).map(Number);
      const lum = ([r = 0, g = 0, b = 0]: number[]) => {
        const f = (v: number) => {
          const c = v / 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      // The page's own background, never the browser's: a reader may set a dark one, and the
      // page's dark text would sit on it (WCAG technique F24,
      // https://www.w3.org/WAI/WCAG22/Techniques/failures/F24). Before: the body set the text's
      // colour and no background.
      const background = (e: Element | null): number[] | null => {
        for (let x = e; x; x = x.parentElement) {
          const c = rgb(getComputedStyle(x).backgroundColor);
          if (c.length === 3 || (c[3] ?? 0) > 0) return c.slice(0, 3);
        }
        return null;
      };
      const ratio = (a: number[], b: number[]) => {
        const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x);
        return ((l1 ?? 0) + 0.05) / ((l2 ?? 0) + 0.05);
      };
      const out: string[] = [];
      for (const e of document.body.querySelectorAll('*')) {
        const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent?.trim());
        if (!own || e.getBoundingClientRect().width === 0) continue;
        const svgText = e instanceof SVGElement;
        const colour = svgText ? rgb(getComputedStyle(e).fill) : rgb(getComputedStyle(e).color);
        const behind = background(e);
        if (!behind) {
          out.push(`${e.tagName} "${e.textContent?.slice(0, 30) ?? ''}" on no background`);
          continue;
        }
        const r = ratio(colour, behind);
        if (r < 4.5)
          out.push(`${e.tagName} "${e.textContent?.slice(0, 30) ?? ''}" ${r.toFixed(2)}`);
      }
      return out;
    });
    expect(low).toEqual([]);
    await page.close();
  });

  it('prints every column of every table, and reads the same without JavaScript', async () => {
    // Before: in print the per-service table was a scroll box cut at the paper's edge, six of
    // its strategies' columns lost.
    const { page } = await open(718);
    await page.emulateMedia({ media: 'print' });
    const cut = await page.$$eval('table', (ts) =>
      ts
        .filter((t) => t.getBoundingClientRect().width > 0 && t.scrollWidth > t.clientWidth + 1)
        .map((t) => t.className),
    );
    expect(cut).toEqual([]);
    expect((await page.pdf({ format: 'A4' })).byteLength).toBeGreaterThan(50_000);
    await page.close();
    const context = await browser.newContext({ javaScriptEnabled: false });
    const plain = await context.newPage();
    await plain.goto(`file://${file}`);
    const shown = await plain.$$eval(
      'figure.chart svg',
      (svgs) => svgs.filter((s) => s.getBoundingClientRect().width > 0).length,
    );
    expect(shown).toBe(2);
    await context.close();
  });
});
