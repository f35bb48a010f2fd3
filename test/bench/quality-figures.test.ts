import { describe, expect, it } from 'vitest';
import { addQualityFigures } from '../../bench/quality-figures.js';
import type { QualityRow } from '../../bench/quality.js';

/**
 * The bench's decision-quality figures (docs/decision-quality.md "What the policy's priority
 * costs").
 */

function row(kind: QualityRow['kind'], seed: number, refused: QualityRow['refused']): QualityRow {
  const e = refused['equal-split'] ?? 0;
  const c = refused['cadence-oracle'] ?? 0;
  const gap = (k: keyof QualityRow['refused']) => (e - (refused[k] ?? 0)) / (e - c);
  return {
    kind,
    scenario: kind,
    quotaFactor: 0.6,
    seed,
    quota: 10,
    hours: 24,
    refused,
    refusedTop: {},
    topPriority: 10,
    topServices: [],
    gapClosed: gap('governor'),
    gapClosedClairvoyant: gap('governor'),
    gapClosedByEvidenceOracle: gap('evidence-oracle'),
    gapClosedByPolicyOracle: gap('policy-oracle'),
    gapClosedByPolicyEvidenceOracle: gap('policy-evidence-oracle'),
    writesPerServiceHour: 1,
    reversalsPerServiceDay: 0,
    invariantViolations: 0,
    failedRuns: 0,
    problems: [],
    idempotence: { cases: 1, failures: 0, examples: [] },
    causes: null,
  };
}

function figures(rows: QualityRow[]) {
  const out: { figure: string; shown: string; met: boolean; why: string }[] = [];
  addQualityFigures(rows, (figure, _v, shown, _t, met, why) =>
    out.push({ figure, shown, met, why: why ?? '' }),
  );
  return out;
}

describe("the best at the tick within the policy's priority, in the bench's figures", () => {
  // Equal split 1,000 refused, the best at the tick 0: a strategy refusing 150 closes 0.85.
  const base = { 'equal-split': 1000, 'cadence-oracle': 0, 'evidence-oracle': 120 };

  it('says a missed target asks for less than the policy when the policy-keeping best misses it', () => {
    const out = figures([
      row('mixed', 7, {
        ...base,
        governor: 250,
        'policy-oracle': 130,
        'policy-evidence-oracle': 200,
      }),
      row('mixed', 11, {
        ...base,
        governor: 260,
        'policy-oracle': 110,
        'policy-evidence-oracle': 240,
      }),
    ]);
    const noHindsight = out.find((f) =>
      f.figure.startsWith("gap closed by the same keeping the policy's priority"),
    );
    expect(noHindsight?.shown).toBe('0.78 (worst 0.76)');
    const ref = out.find((f) =>
      f.figure.startsWith("gap closed by the best at the tick keeping the policy's priority"),
    );
    expect(ref?.shown).toBe('0.88 (worst 0.87)');
    const gap = out.find(
      (f) =>
        f.figure.startsWith('gap closed vs best at the tick, mixed fleet 0.6×') &&
        f.figure.endsWith('mean'),
    );
    expect(gap?.met).toBe(false);
    expect(gap?.why).toContain('closes 0.880: the target asks for less than the policy');
  });

  it('says nothing of the policy where its best reaches the target or does not bind', () => {
    const reaches = figures([row('mixed', 7, { ...base, governor: 250, 'policy-oracle': 50 })]);
    expect(
      reaches.find((f) => f.figure.endsWith('mean') && f.figure.startsWith('gap closed vs'))?.why,
    ).not.toContain('policy');
    // One priority: the policy-keeping best is the best at the tick itself, and no line is shown.
    const unbound = figures([
      row('traces', 7, {
        ...base,
        governor: 250,
        'policy-oracle': 0,
        'policy-evidence-oracle': 120,
      }),
    ]);
    expect(unbound.some((f) => f.figure.includes("policy's priority"))).toBe(false);
  });
});

describe('a seed with no gap to close, in the bench figures', () => {
  // The equal split refused as little as the best at the tick: there is no gap, and a governor
  // that refused more than both is worse than the split, never the gap closed in full.
  const noGap = (governor: number): QualityRow => ({
    ...row('traces', 7, { 'equal-split': 40, 'cadence-oracle': 40, oracle: 40, governor }),
    gapClosed: null,
    gapClosedClairvoyant: null,
  });
  const gapMean = (out: ReturnType<typeof figures>) =>
    out.find((f) => f.figure.startsWith('gap closed vs') && f.figure.endsWith('mean'));
  const gapWorst = (out: ReturnType<typeof figures>) =>
    out.find((f) => f.figure.startsWith('gap closed vs') && f.figure.endsWith('worst seed'));

  it('is a miss where the governor refused more than the equal split', () => {
    const out = figures([noGap(300)]);
    expect(gapMean(out)?.met).toBe(false);
    expect(gapMean(out)?.shown).not.toMatch(/^1\.000/);
    expect(gapMean(out)?.why).toContain('no gap to close');
  });

  it('is the gap closed in full where the governor refused no more than it', () => {
    const out = figures([noGap(40)]);
    expect(gapMean(out)?.met).toBe(true);
    expect(gapMean(out)?.shown).toMatch(/^1\.000/);
    expect(gapWorst(out)?.shown).toBe('1.000');
  });
});

describe('rule violations and failed runs, in the bench figures', () => {
  it('a miss says what was broken, and in which run', () => {
    const broken: QualityRow = {
      ...row('mixed', 11, { 'equal-split': 1000, 'cadence-oracle': 0, governor: 100 }),
      failedRuns: 1,
      problems: ['2026-01-05T10:00:00.000Z: the service API answered 503'],
    };
    const out = figures([row('mixed', 7, { 'equal-split': 1000, 'cadence-oracle': 0 }), broken]);
    const f = out.find((x) => x.figure.startsWith('rule violations and failed runs'));
    expect(f?.met).toBe(false);
    expect(f?.why).toContain('seed 11');
    expect(f?.why).toContain('the service API answered 503');
  });
});

describe('each decision-quality target, compared as documented', () => {
  // Two seeds of one scenario and quota, with what differs from a run that meets every target.
  const seed = (kind: QualityRow['kind'], n: number, over: Partial<QualityRow>): QualityRow => ({
    ...row(kind, n, { 'equal-split': 1000, 'cadence-oracle': 0, governor: 0 }),
    idempotence: { cases: 10_000, failures: 0, examples: [] },
    ...over,
  });
  const find = (out: ReturnType<typeof figures>, start: string, end = '') =>
    out.find((f) => f.figure.startsWith(start) && f.figure.endsWith(end));

  it('judges the gap closed on its mean and its worst seed, each against its own target', () => {
    const out = figures([
      seed('mixed', 7, { gapClosed: 1, gapClosedClairvoyant: 0.6 }),
      seed('mixed', 11, { gapClosed: 0.82, gapClosedClairvoyant: 0.5 }),
    ]);
    expect(find(out, 'gap closed vs', 'mean')).toMatchObject({ met: true });
    expect(find(out, 'gap closed vs', 'mean')?.shown).toBe('0.910 (clairvoyant 0.55)');
    expect(find(out, 'gap closed vs', 'worst seed')).toMatchObject({ shown: '0.820', met: true });
    const low = figures([
      seed('mixed', 7, { gapClosed: 0.95 }),
      seed('mixed', 11, { gapClosed: 0.78 }),
    ]);
    expect(find(low, 'gap closed vs', 'mean')?.met).toBe(false);
    expect(find(low, 'gap closed vs', 'worst seed')).toMatchObject({ shown: '0.780', met: false });
  });

  it('never rounds a gap closed just short of its target up to it', () => {
    const out = figures([
      seed('mixed', 7, { gapClosed: 0.9, gapClosedClairvoyant: 0.6 }),
      seed('mixed', 11, { gapClosed: 0.7999, gapClosedClairvoyant: 0.5 }),
    ]);
    // The worst seed's 0.7999, just under its 0.8: shown 0.799, not 0.800 beside ≥ 0.8.
    const worst = find(out, 'gap closed vs', 'worst seed');
    expect(worst).toMatchObject({ shown: '0.799', met: false });
    const close = figures([
      seed('mixed', 7, { gapClosed: 0.9 }),
      seed('mixed', 11, { gapClosed: 0.8999 }),
    ]);
    expect(find(close, 'gap closed vs', 'mean')).toMatchObject({ met: false });
    // A mean of 0.89995 beside ≥ 0.9: shown 0.899, not 0.900.
    expect(find(close, 'gap closed vs', 'mean')?.shown).toMatch(/^0\.899 /);
  });

  it('judges writes and reversals on the worst seed, not the mean', () => {
    const out = figures([
      seed('traces', 7, { gapClosed: 1, writesPerServiceHour: 1, reversalsPerServiceDay: 0.2 }),
      seed('traces', 11, { gapClosed: 1, writesPerServiceHour: 2.5, reversalsPerServiceDay: 1.5 }),
    ]);
    expect(find(out, 'writes / service / hour')).toMatchObject({
      shown: '2.50 (mean 1.75)',
      met: false,
    });
    expect(find(out, 'reversals / service / day')).toMatchObject({
      shown: '1.50 (mean 0.85)',
      met: false,
    });
  });

  it('names the seeds over the writes and reversals targets, and never rounds a miss down to one', () => {
    const out = figures([
      seed('traces', 7, { gapClosed: 1, writesPerServiceHour: 2.004, reversalsPerServiceDay: 1 }),
      seed('traces', 11, { gapClosed: 1, writesPerServiceHour: 1, reversalsPerServiceDay: 1.001 }),
    ]);
    expect(find(out, 'writes / service / hour')).toMatchObject({
      shown: '2.01 (mean 1.51)',
      met: false,
      why: 'seed 7: 2.01 a service an hour',
    });
    const reversals = find(out, 'reversals / service / day');
    expect(reversals).toMatchObject({ shown: '1.01 (mean 1.01)', met: false });
    expect(reversals?.why).toMatch(/^seed 11: 1\.01 a service a day; /);
  });

  it("judges the noisy neighbour's highest priority against 1.1× the best at the tick and below over-commit", () => {
    const top = (governor: number, best: number, over: number) =>
      seed('noisy', 7, {
        refusedTop: { governor, 'cadence-oracle': best, 'over-commit': over },
      });
    const vsBest = (out: ReturnType<typeof figures>) =>
      find(out, 'highest priority refused', 'governor ÷ best at the tick');
    const vsOver = (out: ReturnType<typeof figures>) =>
      find(out, 'highest priority refused', 'governor vs over-commit');
    expect(vsBest(figures([top(110, 100, 500)]))?.met).toBe(true);
    expect(vsBest(figures([top(200, 100, 500)]))).toMatchObject({ shown: '200 ÷ 100', met: false });
    expect(vsOver(figures([top(200, 100, 500)]))?.met).toBe(true);
    expect(vsOver(figures([top(500, 100, 500)]))?.met).toBe(false);
  });

  it('misses idempotence on fewer ticks than the target, and says so', () => {
    const out = figures([
      seed('traces', 7, { idempotence: { cases: 2, failures: 0, examples: [] } }),
    ]);
    expect(find(out, 'idempotence')).toMatchObject({
      shown: '2 of 2',
      met: false,
      why: 'only 2 ticks in this subset',
    });
  });
});
