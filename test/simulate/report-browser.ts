import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

/**
 * What the report's tests in headless Chromium share: the browser, opening a page, and reading
 * its charts (legends, series, spacing under the plot) as drawn. One browser per test file, a
 * page per test.
 */

const CHROMIUM = '/usr/bin/chromium';
/** Pixels two text boxes may share (anti-aliasing, rounding) before they count as overlapping. */
export const TOLERANCE = 1;

/** Debian's Chromium, headless, with nothing that reaches the network on its own. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** A report file opened at `width`, with the requests it made and the dialogs it raised. */
export async function openReport(
  browser: Browser,
  path: string,
  width: number,
): Promise<{ page: Page; requests: string[]; dialogs: string[] }> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const requests: string[] = [];
  const dialogs: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(`file://${path}`);
  return { page, requests, dialogs };
}

/** A legend entry as drawn: its series, its colour, its line's dash and its marker's shape. */
interface Icon {
  series: number;
  colour: string;
  /** The icon's line's `stroke-dasharray`, for a line; null for a solid one or a band's box. */
  dash: string | null;
  line: boolean;
  /** The marker's path, and its outline sampled along it within its own box (0 to 1). */
  markerPath: string | null;
  marker: number[] | null;
}

interface LegendCheck {
  kind: string;
  names: string[];
  declared: { name: string; colour: string }[];
  icons: Icon[];
  /** Each series' line on the plot, in series order. */
  lines: { stroke: string; dash: string | null }[];
  /** Each series' markers on the plot: how many, and the first's outline as `Icon.marker`. */
  markers: Record<number, { count: number; shape: number[] }>;
  legendTexts: string[];
  axisNames: string[];
  labels: string[];
  svgRight: number;
  textRight: number;
  /** The chart's width on the page ÷ the width it was drawn for: below 1 its text shrank. */
  scale: number;
}

/** For each visible chart: its declared series, its legend icons and its drawn lines. */
export async function charts(page: Page): Promise<LegendCheck[]> {
  return page.$$eval('figure.chart > div', (divs) =>
    divs
      .filter((d) => d.getBoundingClientRect().width > 0)
      .map((d) => {
        const svg = d.querySelector('svg');
        if (!svg) throw new Error('a chart without svg');
        const declared = JSON.parse(d.getAttribute('data-series') ?? '[]') as {
          name: string;
          colour: string;
        }[];
        // A path's outline, sampled at even steps along it, within its own box: the same for
        // one shape at any size and place.
        const outline = (p: SVGPathElement): number[] => {
          const length = p.getTotalLength();
          const box = p.getBBox();
          return Array.from({ length: 16 }, (_, k) => {
            const at = p.getPointAtLength((length * k) / 16);
            return [(at.x - box.x) / (box.width || 1), (at.y - box.y) / (box.height || 1)];
          }).flat();
        };
        // A legend entry: its icon's paths, then its text, then its hit area, which names the
        // series. A line's icon is a straight stroke and perhaps a marker; a band's, a box.
        const icons: {
          series: number;
          colour: string;
          dash: string | null;
          line: boolean;
          markerPath: string | null;
          marker: number[] | null;
        }[] = [];
        let parts: SVGPathElement[] = [];
        for (const p of svg.querySelectorAll('path')) {
          const legend = p.getAttribute('ecmeta_ssr_type') === 'legend';
          if (p.getAttribute('pointer-events') === 'visible') {
            if (legend) {
              const stroke = parts.find((q) =>
                /^M[\d.]+ [\d.]+L[\d.]+ [\d.]+$/.test(q.getAttribute('d') ?? ''),
              );
              const filled = parts.find(
                (q) => q !== stroke && q.getAttribute('fill-opacity') !== '0',
              );
              icons.push({
                series: Number(p.getAttribute('ecmeta_series_index')),
                colour: stroke?.getAttribute('stroke') ?? filled?.getAttribute('fill') ?? '',
                dash: stroke?.getAttribute('stroke-dasharray') ?? null,
                line: stroke !== undefined,
                markerPath: stroke && filled ? filled.getAttribute('d') : null,
                marker: stroke && filled ? outline(filled) : null,
              });
              parts = [];
            }
            continue;
          }
          if (legend || p.closest('[clip-path]') === null) parts.push(p);
          if (p.getAttribute('ecmeta_ssr_type') === 'chart') parts = [];
        }
        // A line series is drawn as one stroked path inside the plot's clip, in series order.
        const lines = [...svg.querySelectorAll('g[clip-path] path')]
          .filter((p) => p.getAttribute('fill') === 'none' && p.getAttribute('stroke'))
          .map((p) => ({
            stroke: p.getAttribute('stroke') ?? '',
            dash: p.getAttribute('stroke-dasharray'),
          }));
        const markers: Record<number, { count: number; shape: number[] }> = {};
        for (const p of svg.querySelectorAll<SVGPathElement>('path[ecmeta_ssr_type="chart"]')) {
          if (!(p.getAttribute('transform') ?? '').startsWith('matrix(')) continue;
          const series = Number(p.getAttribute('ecmeta_series_index'));
          const seen = markers[series];
          if (seen) seen.count += 1;
          else markers[series] = { count: 1, shape: outline(p) };
        }
        const texts = [...svg.querySelectorAll('text')];
        const box = svg.getBoundingClientRect();
        return {
          kind: d.closest('figure')?.getAttribute('data-chart') ?? '',
          names: declared.map((s) => s.name),
          declared,
          icons,
          lines,
          markers,
          legendTexts: texts.map((t) => t.textContent ?? ''),
          axisNames: texts
            .filter((t) => /^time \(|^GPUs$|^GPU-minutes$/.test(t.textContent ?? ''))
            .map((t) => t.textContent ?? ''),
          labels: texts.map((t) => t.textContent ?? ''),
          svgRight: box.right,
          scale: box.width / Number(svg.getAttribute('width')),
          textRight: Math.max(...texts.map((t) => t.getBoundingClientRect().right)),
        };
      }),
  );
}

interface Spacing {
  /** The time axis's tick labels' bottom to its name's top. */
  ticksToName: number;
  /** The time axis's name's bottom to the legend's first row. */
  nameToLegend: number;
  /** The legend's last row to the picture's bottom edge. */
  legendToEnd: number;
}

/**
 * For each visible chart, the empty space under the plot: between the tick labels and the axis
 * name, the axis name and the legend, and the legend and the picture's end, in CSS pixels.
 */
export async function spacing(page: Page): Promise<Spacing[]> {
  return page.$$eval('figure.chart > div', (divs) =>
    divs
      .filter((d) => d.getBoundingClientRect().width > 0)
      .map((d) => {
        const svg = d.querySelector('svg');
        if (!svg) throw new Error('a chart without svg');
        // Each legend entry's hit area spans its icon and its text.
        const entries = [...svg.querySelectorAll('path[ecmeta_ssr_type="legend"]')]
          .filter((p) => p.getAttribute('pointer-events') === 'visible')
          .map((p) => p.getBoundingClientRect());
        const texts = [...svg.querySelectorAll('text')].map((t) => ({
          text: t.textContent ?? '',
          box: t.getBoundingClientRect(),
        }));
        const name = texts.find((t) => t.text.startsWith('time ('))?.box;
        const ticks = texts
          .filter((t) => /^\d\d:\d\d$|^[A-Z][a-z]{2} \d+ [A-Z][a-z]{2}$/.test(t.text))
          .map((t) => t.box.bottom);
        if (!name || entries.length === 0 || ticks.length === 0)
          throw new Error('no axis or legend');
        return {
          ticksToName: name.top - Math.max(...ticks),
          nameToLegend: Math.min(...entries.map((e) => e.top)) - name.bottom,
          legendToEnd:
            svg.getBoundingClientRect().bottom - Math.max(...entries.map((e) => e.bottom)),
        };
      }),
  );
}

/** No empty band under a plot: what is there is at most this far from what is next. */
export function expectNoGap(spaces: Spacing[]): void {
  expect(spaces.length).toBeGreaterThan(0);
  for (const space of spaces) {
    expect(space.ticksToName).toBeLessThanOrEqual(6);
    expect(space.nameToLegend).toBeGreaterThanOrEqual(2);
    expect(space.nameToLegend).toBeLessThanOrEqual(12);
    expect(space.legendToEnd).toBeLessThanOrEqual(10);
  }
}
