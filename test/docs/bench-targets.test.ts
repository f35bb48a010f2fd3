import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  TARGET_10K_MS,
  TARGET_FIT_RATIO,
  TARGET_GROWTH,
  TARGET_LISTENING_MS,
  TARGET_RANKED_RATIO,
  TARGET_RSS_MB,
  TARGET_RTT_RATIO,
  TARGET_RTT_ROUNDS,
  TARGET_SCAN_RATIO,
} from '../../bench/targets.js';

/**
 * The targets the docs quote for `npm run bench` are the ones it judges its figures against
 * (bench/targets.ts): the README's "Benchmarks", docs/performance.md's figures of the function and
 * docs/simulation.md's "Bench".
 */

/** The text under a `## ` heading, up to the next heading of that level. */
function section(page: string, heading: string): string {
  const text = readFileSync(page, 'utf8');
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `${page} has "${heading}"`).toBeGreaterThanOrEqual(0);
  const rest = text.slice(start + heading.length + 2);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The one table row (or list item) of a section that begins with `start`, on one line. */
function itemOf(text: string, start: string): string {
  const items = text
    .split(/\n(?=\| |- )/)
    .map((item) => item.replace(/\s*\n\s*/g, ' '))
    .filter((item) => item.replace(/^(\| |- )/, '').startsWith(start));
  expect(items, `one item beginning "${start}"`).toHaveLength(1);
  return items[0] ?? '';
}

/** The last cell of a table row: its target. */
const lastCell = (row: string) => row.split('|').slice(-2)[0]?.trim();

const n = (count: number) => count.toLocaleString('en-US');

describe("the bench's targets in the docs", () => {
  it("are the bench's in the README's Benchmarks", () => {
    const bench = section('README.md', '## Benchmarks');
    expect(itemOf(bench, '**Planner, 10,000 services')).toContain(`(median ≤ ${TARGET_10K_MS} ms)`);
    expect(itemOf(bench, '**Planner growth per 10× services**')).toContain(`(≤ ${TARGET_GROWTH}×)`);
    expect(itemOf(bench, '**A scan of every rule ÷ the rule lookup')).toContain(
      `(≥ ${TARGET_SCAN_RATIO}×)`,
    );
    expect(lastCell(itemOf(bench, 'one run, round trips'))).toBe(`≤ ${TARGET_RTT_ROUNDS}`);
    expect(lastCell(itemOf(bench, 'one run, wall ÷ RTT'))).toBe(`≤ ${TARGET_RTT_RATIO}`);
    expect(lastCell(itemOf(bench, 'function cold start → listening'))).toBe(
      `≤ ${n(TARGET_LISTENING_MS)} ms`,
    );
    for (const [services, mb] of Object.entries(TARGET_RSS_MB)) {
      const row = itemOf(bench, `function peak RSS, one run, ${n(Number(services))} services`);
      expect(lastCell(row)).toBe(`≤ ${mb} MiB`);
    }
  });

  it("are the bench's in docs/performance.md's figures of the function", () => {
    const fn = section('docs/performance.md', '## The function: memory, cold start and cost');
    expect(lastCell(itemOf(fn, 'cold start → listening'))).toBe(`≤ ${n(TARGET_LISTENING_MS)} ms`);
    for (const [services, mb] of Object.entries(TARGET_RSS_MB)) {
      const row = itemOf(fn, `peak RSS, one run, ${n(Number(services))} services`);
      expect(lastCell(row)).toBe(`≤ ${mb} MiB`);
    }
  });

  it("are the bench's in docs/performance.md's figures of the planner", () => {
    const planner = section('docs/performance.md', '## The planner on 10,000 services');
    const fit = planner.slice(planner.indexOf("### The policy's fit to the fleet"));
    expect(fit).toContain(`at 20,000 rules and 50,000 services`);
    expect(fit).toContain(`(target ≤ ${TARGET_FIT_RATIO}×)`);
    const lookup = planner.slice(planner.indexOf('### Looking the rules up'));
    expect(lookup).toContain('at 2,000 rules and 5,000 services');
    expect(lookup).toContain(`(target ≥ ${TARGET_SCAN_RATIO}×)`);
    const ranked = planner.slice(planner.indexOf('### Every service its own priority'));
    expect(ranked).toContain('5,000 services, each named');
    expect(ranked).toContain(`(target ≤ ${TARGET_RANKED_RATIO}×)`);
  });

  it("are the bench's in docs/simulation.md's Bench", () => {
    const bench = section('docs/simulation.md', '## Bench');
    const rtt = itemOf(bench, 'one run against an injected RTT (bench/rtt.ts)');
    expect(rtt).toContain(`rounds of calls`);
    expect(rtt).toContain(`wall time ÷ the RTT`);
    expect(rtt).toContain(`each with the target ≤ ${TARGET_RTT_ROUNDS}`);
    expect(TARGET_RTT_RATIO).toBe(TARGET_RTT_ROUNDS);
    expect(itemOf(bench, "the function's cold start (bench/cold-start.ts)")).toContain(
      `(target ≤ ${TARGET_LISTENING_MS / 1000} s)`,
    );
    const memory = itemOf(bench, "the function's peak memory over one run (bench/memory.ts)");
    const sizes = Object.entries(TARGET_RSS_MB);
    expect(memory).toContain(
      `at ${sizes.map(([services]) => n(Number(services))).join(' and ')} services`,
    );
    expect(memory).toContain(`targets ${sizes.map(([, mb]) => `≤ ${mb} MiB`).join(' and ')}`);
  });
});
