import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { benchPolicy, TRACE_DIR } from '../../src/simulate/scenarios.js';
import { simulate } from '../../src/simulate/simulate.js';
import {
  capsChart,
  CHART_WIDTHS,
  legendLabel,
  STRATEGY_COLOURS,
} from '../../src/simulate/report-charts.js';
import { renderReport } from '../../src/simulate/report.js';
import type { PoolMetrics, SimulationResult, StrategyResult } from '../../src/simulate/result.js';
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
    expect(html.match(/<caption>/g)).toHaveLength(2);
    expect(html.match(/<dl class="columns">/g)).toHaveLength(2);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    expect(html).toContain('<a href="#how-to-read">');
  });
});

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
});

describe('a pool whose quota is cut during the run', () => {
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
