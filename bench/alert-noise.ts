import { fileURLToPath } from 'node:url';
import { Alert } from '../src/core/alert.js';
import { parsePolicy } from '../src/core/policy.js';
import { compareText } from '../src/core/pool.js';
import type { PublishedMessage } from '../src/emulator/pubsub-store.js';
import { buildScenario, parseScenario, type ScenarioInput } from '../src/simulate/scenario.js';
import {
  benchPolicy,
  mixedFleetScenario,
  noisyNeighbourScenario,
  quotaCutScenario,
  TRACE_DIR,
} from '../src/simulate/scenarios.js';
import { simulate } from '../src/simulate/simulate.js';

/**
 * What an on-call engineer would receive from the governor: the simulator runs the real reconcile
 * through the gRPC emulator every 5 virtual minutes, publishing its alerts to the emulator's
 * Pub/Sub, and the messages are counted as a subscriber receives them: per type and severity,
 * notifications a day, episodes (a condition's firing to its resolved), short episodes, and
 * flaps (a condition that fires again soon after it resolved).
 *
 *   npm run build && node dist/bench/alert-noise.js [mixed|noisy|cut] [hours] [quotaFactor ...]
 *   (DUMP=1 lists every firing and resolved message)
 */

const TOPIC = 'projects/sim-project/topics/governor-alerts';
const SHORT_MS = 15 * 60_000;

export interface NoiseRow {
  type: string;
  severity: string;
  firing: number;
  renotify: number;
  resolved: number;
  events: number;
  perDay: number;
  episodes: number;
  short: number;
  flaps: number;
}

export function alertNoise(alerts: readonly Alert[], hours: number): NoiseRow[] {
  const rows = new Map<string, NoiseRow>();
  const row = (a: Alert) => {
    const k = `${a.type} ${a.severity}`;
    let r = rows.get(k);
    if (!r) {
      r = {
        type: a.type,
        severity: a.severity,
        firing: 0,
        renotify: 0,
        resolved: 0,
        events: 0,
        perDay: 0,
        episodes: 0,
        short: 0,
        flaps: 0,
      };
      rows.set(k, r);
    }
    return r;
  };
  const lastResolved = new Map<string, number>();
  for (const a of alerts) {
    const r = row(a);
    const t = Date.parse(a.time);
    if (a.status === 'event') r.events++;
    else if (a.status === 'resolved') {
      r.resolved++;
      r.episodes++;
      if (Number(a.details['durationMs']) < SHORT_MS) r.short++;
      lastResolved.set(a.dedupKey, t);
    } else if (a.details['renotify'] === true) r.renotify++;
    else {
      r.firing++;
      const before = lastResolved.get(a.dedupKey);
      if (before !== undefined && t - before <= SHORT_MS) r.flaps++;
    }
  }
  for (const r of rows.values())
    r.perDay = ((r.firing + r.renotify + r.resolved + r.events) * 24) / hours;
  return [...rows.values()].sort((a, b) => compareText(a.type + a.severity, b.type + b.severity));
}

const scenarios: Record<string, (q: number, h: number) => ScenarioInput> = {
  mixed: (q, h) => mixedFleetScenario(q, h),
  noisy: (q, h) => noisyNeighbourScenario(q, h),
  cut: (q, h) => quotaCutScenario(q, h),
};

async function main(): Promise<void> {
  const [name = 'mixed', hoursText = '48', ...factors] = process.argv.slice(2);
  const hours = Number(hoursText);
  // Own names only: `toString` is no scenario.
  const make = Object.hasOwn(scenarios, name) ? scenarios[name] : undefined;
  if (!make || !(hours > 0) || factors.some((f) => !(Number(f) > 0))) {
    console.error(
      `usage: alert-noise.js [${Object.keys(scenarios).join('|')}] [hours > 0] [quotaFactor > 0 ...]; got ${process.argv.slice(2).join(' ')}`,
    );
    process.exitCode = 2;
    return;
  }
  for (const q of factors.length > 0 ? factors.map(Number) : [0.6, 1.2]) {
    const input = await buildScenario(parseScenario(make(q, hours)), TRACE_DIR, name);
    const fleet = { ...input.fleet, topics: [TOPIC] };
    const policy = parsePolicy({ ...benchPolicy(), alerts: { topic: TOPIC } });
    const received: Alert[] = [];
    const t0 = Date.now();
    const result = await simulate({ ...input, fleet }, policy, {
      hours,
      tickMinutes: 5,
      strategies: ['governor'],
      viaEmulator: true,
      series: false,
      onPublish: (m: PublishedMessage) => {
        const a = m.data === null ? null : Alert.safeParse(JSON.parse(m.data));
        if (a?.success) received.push(a.data);
      },
    });
    const quota = fleet.projects[0]?.pools[0]?.quota;
    const failed = result.strategies[0]?.failedRuns.length ?? 0;
    console.log(
      `\n${name} quota ${quota} (${q}x peak), ${hours} h, ${received.length} messages, ${failed} failed runs, ${((Date.now() - t0) / 1000).toFixed(0)} s wall`,
    );
    console.log(
      'type severity | firing renotify resolved events | per day | episodes short(<15m) flaps(re-fire<=15m)',
    );
    for (const r of alertNoise(received, hours))
      console.log(
        `${r.type} ${r.severity} | ${r.firing} ${r.renotify} ${r.resolved} ${r.events} | ${r.perDay.toFixed(1)} | ${r.episodes} ${r.short} ${r.flaps}`,
      );
    if (process.env.DUMP) {
      for (const a of received.filter((x) => x.status !== 'event'))
        console.log(
          `  ${a.time.slice(0, 16)} ${a.status.padEnd(8)} ${a.dedupKey} ${a.status === 'resolved' ? Math.round(Number(a.details['durationMs']) / 60000) + 'm' : ''}`,
        );
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
