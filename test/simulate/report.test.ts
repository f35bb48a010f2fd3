import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { benchPolicy, TRACE_DIR } from '../../src/simulate/scenarios.js';
import { simulate } from '../../src/simulate/simulate.js';
import {
  BAND_PATTERNS,
  bucketPeaks,
  capBands,
  capsChart,
  CHART_WIDTHS,
  COLOURS,
  legendLabel,
  offsetChanges,
  stackedSteps,
  STRATEGY_COLOURS,
  STRATEGY_LOOKS,
} from '../../src/simulate/report-charts.js';
import { renderReport } from '../../src/simulate/report.js';
import type {
  PoolMetrics,
  PoolSeries,
  SimulationResult,
  StrategyResult,
} from '../../src/simulate/result.js';
import { STRATEGY_LABELS, type Strategy } from '../../src/simulate/result.js';

const POOL = 'p/us-central1/nvidia-l4/zonal';

function pool(refused: number, capsOverQuotaMinutes = 0): PoolMetrics {
  return {
    pool: POOL,
    quota: 4,
    available: 4,
    services: 2,
    demandGpuMinutes: 600,
    refusedGpuMinutes: refused,
    refusedCapGpuMinutes: refused,
    refusedQuotaGpuMinutes: 0,
    idleGpuMinutes: 0,
    writes: 0,
    writesPerServiceHour: 0,
    scarceMinutes: 0,
    shareError: null,
    priorityInversions: 0,
    capsOverQuotaMinutes,
    invariantViolations: null,
  };
}

function strategy(
  s: Strategy,
  refused: [number, number],
  caps: [number, number],
  over = 0,
): StrategyResult {
  const minutes = 60;
  return {
    strategy: s,
    label: STRATEGY_LABELS[s],
    pools: [pool(refused[0] + refused[1], over)],
    services: ['a', 'b'].map((name, i) => ({
      pool: POOL,
      name,
      managed: true,
      priority: 0,
      weight: 1,
      demandGpuMinutes: 300,
      refusedGpuMinutes: refused[i] ?? 0,
      refusedCapGpuMinutes: refused[i] ?? 0,
      refusedQuotaGpuMinutes: 0,
      idleGpuMinutes: 0,
      writes: s === 'governor' ? 2 : 0,
      reversals: 0,
    })),
    totals: {
      refusedGpuMinutes: refused[0] + refused[1],
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
        pool: POOL,
        quota: 4,
        available: 4,
        quotaChanges: [],
        services: ['a', 'b'],
        demand: new Array<number>(minutes).fill(5),
        caps: {
          a: new Array<number>(minutes).fill(caps[0]),
          b: new Array<number>(minutes).fill(caps[1]),
        },
        refused: new Array<number>(minutes).fill(1),
      },
    ],
  };
}

function result(strategies: StrategyResult[], gapClosed: number | null): SimulationResult {
  return {
    label: 'hand-made',
    start: '2026-11-24T00:00:00Z',
    timezone: 'UTC',
    minutes: 60,
    tickMinutes: 5,
    lagMinutes: 3,
    viaEmulator: false,
    strategies,
    headline: {
      gapClosed,
      gapClosedClairvoyant: gapClosed,
      refusedVsEqualSplit: 1.2,
      writesPerServiceHour: 2,
      invariantViolations: 0,
    },
  };
}

describe('a figure the run cannot give', () => {
  it('is a dash that says why, in the headline and in the share error column', () => {
    // Before: with no gap to close, "against the clairvoyant oracle: —" said nothing of why, and
    // no word under the comparison said when the share error is "—" (a pool that never had more
    // demand than GPUs, or had no GPU to share).
    const html = renderReport(result([strategy('governor', [0, 0], [2, 2])], null));
    const text = html.replace(/<[^>]+>/g, '');
    expect(text).toContain(
      'in refused GPU-minutes: no gap: the equal split refused no more than the best at the same tick;',
    );
    expect(text).toContain(
      'against the clairvoyant oracle (re-split every minute): — (no gap: the equal split refused no more than it)',
    );
    expect(text).toMatch(/share error under scarcity[^]*— where no minute/);
  });
});

describe('the report explains', () => {
  it('why the governor refused more than static caps that over-commit the pool', () => {
    const html = renderReport(
      result(
        [strategy('governor', [90, 10], [2, 2]), strategy('fleet-caps', [20, 10], [4, 3], 30)],
        -0.5,
      ),
    );
    expect(html).toContain('Why the governor refused more than the fleet’s static caps here');
    expect(html).toContain('the governor refused 100 GPU-minutes, the fleet’s static caps 30');
    expect(html).toContain('sum to 7 GPUs against 4 available: they over-commit the pool');
    expect(html).toContain('Most of the difference is in a (90 against 20)');
    expect(html).toContain('(negative: the governor refused more than the equal split)');
  });

  it('how many failed runs and violations it does not list', () => {
    const governor = strategy('governor', [5, 0], [2, 2]);
    const failed = Array.from({ length: 20 }, (_, i) => `run ${i}: the store is gone`);
    const html = renderReport(
      result(
        [
          {
            ...governor,
            failedRuns: failed,
            violations: ['one'],
            totals: { ...governor.totals, failedRuns: 23, invariantViolations: 1 },
          },
          strategy('fleet-caps', [10, 0], [2, 2]),
        ],
        0.9,
      ),
    );
    expect(html).toContain('<li>run 19: the store is gone</li><li>… and 3 more</li>');
    expect(html).toContain('<ul><li>one</li></ul>');
  });

  it('the lag and cadence when the static caps fit the pool, and nothing when the governor does better', () => {
    const worse = renderReport(
      result([strategy('governor', [50, 0], [2, 2]), strategy('fleet-caps', [10, 0], [2, 2])], 0.1),
    );
    expect(worse).not.toContain('over-commit the pool');
    expect(worse).toContain('every 5 min on Monitoring data 3 min old');
    const better = renderReport(
      result([strategy('governor', [5, 0], [2, 2]), strategy('fleet-caps', [10, 0], [2, 2])], 0.9),
    );
    expect(better).not.toContain('Why the governor refused more');
  });

  it('a service the policy leaves alone as unmanaged, with no priority or weight of its own', () => {
    const unmanaged = (r: StrategyResult): StrategyResult => ({
      ...r,
      services: r.services.map((s) => (s.name === 'b' ? { ...s, managed: false } : s)),
    });
    const html = renderReport(
      result(
        [strategy('governor', [5, 0], [2, 2]), strategy('fleet-caps', [10, 0], [2, 2])].map(
          unmanaged,
        ),
        0.9,
      ),
    );
    expect(html).toContain(
      '<tr><th scope="row">b <small>(unmanaged)</small></th><td>–</td><td>–</td><td>300</td>',
    );
    expect(html).toContain('<tr><th scope="row">a</th><td>0</td><td>1</td><td>300</td>');
  });

  it('every column of its tables, and the page needs nothing else', () => {
    const html = renderReport(
      result([strategy('governor', [5, 0], [2, 2]), strategy('fleet-caps', [10, 0], [2, 2])], 0.9),
    );
    expect(html.match(/<caption>/g)).toHaveLength(5);
    expect(html.match(/<table class="numbers">/g)).toHaveLength(2);
    expect(html.match(/<table class="numbers service-caps">/g)).toHaveLength(1);
    expect(html.match(/<dl class="columns">/g)).toHaveLength(2);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    expect(html).toContain('<a href="#how-to-read">');
  });
});

/** WCAG 2.2 relative luminance of #rrggbb (https://www.w3.org/TR/WCAG22/#dfn-relative-luminance). */
function luminance(hex: string): number {
  const [r = 0, g = 0, b = 0] = [1, 3, 5]
    .map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2.2 contrast ratio (https://www.w3.org/TR/WCAG22/#dfn-contrast-ratio). */
function contrast(a: string, b: string): number {
  const [high = 0, low = 0] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (high + 0.05) / (low + 0.05);
}

/** CIE L*a*b* of an sRGB colour written #rrggbb (D65). */
function lab(hex: string): [number, number, number] {
  const [r, g, b] = [1, 3, 5]
    .map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)) as [
    number,
    number,
    number,
  ];
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  const x = f((r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047);
  const y = f(r * 0.2126 + g * 0.7152 + b * 0.0722);
  const z = f((r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883);
  return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
}

describe('the strategies chart', () => {
  it('draws every line at a contrast of 3:1 or more against the white of the plot', () => {
    // WCAG 2.2 success criterion 1.4.11, "Non-text Contrast" (https://www.w3.org/TR/WCAG22/#non-text-contrast):
    // parts of graphics required to understand the content, 3:1 against adjacent colours.
    // Before: static equal split 2.42, best at the same tick 2.26, the evidence oracle 2.01 and
    // the policy oracle 2.73, lines a reader with low vision loses on the white of the plot.
    const lines = { ...STRATEGY_COLOURS, ...COLOURS };
    const low = Object.entries(lines)
      .map(([name, colour]) => [name, colour, contrast(colour, '#ffffff')] as const)
      .filter(([, , ratio]) => ratio < 3)
      .map(([name, colour, ratio]) => `${name} ${colour}: ${ratio.toFixed(2)}`);
    expect(low).toEqual([]);
  });

  it('draws no two strategies in colours a reader could mistake for each other', () => {
    // CIE76 distance: about 2 is the smallest difference seen side by side; lines a legend
    // names apart need far more. Two browns (fleet caps, the writes-limited oracle) were 13.6.
    const entries = Object.entries(STRATEGY_COLOURS);
    const close: string[] = [];
    for (let i = 0; i < entries.length; i++)
      for (let j = i + 1; j < entries.length; j++) {
        const [a, ca] = entries[i] ?? ['', ''];
        const [b, cb] = entries[j] ?? ['', ''];
        const [l1, a1, b1] = lab(ca);
        const [l2, a2, b2] = lab(cb);
        const distance = Math.hypot(l1 - l2, a1 - a2, b1 - b2);
        if (distance < 20) close.push(`${a} ${ca} ~ ${b} ${cb}: ${distance.toFixed(1)}`);
      }
    expect(close).toEqual([]);
  });

  it('draws each strategy with its own dash and marker, not by colour alone', () => {
    // Before: nine strategies in two dash styles (solid, and dashed for every oracle) and no
    // marker, so only colour told the static split from over-commit, or one oracle from another.
    const looks = Object.keys(STRATEGY_LABELS).map((s) => STRATEGY_LOOKS[s as Strategy]);
    expect(new Set(looks.map((l) => l.dash.join(','))).size).toBe(looks.length);
    expect(new Set(looks.map((l) => l.marker)).size).toBe(looks.length);
    // Filled markers: a hollow one ('emptyCircle') shows white in the legend, not its colour.
    for (const look of looks) expect(look.marker).toMatch(/^(?!empty)\w+$|^path:\/\//);
  });
});

describe('the caps chart', () => {
  it('draws no two cap bands in colours a reader could mistake for each other', () => {
    // Before: two teals 4.0 apart (the 6th and 9th services) and two mauves 16.2 apart (the 5th
    // and 10th), so in a pool of nine services or more two legend entries had one colour.
    const minutes = 10;
    const bandsOf = (count: number) => {
      const names = Array.from({ length: count }, (_, i) => `svc-${i}`);
      return capBands({
        pool: POOL,
        quota: 100,
        available: 100,
        quotaChanges: [],
        services: names,
        demand: new Array<number>(minutes).fill(1),
        caps: Object.fromEntries(names.map((n, i) => [n, new Array<number>(minutes).fill(i + 1)])),
        refused: new Array<number>(minutes).fill(0),
      });
    };
    for (const count of [11, 12, 60]) {
      const bands = bandsOf(count);
      const close: string[] = [];
      bands.forEach((a, i) =>
        bands.slice(i + 1).forEach((b) => {
          const [l1, a1, b1] = lab(a.colour);
          const [l2, a2, b2] = lab(b.colour);
          const distance = Math.hypot(l1 - l2, a1 - a2, b1 - b2);
          if (distance < 20)
            close.push(`${a.name} ${a.colour} ~ ${b.name} ${b.colour}: ${distance.toFixed(1)}`);
        }),
      );
      expect(close).toEqual([]);
    }
  });
});

describe('the line above a pool', () => {
  it('speaks of one service as one', () => {
    // Before: "Quota 4 GPUs, all of them for these 1 service."
    const one = strategy('governor', [5, 0], [2, 2]);
    const only = { ...one, services: one.services.slice(0, 1) };
    only.series = one.series.map((p) => ({ ...p, services: ['a'], caps: { a: p.caps.a ?? [] } }));
    const html = renderReport(result([only], null));
    expect(html).toContain('<p>Quota 4 GPUs, all of them for this service.</p>');
    expect(renderReport(result([one], null))).toContain(
      '<p>Quota 4 GPUs, all of them for these 2 services.</p>',
    );
  });

  it('names what holds the GPUs its services cannot have', () => {
    // The GPUs a pool's services cannot have are those worker pools, GPU jobs and manually scaled
    // services hold. Before: "the rest is reserve, unmanaged caps and worker pools", though
    // neither a reserve nor an unmanaged service's cap is taken from them.
    const one = strategy('governor', [5, 0], [2, 2]);
    one.series = one.series.map((p) => ({ ...p, quota: 10, available: 8 }));
    expect(renderReport(result([one], null))).toContain(
      '<p>Quota 10 GPUs, 8 of them for these 2 services (the other 2 are held by worker pools, GPU jobs and manually scaled services).</p>',
    );
  });
});

describe('a pool whose quota is cut during the run', () => {
  it('gives the quota as it went in the chart’s numbers and words, cut in the middle of a period', () => {
    // Before: the period's row said the quota it began with (4) and the picture's words the first
    // quota, while the chart's line stepped down to 2 half an hour into the period.
    const cut = (s: StrategyResult): StrategyResult => ({
      ...s,
      series: s.series.map((p) => ({ ...p, quotaChanges: [{ minute: 30, quota: 2 }] })),
    });
    const html = renderReport(result([cut(strategy('governor', [0, 0], [2, 2]))], null));
    expect(html).toContain('from 00:30 on, 2 GPUs (the quota was cut)');
    const table = /<table class="numbers">.*?<\/table>/.exec(html)?.[0] ?? '';
    expect(table).toContain('<tr><th scope="row">00:00–01:00</th><td>4 → 2</td>');
    expect(html).toMatch(/role="img" aria-label="Governor caps[^"]*: quota 4 GPUs, 2 from 00:30;/);
  });

  it('says nothing of a cut that left the quota as it was, rather than call it a raise', () => {
    // A scenario's cut of 2 GPUs by 0.75 rounds back to 2; the page said "the quota was raised".
    const same = (s: StrategyResult): StrategyResult => ({
      ...s,
      series: s.series.map((p) => ({ ...p, quotaChanges: [{ minute: 30, quota: p.quota }] })),
    });
    const html = renderReport(result([same(strategy('governor', [0, 0], [2, 2]))], null));
    expect(html).toContain('<p>Quota 4 GPUs, all of them for these 2 services.</p>');
    expect(html).not.toContain('raised');
  });

  it('draws the quota line at each quota it had, and says when it changed', async () => {
    // Before: the caps chart drew the quota at its first value for the whole run, above caps
    // that the cut had brought down, and the pool's line said nothing of the cut.
    const input = await buildScenario(
      parseScenario({
        scenario: 1,
        hours: 2,
        quota: 8,
        warmupMinutes: 0,
        quotaCut: { atHour: 1, factor: 0.5 },
        services: ['a', 'b'].map((name) => ({
          name,
          maxInstances: 4,
          demand: { shape: { kind: 'constant', value: 3 } },
        })),
      }),
      TRACE_DIR,
    );
    const result = await simulate(input, parsePolicy(benchPolicy()), { hours: 2 });
    const governor = result.strategies.find((s) => s.strategy === 'governor');
    expect(governor?.series[0]?.quotaChanges).toEqual([{ minute: 60, quota: 4 }]);
    const html = renderReport(result);
    expect(html).toContain(
      'Quota 8 GPUs, all of them for these 2 services; from 01:00 on, 4 GPUs (the quota was cut).',
    );
    // The dashed quota line of the caps chart: at 8 GPUs, then at 4 from the cut.
    const quotaLine = html.match(/<path d="([^"]+)"[^>]*stroke="#000000"[^>]*stroke-dasharray/);
    const ys = new Set(
      [...(quotaLine?.[1] ?? '').matchAll(/[ML][\d.]+ ([\d.]+)/g)].map((m) => m[1]),
    );
    expect(ys.size).toBe(2);
  });
});

describe('the legend on a phone', () => {
  it('shows a long service name by its start and end, within the picture, each entry distinct', () => {
    // Before: a 49-character Cloud Run name ran past the 360 px chart's edge and was cut off
    // there, so every long name of a fleet read the same on a phone.
    const names = ['a', 'b'].map((end) => `serving-with-a-long-team-prefix-and-a-model-nam-${end}`);
    expect(names.every((n) => n.length === 49)).toBe(true);
    const minutes = 60;
    const chart = capsChart(
      {
        pool: POOL,
        quota: 4,
        available: 4,
        quotaChanges: [],
        services: names,
        demand: new Array<number>(minutes).fill(1),
        caps: Object.fromEntries(names.map((n) => [n, new Array<number>(minutes).fill(2)])),
        refused: new Array<number>(minutes).fill(0),
      },
      {
        startMs: Date.parse('2026-11-24T00:00:00Z'),
        minutes,
        timezone: 'UTC',
        width: CHART_WIDTHS.phone,
      },
      'governor',
    );
    const shown = names.map((n) => legendLabel(`cap ${n}`, CHART_WIDTHS.phone));
    expect(shown).toEqual([
      expect.stringMatching(/^cap serving-.*….*-a$/),
      expect.stringMatching(/^cap serving-.*….*-b$/),
    ]);
    for (const label of shown) expect(chart.svg).toContain(`>${label}</text>`);
    // Wide enough, the name is whole.
    expect(legendLabel(`cap ${names[0] ?? ''}`, CHART_WIDTHS.wide)).toBe(`cap ${names[0] ?? ''}`);
  });
});

describe('the 15-minute mean lines of the caps chart', () => {
  it('run from the first minute of the run to its end, as the quota line does', () => {
    // Before: each mean was drawn at the middle of its 15 minutes only, so the demand and refused
    // lines began 7 minutes into the run and stopped up to 7 minutes before its end: an hour's
    // replay showed neither demand nor refusals in a quarter of its chart.
    const minutes = 58;
    const { svg } = capsChart(
      {
        pool: POOL,
        quota: 10,
        available: 10,
        quotaChanges: [],
        services: ['a'],
        demand: new Array<number>(minutes).fill(7),
        caps: { a: new Array<number>(minutes).fill(6) },
        refused: new Array<number>(minutes).fill(1),
      },
      {
        startMs: Date.parse('2026-11-24T00:00:00Z'),
        minutes,
        timezone: 'UTC',
        width: CHART_WIDTHS.wide,
      },
      'governor',
    );
    const span = (colour: string) => {
      const d = new RegExp(`<path d="([^"]+)"[^>]*stroke="${colour}"`).exec(svg)?.[1] ?? '';
      const xs = [...d.matchAll(/[ML](-?[\d.]+) /g)].map((m) => Number(m[1]));
      return [Math.min(...xs), Math.max(...xs)] as const;
    };
    const quota = span('#000000');
    expect(quota[1]).toBeGreaterThan(quota[0]);
    expect(span('#1b2a4a')).toEqual(quota);
    expect(span('#d62728')).toEqual(quota);
  });
});

describe('the per-minute demand line past a minute a pixel', () => {
  it('keeps the busiest minute of each bucket, where it was', () => {
    // Before: bucket means; a minute of 9 among nine of 1 was drawn as 1.8.
    const values = [1, 1, 9, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3];
    expect(bucketPeaks(values, 0, 10)).toEqual([
      [2 * 60_000, 9],
      [11 * 60_000, 3],
    ]);
    expect(bucketPeaks(values, 0, 1)).toEqual(values.map((v, m) => [m * 60_000, v]));
  });
});

describe('the legend under a chart', () => {
  it('is as tall as the rows ECharts lays it out in, whatever the names and the width', () => {
    // Before: the picture reserved 2 px more than ECharts draws for each row of the legend, and a
    // row more whenever an entry ended within the gap after it, so an empty band opened between
    // the axis and the legend (30 px under a week of sixty services).
    const minutes = 60;
    const picture = (names: string[], width: number) =>
      capsChart(
        {
          pool: POOL,
          quota: 4,
          available: 4,
          quotaChanges: [],
          services: names,
          demand: new Array<number>(minutes).fill(1),
          caps: Object.fromEntries(names.map((n) => [n, new Array<number>(minutes).fill(1)])),
          refused: new Array<number>(minutes).fill(0),
        },
        { startMs: Date.parse('2026-11-24T00:00:00Z'), minutes, timezone: 'UTC', width },
        'governor',
      ).svg;
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-z][a-z0-9-]{0,48}$/), { minLength: 1, maxLength: 14 }),
        fc.constantFrom(...Object.values(CHART_WIDTHS)),
        (names, width) => {
          const svg = picture([...new Set(names)], width);
          const height = Number(/<svg[^>]*height="(\d+)"/.exec(svg)?.[1]);
          // Each entry's hit area: its top 1 px above its row's origin, 12 px tall.
          const bottoms = [
            ...svg.matchAll(
              /<path d="M-?[\d.]+ -1l[\d.]+ 0l0 12l[^"]*" transform="translate\([\d.]+ ([\d.]+)\)" fill="none" pointer-events="visible"[^>]*ecmeta_ssr_type="legend"/g,
            ),
          ].map((m) => Number(m[1]) + 11);
          expect(bottoms.length).toBeGreaterThan(0);
          expect(height - Math.max(...bottoms)).toBe(8);
        },
      ),
      { seed: 7, numRuns: 100 },
    );
    // A hundred charts drawn take seconds, and on a loaded 2-core machine more than the 20 s a
    // unit test is given: a guard against a hang, not a bound on the time taken.
  }, 90_000);
});

describe('a pool of more services than colours', () => {
  it('draws the services with the most cap in their own colours and the rest as one band', () => {
    // Before: twelve colours for sixty services, so "cap team-00" and "cap team-12" had one
    // colour and the legend named neither band; the legend was thirty rows, taller than the plot.
    const names = Array.from({ length: 60 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
    const minutes = 30;
    const caps = Object.fromEntries(
      names.map((n, i) => [n, new Array<number>(minutes).fill(i % 7 === 0 ? 9 : 1)]),
    );
    const bands = capBands({
      pool: POOL,
      quota: 200,
      available: 200,
      quotaChanges: [],
      services: names,
      demand: new Array<number>(minutes).fill(1),
      caps,
      refused: new Array<number>(minutes).fill(0),
    });
    expect(bands).toHaveLength(11);
    expect(new Set(bands.map((b) => b.colour)).size).toBe(11);
    // The nine services with cap 9 first, in the pool's order, then two of cap 1, then the rest.
    // The nine services of cap 9 and the first of cap 1, in the pool's order.
    expect(bands.slice(0, 10).map((b) => b.name)).toEqual(
      names.filter((_, i) => i % 7 === 0 || i === 1).map((n) => `cap ${n}`),
    );
    expect(bands.at(-1)?.name).toBe('caps of the 50 other services');
    // Nothing lost: the bands sum to the pool's caps at every minute.
    for (let m = 0; m < minutes; m++)
      expect(bands.reduce((a, b) => a + (b.caps[m] ?? 0), 0)).toBe(9 * 9 + 51);
  });

  it('stacks caps as points where they change, not one per minute', () => {
    const start = Date.parse('2026-11-24T00:00:00Z');
    const a = [1, 1, 1, 2, 2, 2];
    const b = [3, 3, 4, 4, 4, 4];
    expect(stackedSteps([a, b], start, 100)).toEqual([
      [
        [start, 1],
        [start + 2 * 60_000, 1],
        [start + 3 * 60_000, 2],
        [start + 6 * 60_000, 2],
      ],
      [
        [start, 3],
        [start + 2 * 60_000, 4],
        [start + 3 * 60_000, 4],
        [start + 6 * 60_000, 4],
      ],
    ]);
  });
});

/**
 * Each series' pattern as drawn in an SVG of ECharts: the markup of the <pattern> (without its id)
 * that fills the copy ECharts draws over a band's area on the plot, and over its legend icon. The
 * copy follows the path it copies: a legend icon, which names its series, or an area, known by
 * its series' colour (`colours`, in series order).
 */
function drawnPatterns(
  svg: string,
  colours: readonly string[],
): { plot: Map<number, string>; legend: Map<number, string> } {
  const patterns = new Map(
    [...svg.matchAll(/<pattern ([^>]*)id="([^"]+)">([\s\S]*?)<\/pattern>/g)].map((m) => [
      m[2] ?? '',
      `${m[1] ?? ''}${m[3] ?? ''}`,
    ]),
  );
  const plot = new Map<number, string>();
  const legend = new Map<number, string>();
  let owner: { series: number; legend: boolean } | null = null;
  for (const [, attrs = ''] of svg.matchAll(/<path ([^>]*)>/g)) {
    const url = /fill="url\(#([^)]+)\)"/.exec(attrs)?.[1];
    if (url) {
      const markup = patterns.get(url);
      if (markup === undefined || owner === null) throw new Error(`pattern ${url} of no series`);
      (owner.legend ? legend : plot).set(owner.series, markup);
      owner = null;
      continue;
    }
    const series = /ecmeta_series_index="(\d+)"/.exec(attrs)?.[1];
    const fill = /fill="([^"]+)"/.exec(attrs)?.[1] ?? '';
    if (series !== undefined && attrs.includes('ecmeta_ssr_type="legend"'))
      owner = { series: Number(series), legend: true };
    else if (colours.includes(fill)) owner = { series: colours.indexOf(fill), legend: false };
    else owner = null;
  }
  return { plot, legend };
}

function capsPool(names: string[], minutes: number): PoolSeries {
  return {
    pool: POOL,
    quota: 200,
    available: 200,
    quotaChanges: [],
    services: names,
    demand: new Array<number>(minutes).fill(1),
    caps: Object.fromEntries(
      names.map((n, i) => [n, new Array<number>(minutes).fill(1 + (i % 3))]),
    ),
    refused: new Array<number>(minutes).fill(0),
  };
}

describe('the cap bands', () => {
  it.each([7, 11, 60])(
    'of %i services are told apart by a pattern, on the plot and in the legend alike',
    (count) => {
      // Before: each service's cap was a band told apart from the others by its colour alone
      // (WCAG 1.4.1); a reader who cannot tell the colours apart, or prints in grey, could not
      // tell which band is which service.
      const names = Array.from({ length: count }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
      const series = capsPool(names, 90);
      const bands = capBands(series);
      for (const width of Object.values(CHART_WIDTHS)) {
        const chart = capsChart(
          series,
          { startMs: Date.parse('2026-11-24T00:00:00Z'), minutes: 90, timezone: 'UTC', width },
          'governor',
        );
        const { plot, legend } = drawnPatterns(
          chart.svg,
          chart.series.map((d) => d.colour),
        );
        // Every band drawn with a pattern, but the one that sums the services beyond the
        // colours, which is the one plain band.
        const patterned = bands.flatMap((b, i) => (b.name.startsWith('cap ') ? [i] : []));
        expect([...plot.keys()].sort((a, b) => a - b)).toEqual(patterned);
        expect(new Set(plot.values()).size).toBe(patterned.length);
        // Its legend entry shows the pattern it has on the plot; no line series has one.
        for (const i of patterned) expect(legend.get(i)).toBe(plot.get(i));
        expect(legend.size).toBe(patterned.length);
        // The page says which pattern each band has, each its own.
        const named = chart.series.slice(0, bands.length).map((d) => d.pattern);
        expect(new Set(named).size).toBe(bands.length);
        expect(chart.series.slice(bands.length).every((d) => d.pattern === undefined)).toBe(true);
      }
    },
  );

  it('have as many patterns as the palette has colours, each its own', () => {
    expect(BAND_PATTERNS.length).toBeGreaterThanOrEqual(11);
    expect(new Set(BAND_PATTERNS.map((p) => JSON.stringify(p.decal))).size).toBe(
      BAND_PATTERNS.length,
    );
    expect(new Set(BAND_PATTERNS.map((p) => p.name)).size).toBe(BAND_PATTERNS.length);
  });
});

describe('a run across a change of summer time', () => {
  const frame = {
    startMs: Date.parse('2026-10-29T00:00:00Z'),
    minutes: 7 * 1440,
    timezone: 'America/New_York',
  };

  it('names both offsets and ticks the days at local midnight', () => {
    // Before: the axis said "UTC-04:00" for the whole week, and on a phone the one tick of the
    // week fell at 23:00 on Tue 3 Nov (a week of minutes from midnight, across the change).
    expect(offsetChanges(frame)).toEqual([
      { minute: 0, offset: '-04:00' },
      { minute: 78 * 60, offset: '-05:00' },
    ]);
    const series = {
      pool: POOL,
      quota: 4,
      available: 4,
      quotaChanges: [],
      services: ['a'],
      demand: new Array<number>(frame.minutes).fill(1),
      caps: { a: new Array<number>(frame.minutes).fill(2) },
      refused: new Array<number>(frame.minutes).fill(0),
    };
    for (const width of Object.values(CHART_WIDTHS)) {
      const { svg } = capsChart(series, { ...frame, width }, 'governor');
      expect(svg).toContain('>time (America/New_York, UTC-04:00 then -05:00)</text>');
      const days = [...svg.matchAll(/>(\w{3} \d{1,2} \w{3})</g)].map((m) => m[1]);
      expect(days.length).toBeGreaterThanOrEqual(2);
      // Each named day is a day of the run, from Thursday 29 October (local) on.
      for (const d of days)
        expect([
          'Thu 29 Oct',
          'Fri 30 Oct',
          'Sat 31 Oct',
          'Sun 1 Nov',
          'Mon 2 Nov',
          'Tue 3 Nov',
          'Wed 4 Nov',
        ]).toContain(d);
    }
    const html = renderReport({
      ...result([strategy('governor', [0, 0], [2, 2])], null),
      start: new Date(frame.startMs).toISOString(),
      timezone: frame.timezone,
      minutes: frame.minutes,
    });
    expect(html).toContain('(the clocks moved to UTC-05:00 at Sun 1 Nov 01:00)');
  });

  it('tells the hour the clocks repeat from the one before it, in the chart’s numbers', () => {
    // Before: a row "01:00–01:00", of an hour that reads as none, between "00:00–01:00" and
    // "01:00–02:00", each 01:00 one of two instants an hour apart.
    const html = renderReport({
      ...result([strategy('governor', [0, 0], [2, 2])], null),
      start: '2026-11-01T03:00:00Z',
      timezone: 'America/New_York',
      minutes: 360,
    });
    const table = /<table class="numbers">.*?<\/table>/.exec(html)?.[0] ?? '';
    // A period with an offset ends on a line of its own (a phone keeps room for the numbers).
    const periods = [...table.matchAll(/<tr><th scope="row">(.*?)<\/th>/g)].map((m) =>
      (m[1] ?? '').replace('<br>', ''),
    );
    expect(periods).toEqual([
      '23:00–00:00',
      '00:00–01:00 (UTC-04:00)',
      '01:00 (UTC-04:00)–01:00 (UTC-05:00)',
      '01:00 (UTC-05:00)–02:00',
      '02:00–03:00',
      '03:00–04:00',
    ]);
    expect(table).toContain('<th scope="row">01:00 (UTC-04:00)–<br>01:00 (UTC-05:00)</th>');
    expect(table).toContain('<th scope="row">02:00–03:00</th>');
    expect(html).toContain('(the clocks moved to UTC-05:00 at Sun 1 Nov 01:00)');
  });

  it('ticks the hour the clocks repeat twice, so that every hour is as wide on the axis', () => {
    // Before: one tick for 01:00, though the clocks read 01:00 twice that night (at 05:00 and at
    // 06:00 UTC): the axis went from 01:00 to 02:00 over two hours, as if one hour were two.
    const night = {
      startMs: Date.parse('2026-11-01T03:00:00Z'),
      minutes: 360,
      timezone: 'America/New_York',
    };
    const n = night.minutes;
    const { svg } = capsChart(
      {
        pool: POOL,
        quota: 4,
        available: 4,
        quotaChanges: [],
        services: ['a'],
        demand: new Array<number>(n).fill(1),
        caps: { a: new Array<number>(n).fill(2) },
        refused: new Array<number>(n).fill(0),
      },
      { ...night, width: CHART_WIDTHS.wide },
      'governor',
    );
    const ticks = [...svg.matchAll(/translate\(([\d.]+) [\d.]+\)[^>]*>(\d\d:\d\d)<\/text>/g)].map(
      (m) => ({ x: Number(m[1]), label: m[2] }),
    );
    expect(ticks.map((t) => t.label)).toEqual([
      '23:00',
      '00:00',
      '01:00',
      '01:00',
      '02:00',
      '03:00',
      '04:00',
    ]);
    const gaps = ticks.slice(1).map((t, i) => t.x - (ticks[i]?.x ?? 0));
    for (const gap of gaps) expect(gap).toBeCloseTo(gaps[0] ?? 0, 0);
  });
});

describe('a pool where nothing was refused', () => {
  it('says so instead of a chart of lines all on 0', () => {
    const none = renderReport(
      result([strategy('governor', [0, 0], [2, 2]), strategy('fleet-caps', [0, 0], [2, 2])], null),
    );
    const zero = (s: StrategyResult): StrategyResult => ({
      ...s,
      series: s.series.map((p) => ({ ...p, refused: p.refused.map(() => 0) })),
    });
    const html = renderReport({
      ...result(
        [strategy('governor', [0, 0], [2, 2]), strategy('fleet-caps', [0, 0], [2, 2])],
        null,
      ),
      strategies: [
        zero(strategy('governor', [0, 0], [2, 2])),
        zero(strategy('fleet-caps', [0, 0], [2, 2])),
      ],
      headline: {
        gapClosed: null,
        gapClosedClairvoyant: null,
        refusedVsEqualSplit: null,
        writesPerServiceHour: 0,
        invariantViolations: 0,
      },
    });
    expect(none).toContain('data-chart="refused"');
    expect(html).not.toContain('data-chart="refused"');
    expect(html).toContain('No strategy refused any demand in this pool.');
    expect(html).toContain('<b>—</b> (the equal split refused nothing)');
  });
});

describe('the numbers behind each chart', () => {
  it('are named in words on the picture and given in a table period by period', () => {
    const html = renderReport(
      result(
        [strategy('governor', [30, 30], [2, 2]), strategy('fleet-caps', [60, 0], [4, 3])],
        0.5,
      ),
    );
    // Each drawn width is an image named by its numbers; its text is not read out label by label.
    const labels = [...html.matchAll(/<div class="\w+" role="img" aria-label="([^"]+)"/g)].map(
      (m) => m[1] ?? '',
    );
    expect(labels).toHaveLength(6);
    expect(labels[0]).toContain('quota 4 GPUs; demand at most 5 GPUs, at 00:00 (UTC)');
    expect(labels[0]).toContain('caps summed to at most 4 GPUs; it refused 60 GPU-minutes');
    expect(labels[3]).toContain('at the end of the run: governor 60, fleet&#39;s static caps 60');
    const tables = html.match(/<table class="numbers">.*?<\/table>/g) ?? [];
    expect(tables).toHaveLength(2);
    expect(tables[0]).toContain(
      '<tr><th scope="row">00:00–01:00</th><td>4</td><td>4.0</td><td>5.0</td><td>5</td><td>60</td></tr>',
    );
    expect(tables[1]).toContain(
      '<th scope="col">governor</th><th scope="col">fleet&#39;s static caps</th>',
    );
    expect(tables[1]).toContain('<tr><th scope="row">00:00–01:00</th><td>60</td><td>60</td></tr>');
  });
});

describe('the caps chart’s numbers', () => {
  it('give each service’s cap, period by period, as the simulation set it', () => {
    // Before: the table under the chart gave the caps summed, so no band could be read as a
    // number.
    const names = ['a', 'b'];
    const minutes = 150;
    const caps: Record<string, number[]> = {
      a: Array.from({ length: minutes }, (_, m) => (m < 45 ? 1 : 3)),
      b: Array.from({ length: minutes }, (_, m) => (m % 10 < 3 ? 2 : 0)),
    };
    const governor = strategy('governor', [30, 30], [2, 2]);
    const series = governor.series[0];
    if (!series) throw new Error('no series');
    Object.assign(series, {
      demand: new Array<number>(minutes).fill(5),
      refused: new Array<number>(minutes).fill(0),
      caps,
    });
    const html = renderReport({ ...result([governor], 0.5), minutes });
    const table = /<table class="numbers service-caps">.*?<\/table>/.exec(html)?.[0] ?? '';
    expect(table).toContain(
      '<caption>The governor’s cap of each service in p/us-central1/nvidia-l4/zonal, mean by period (GPUs, UTC)</caption>',
    );
    expect(table).toContain(
      '<thead><tr><th scope="col">period (UTC)</th><th scope="col">a</th><th scope="col">b</th></tr></thead>',
    );
    const rows = [...table.matchAll(/<tr><th scope="row">([^<]+)<\/th>(.*?)<\/tr>/g)].map((m) => ({
      period: m[1],
      cells: [...(m[2] ?? '').matchAll(/<td>([^<]+)<\/td>/g)].map((c) => Number(c[1])),
    }));
    expect(rows.map((r) => r.period)).toEqual(['00:00–01:00', '01:00–02:00', '02:00–02:30']);
    const mean = (values: number[], from: number, to: number) =>
      Math.round((values.slice(from, to).reduce((x, v) => x + v, 0) / (to - from)) * 10) / 10;
    const bounds = [
      [0, 60],
      [60, 120],
      [120, 150],
    ] as const;
    rows.forEach((row, i) => {
      const [from, to] = bounds[i] ?? [0, 0];
      expect(row.cells).toEqual(names.map((n) => mean(caps[n] ?? [], from, to)));
    });
    expect(rows[0]?.cells).toEqual([1.5, 0.6]);
  });
});

describe('a service name longer than Cloud Run allows', () => {
  it('is shown by its start and end in the tables, the prose and the legend, whole in its title', () => {
    // Before: a name of 300 characters (which only a result made otherwise than from a fleet file
    // can hold) was printed whole: the per-service table's name column and the caps table's
    // column of that service grew 2,600 px wide, and the chart's legend ran past the picture.
    const long = (end: string) => `svc-${'x'.repeat(290)}-${end}`;
    const names: Record<string, string> = { a: long('aaaaa'), b: `b-${'y'.repeat(61)}` };
    const rename = (s: StrategyResult): StrategyResult => ({
      ...s,
      services: s.services.map((x) => ({ ...x, name: names[x.name] ?? x.name })),
      series: s.series.map((p) => ({
        ...p,
        services: p.services.map((n) => names[n] ?? n),
        caps: Object.fromEntries(Object.entries(p.caps).map(([n, c]) => [names[n] ?? n, c])),
      })),
    });
    const html = renderReport(
      result(
        [strategy('governor', [90, 10], [2, 2]), strategy('fleet-caps', [20, 10], [4, 3], 30)].map(
          rename,
        ),
        -0.5,
      ),
    );
    const a = names['a'] ?? '';
    const shown = `${a.slice(0, 31)}…${a.slice(-31)}`;
    expect(a).toHaveLength(300);
    // Nowhere whole as text; as its start and end, with the whole name in the title.
    expect(html).not.toContain(`>${a}`);
    const titled = `<span title="${a}">${shown}</span>`;
    expect(html).toContain(`<th scope="row">${titled}</th>`);
    expect(html).toContain(`<th scope="col">${titled}</th>`);
    expect(html).toContain(`Most of the difference is in ${titled} (90 against 20)`);
    expect(html).toContain(`>cap ${shown}</text>`);
    // A name of 63 characters, as long as a DNS label, is shown whole, with no title.
    const b = names['b'] ?? '';
    expect(b).toHaveLength(63);
    expect(html).toContain(`<th scope="row">${b}</th>`);
    expect(html).not.toContain(`title="${b}"`);
  });
});

describe('priority and weight', () => {
  it('are given as a person reads them, not as the floating point number they are', () => {
    // Before: a weight of 0.1 + 0.2 read 0.30000000000000004, one of 1.23456789 all its digits,
    // and a priority of a million 1000000.
    const odd: Record<string, { priority: number; weight: number }> = {
      a: { priority: 1_000_000, weight: 0.1 + 0.2 },
      b: { priority: -7, weight: 1.23456789 },
    };
    const html = renderReport(
      result(
        [strategy('governor', [5, 0], [2, 2]), strategy('fleet-caps', [10, 0], [2, 2])].map(
          (s) => ({
            ...s,
            services: s.services.map((x) => ({ ...x, ...odd[x.name] })),
          }),
        ),
        0.9,
      ),
    );
    expect(html).toContain('<tr><th scope="row">a</th><td>1,000,000</td><td>0.3</td>');
    expect(html).toContain('<tr><th scope="row">b</th><td>-7</td><td>1.235</td>');
  });

  it('keep a small weight, and a large one, to its digits that count', () => {
    const html = renderReport(
      result(
        [strategy('governor', [5, 0], [2, 2])].map((s) => ({
          ...s,
          services: s.services.map((x) => ({
            ...x,
            weight: x.name === 'a' ? 0.000123456 : 1_000_000,
          })),
        })),
        0.9,
      ),
    );
    expect(html).toContain('<tr><th scope="row">a</th><td>0</td><td>0.000123</td>');
    expect(html).toContain('<tr><th scope="row">b</th><td>0</td><td>1,000,000</td>');
  });
});

describe('names and paths that hold HTML', () => {
  it('are text everywhere: title, tables, attributes and charts', () => {
    const evil = '<script>alert(1)</script>"onload="alert(2)\'<img src=x onerror=alert(3)>';
    const rename = (s: StrategyResult): StrategyResult => ({
      ...s,
      pools: s.pools.map((p) => ({ ...p, pool: evil })),
      services: s.services.map((x) => ({ ...x, pool: evil, name: `${x.name}${evil}` })),
      series: s.series.map((p) => ({
        ...p,
        pool: evil,
        services: p.services.map((n) => `${n}${evil}`),
        caps: Object.fromEntries(Object.entries(p.caps).map(([n, c]) => [`${n}${evil}`, c])),
      })),
    });
    const html = renderReport(
      {
        ...result(
          [
            strategy('governor', [90, 10], [2, 2]),
            strategy('fleet-caps', [20, 10], [4, 3], 30),
          ].map(rename),
          -0.5,
        ),
        label: evil,
      },
      { subtitle: evil, notes: [evil] },
    );
    // Longer than a name can be: shown by its start and end, whole in the title, escaped in both.
    expect(html).toContain('Most of the difference is in <span title="a&lt;script&gt;alert(1)');
    // Escaped text holds no "<" and no '"': nothing of it can open a tag or leave an attribute.
    expect(html).not.toMatch(/<(script|img)/i);
    expect(html).not.toContain('"onload="');
    expect(html).not.toContain(evil);
  });

  it('reorder nothing: a bidirectional control in a path shows as a space', () => {
    // Before: a path holding U+202E (right-to-left override) showed the rest of the title and of
    // the line under it backwards, "sim/x‮.yaml" as "sim/xlmay.", as oneLine guards a terminal.
    const path = 'sims/\u202Eevil\u2066.yaml';
    const html = renderReport(
      { ...result([strategy('governor', [90, 10], [2, 2])], null), label: path },
      { subtitle: `policy ${path}`, notes: [`replayed ${path}`] },
    );
    expect(html).not.toMatch(/[\u202A-\u202E\u2066-\u2069]/);
    expect(html).toContain('<title>Governor simulation: sims/ evil .yaml</title>');
  });
});

describe('the GPUs axis of the caps chart', () => {
  it('is labelled in whole GPUs on a small pool', () => {
    // Before: on a pool of 2 GPUs ECharts labelled the axis 0, 0.5, 1, 1.5, 2: half a GPU, which
    // no cap, quota or instance can be.
    const minutes = 60;
    const { svg } = capsChart(
      {
        pool: POOL,
        quota: 2,
        available: 2,
        quotaChanges: [],
        services: ['a', 'b'],
        demand: new Array<number>(minutes).fill(1),
        caps: { a: new Array<number>(minutes).fill(1), b: new Array<number>(minutes).fill(1) },
        refused: new Array<number>(minutes).fill(0),
      },
      {
        startMs: Date.parse('2026-11-24T00:00:00Z'),
        minutes,
        timezone: 'UTC',
        width: CHART_WIDTHS.wide,
      },
      'governor',
    );
    // The axis's labels: texts that are plain numbers (the time labels carry a colon).
    const labels = [...svg.matchAll(/>(-?[\d.]+)<\/text>/g)].map((m) => Number(m[1]));
    expect(labels).toContain(2);
    expect(labels.length).toBeGreaterThanOrEqual(2);
    expect(labels.filter((v) => !Number.isInteger(v))).toEqual([]);
  });
});
