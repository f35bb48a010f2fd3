import * as echarts from 'echarts';
import { DateTime } from 'luxon';
import type { PoolSeries, Strategy, StrategyResult } from './result.js';

/**
 * The report's two charts per pool, drawn by ECharts' server-side SVG renderer (no script in the
 * page). Each chart is a static picture, so the choices below are the ones a static picture needs:
 *
 * - one palette gives every series its colour and its legend entry the same colour;
 * - the legend is a plain legend below the plot that wraps onto as many rows as it needs (a
 *   "scroll" legend pages, and a static SVG cannot turn the page);
 * - the time axis is ticked and labelled in the scenario's time zone, the date under the first
 *   tick of each day, and both axes are named with their units;
 * - demand is drawn as a mean over `SMOOTH_MINUTES`, with the per-minute values as a thin light
 *   line behind it: the minute texture is visible without hiding the level.
 */

/**
 * The widths each chart is drawn at: the page shows the one that fits the window, so a chart's
 * text keeps its size on a phone instead of shrinking with the picture.
 */
export const CHART_WIDTHS = { wide: 1100, narrow: 660, phone: 360 } as const;
const PLOT_HEIGHT = 250;
const TOP = 44;
const LEFT = 64;
const RIGHT = 28;
/** Minutes averaged into the demand and refused lines. */
export const SMOOTH_MINUTES = 15;
/**
 * Most points of a series: one per pixel of the plot. Longer series are averaged into buckets of
 * a few minutes; more points would only add bytes (a week of sixty services was 5.7 MB).
 */
function maxPoints(width: number): number {
  return width - LEFT - RIGHT;
}

/**
 * Colours of the caps, one per service in order (Tableau 10 without its red, then a few more), and
 * the grey of the band that sums the services beyond them: a colour used twice would name two
 * services in the legend, so a pool of more services than colours draws the ones with the most
 * cap each in its colour and the rest as one band (the tables give every service). No two are
 * closer than 20 in CIE L*a*b* (the strategies' rule): the two added after Tableau 10 were a
 * second teal 4 from its first and a second mauve 16 from its first, one colour to the eye.
 */
const SERVICE_COLOURS = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#76b7b2',
  '#ff9da7',
  '#9c755f',
  '#887711',
  '#aaaaff',
  '#a0cbe8',
] as const;
const OTHER_SERVICES_COLOUR = '#bab0ac';

/**
 * The lines' colours, of the caps chart and of the strategies chart: each at a contrast of 3:1 or
 * more against the white of the plot, as WCAG 2.2 success criterion 1.4.11, "Non-text Contrast",
 * asks of the parts of a graphic needed to understand it (https://www.w3.org/TR/WCAG22/#non-text-contrast).
 * The bands' tints are light so the lines show over them: a band is told from its neighbours by
 * its pattern's dark ink (the one plain band by having none), and its numbers are under the chart.
 */
export const COLOURS = {
  quota: '#000000',
  demand: '#1b2a4a',
  demandMinute: '#8494b1',
  refused: '#d62728',
} as const;

export const STRATEGY_COLOURS: Record<Strategy, string> = {
  governor: '#1f4e9c',
  'fleet-caps': '#9c755f',
  'equal-split': '#dc740e',
  'peak-proportional': '#59a14f',
  'over-commit': '#b07aa1',
  oracle: '#6b6b6b',
  'cadence-oracle': '#139ead',
  'writes-oracle': '#e15759',
  'evidence-oracle': '#93941b',
  'policy-oracle': '#de60b8',
  'policy-evidence-oracle': '#000000',
};

/**
 * How a line is drawn besides its colour: colour must not be the only thing that tells two
 * series apart (WCAG 2.1 success criterion 1.4.1, "Use of Color",
 * https://www.w3.org/WAI/WCAG21/Understanding/use-of-color.html; technique G111, "Using color and
 * pattern", https://www.w3.org/WAI/WCAG21/Techniques/general/G111, marks each route of a map with
 * its own shape). A reader who cannot tell the strategies' colours apart, or prints the page in
 * grey, tells them by dash and marker, in the chart and in its legend entry alike.
 */
interface LineLook {
  /** Lengths of dash and gap in pixels, repeated; empty for a solid line. */
  dash: readonly number[];
  width: number;
  /** An ECharts symbol drawn on the line every `MARKER_SPACING` pixels and in its legend entry. */
  marker?: string;
}

/**
 * Each strategy's dash and marker, the same in every pool's chart: no two share either. Filled
 * markers only: a hollow one's legend icon is white inside, not the strategy's colour.
 */
export const STRATEGY_LOOKS: Record<Strategy, LineLook> = {
  governor: { dash: [], width: 3, marker: 'circle' },
  'fleet-caps': { dash: [12, 3], width: 1.5, marker: 'rect' },
  'equal-split': { dash: [6, 3], width: 1.5, marker: 'triangle' },
  'peak-proportional': { dash: [2, 2], width: 1.5, marker: 'diamond' },
  'over-commit': { dash: [10, 3, 2, 3], width: 1.5, marker: 'path://M0 0H10L5 10Z' },
  oracle: {
    dash: [1, 3],
    width: 1.5,
    marker: 'path://M0 2L2 0L5 3L8 0L10 2L7 5L10 8L8 10L5 7L2 10L0 8L3 5Z',
  },
  'cadence-oracle': {
    dash: [6, 2, 2, 2],
    width: 1.5,
    marker: 'path://M3.5 0H6.5V3.5H10V6.5H6.5V10H3.5V6.5H0V3.5H3.5Z',
  },
  'writes-oracle': {
    dash: [6, 2, 2, 2, 2, 2],
    width: 1.5,
    marker:
      'path://M5 0L6.23 3.3L9.76 3.45L7 5.65L7.94 9.05L5 7.1L2.06 9.05L3 5.65L0.24 3.45L3.77 3.3Z',
  },
  'evidence-oracle': { dash: [4, 4], width: 1.5, marker: 'path://M2.5 0H7.5L10 5L7.5 10H2.5L0 5Z' },
  'policy-oracle': { dash: [10, 2], width: 1.5, marker: 'pin' },
  'policy-evidence-oracle': { dash: [3, 2, 1, 2], width: 1.5, marker: 'path://M0 0H10L0 10H10Z' },
};

/** The caps chart's lines: the quota dashed, demand solid, refused demand in short dashes. */
const CAPS_LOOKS = {
  quota: { dash: [8, 4], width: 2 },
  demand: { dash: [], width: 2 },
  demandMinute: { dash: [], width: 0.6 },
  refused: { dash: [4, 2], width: 2 },
} as const satisfies Record<string, LineLook>;

/** Pixels between two markers of a line; the lines' markers are staggered within it. */
const MARKER_SPACING = 180;
const MARKER_SIZE = 9;

/**
 * An ECharts decal: a pattern of `symbol`s drawn over a series' colour, in rows `dashArrayY` high
 * and gaps, each row's symbols `dashArrayX` wide and gaps, the whole turned by `rotation` radians
 * (https://echarts.apache.org/en/option.html#series-line.itemStyle.decal). The SVG renderer draws
 * it as an SVG <pattern> over a copy of the band's area, and a legend entry takes its series'
 * decal (ECharts' LegendView).
 */
interface Decal {
  symbol?: string;
  symbolSize?: number;
  color: string;
  dashArrayX: number | number[] | number[][];
  dashArrayY: number | number[];
  rotation?: number;
}

/** The patterns' ink: dark enough to show on every band's colour, and in grey. */
const PATTERN_INK = 'rgba(0,0,0,0.55)';

/**
 * A band's pattern: what tells the bands apart to a reader who cannot tell their colours apart,
 * or prints the page in grey (WCAG 2.2 success criterion 1.4.1, "Use of Color",
 * https://www.w3.org/WAI/WCAG22/Understanding/use-of-color.html; technique G111, "Using color and
 * pattern", https://www.w3.org/WAI/WCAG22/Techniques/general/G111). Small tiles, so that a band one
 * GPU high still shows its pattern; next to each other in the stack, lines alternate with dots,
 * grids and checks, and no two bands' lines run the same way.
 */
interface BandPattern {
  name: string;
  decal: Decal;
}

const stripes = (rotation: number): Omit<Decal, 'color'> => ({
  dashArrayX: [1, 0],
  dashArrayY: [1.5, 2.5],
  rotation,
});
const grid = (rotation: number): Omit<Decal, 'color'> => ({
  dashArrayX: [
    [1, 0],
    [1, 3],
  ],
  dashArrayY: [1, 0, 3, 0],
  rotation,
});
const tiles = (symbol: string, size: number, symbolSize: number): Omit<Decal, 'color'> => ({
  symbol,
  symbolSize,
  dashArrayX: [
    [size, size],
    [0, size, size, 0],
  ],
  dashArrayY: [size, 0],
});

export const BAND_PATTERNS: readonly BandPattern[] = (
  [
    ['rising lines', stripes(-Math.PI / 4)],
    ['dots', tiles('circle', 3, 0.9)],
    ['horizontal lines', stripes(0)],
    ['diagonal grid', grid(Math.PI / 4)],
    ['falling lines', stripes(Math.PI / 4)],
    ['checks', tiles('rect', 3, 1)],
    ['vertical lines', stripes(Math.PI / 2)],
    ['square grid', grid(0)],
    ['triangles', tiles('triangle', 5, 1)],
    ['dashes', { dashArrayX: [3, 2], dashArrayY: [1.5, 2.5] }],
    ['diamonds', tiles('diamond', 5, 1)],
  ] satisfies [string, Omit<Decal, 'color'>][]
).map(([name, decal]) => ({ name, decal: { ...decal, color: PATTERN_INK } }));

function serviceColour(index: number): string {
  return SERVICE_COLOURS[index % SERVICE_COLOURS.length] ?? OTHER_SERVICES_COLOUR;
}

/**
 * The most characters of a service's name the report shows: 63, the most a DNS label has (RFC 1035,
 * https://www.rfc-editor.org/rfc/rfc1035#section-2.3.4), which Google's API reference gives for a
 * Cloud Run service's name ("must be 1-63 characters long, and comply with RFC1035",
 * https://cloud.google.com/compute/docs/reference/rest/v1/networkEndpointGroups, `cloudRun.service`);
 * the fleet file takes at most 49. A longer name, which only a result made otherwise can hold, is
 * shown by its start and end around an ellipsis, as the legend shortens a name too long for a
 * phone's chart: printed whole, a name of 300 characters made its column of a table 2,700 px
 * wide and hid the numbers of every row.
 */
const SHOWN_NAME_CHARACTERS = 63;

/** A service's name as the report shows it: whole up to {@link SHOWN_NAME_CHARACTERS}. */
export function shownName(name: string): string {
  const chars = [...name];
  if (chars.length <= SHOWN_NAME_CHARACTERS) return name;
  return elided(chars, SHOWN_NAME_CHARACTERS - 1);
}

/** `keep` of `chars`, the first half (rounded up) and the last, around an ellipsis. */
function elided(chars: readonly string[], keep: number): string {
  const head = Math.ceil(keep / 2);
  return `${chars.slice(0, head).join('')}…${chars.slice(chars.length - (keep - head)).join('')}`;
}

/**
 * A band of the caps chart: one service, or the sum of the services beyond the palette, told apart
 * by its colour and by its pattern (none for the sum of the others: the one plain band).
 */
interface Band {
  name: string;
  colour: string;
  pattern: BandPattern | null;
  caps: readonly number[];
}

/**
 * The caps chart's bands: every service in its own colour when there are colours enough, else the
 * services with the most cap over the run in theirs (in the pool's order) and the rest summed.
 */
export function capBands(series: PoolSeries): Band[] {
  const caps = (name: string) => series.caps[name] ?? [];
  const names = series.services;
  // The i-th band of its own: the i-th colour and the i-th pattern.
  const own = (name: string, i: number): Band => ({
    name: `cap ${shownName(name)}`,
    colour: serviceColour(i),
    pattern: BAND_PATTERNS[i] ?? null,
    caps: caps(name),
  });
  if (names.length <= SERVICE_COLOURS.length) return names.map(own);
  const total = (name: string) => caps(name).reduce((a, v) => a + v, 0);
  const largest = new Set(
    [...names].sort((a, b) => total(b) - total(a)).slice(0, SERVICE_COLOURS.length - 1),
  );
  const rest = names.filter((n) => !largest.has(n));
  const summed = new Array<number>(series.demand.length).fill(0);
  for (const name of rest) caps(name).forEach((v, m) => (summed[m] = (summed[m] ?? 0) + v));
  return [
    ...names.filter((n) => largest.has(n)).map(own),
    {
      name: `caps of the ${rest.length} other services`,
      colour: OTHER_SERVICES_COLOUR,
      pattern: null,
      caps: summed,
    },
  ];
}

/**
 * A series as the legend names it and how it is drawn (for the page and its tests): a band of
 * colour, or a line of that colour with its own look.
 */
export interface DrawnSeries {
  name: string;
  colour: string;
  line?: LineLook;
  /** A band's pattern by name, "plain" for none: on the plot and in its legend entry alike. */
  pattern?: string;
}

export interface Chart {
  svg: string;
  series: DrawnSeries[];
  /** What the picture at this width draws otherwise than the others, for its text alternative. */
  note?: string;
}

export interface TimeFrame {
  startMs: number;
  minutes: number;
  timezone: string;
  /** Pixels the chart is drawn at. */
  width: number;
}

type Point = [number, number];

/** Means over consecutive buckets of `size` minutes, stamped at the middle of each bucket. */
function bucketMeans(values: readonly number[], startMs: number, size: number): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < values.length; i += size) {
    const end = Math.min(values.length, i + size);
    let sum = 0;
    for (let j = i; j < end; j++) sum += values[j] ?? 0;
    const mid = startMs + ((i + end - 1) / 2) * 60_000;
    out.push([mid, Math.round((sum / (end - i)) * 100) / 100]);
  }
  return out;
}

/**
 * The means over `SMOOTH_MINUTES` at the middle of their minutes, and the first and the last held
 * out to the run's first minute and its end: drawn at the middles only, a line began 7 minutes
 * into the run and stopped up to 7 before its end, a quarter of an hour's chart.
 */
function smoothed(values: readonly number[], startMs: number): Point[] {
  const means = bucketMeans(values, startMs, SMOOTH_MINUTES);
  const first = means[0];
  const last = means.at(-1);
  if (!first || !last) return means;
  const endMs = startMs + values.length * 60_000;
  return [
    ...(first[0] > startMs ? [[startMs, first[1]] as Point] : []),
    ...means,
    ...(last[0] < endMs ? [[endMs, last[1]] as Point] : []),
  ];
}

/**
 * The most of each bucket of `size` minutes, stamped at its minute (the first, on a tie).
 */
export function bucketPeaks(values: readonly number[], startMs: number, size: number): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < values.length; i += size) {
    const end = Math.min(values.length, i + size);
    let at = i;
    for (let j = i + 1; j < end; j++) if ((values[j] ?? 0) > (values[at] ?? 0)) at = j;
    out.push([startMs + at * 60_000, values[at] ?? 0]);
  }
  return out;
}

/** Minutes a point of a series of `minutes` stands for when it has at most `most` points. */
function bucketMinutes(minutes: number, most: number): number {
  return Math.max(1, Math.ceil(minutes / most));
}

/** Per-minute values as points, averaged into buckets when there are more than `most`. */
function perMinute(values: readonly number[], startMs: number, most: number): Point[] {
  const size = bucketMinutes(values.length, most);
  if (size === 1) return values.map((v, i) => [startMs + i * 60_000, v]);
  return bucketMeans(values, startMs, size);
}

/**
 * Stacked step series, each a point only where some series of the stack changes (ECharts stacks a
 * point on the point of the series below at the same time, so every series gets the same times),
 * and a last point at the end of the run; caps move at writes, a few an hour, so this is far
 * fewer points than minutes. When the changes are more than `most`, bucket means instead.
 */
export function stackedSteps(
  stack: readonly (readonly number[])[],
  startMs: number,
  most: number,
): Point[][] {
  const minutes = Math.max(0, ...stack.map((s) => s.length));
  const changes: number[] = [];
  for (let m = 0; m < minutes; m++)
    if (m === 0 || stack.some((s) => s[m] !== s[m - 1])) changes.push(m);
  if (changes.length + 1 > most) return stack.map((s) => perMinute(s, startMs, most));
  return stack.map((s) => [
    ...changes.map((m): Point => [startMs + m * 60_000, s[m] ?? 0]),
    [startMs + minutes * 60_000, s[minutes - 1] ?? 0],
  ]);
}

/** Tick spacing in minutes for a span: the smallest step giving at most `most` ticks. */
function tickMinutes(minutes: number, most: number): number {
  const steps = [15, 30, 60, 120, 180, 360, 720, 1440, 2880, 4320, 10080];
  return steps.find((s) => minutes / s <= most) ?? 10080;
}

/**
 * Tick times in the run: every `step` minutes of the local clock from each local midnight, or
 * every `step` ÷ 1440 local midnights. Read off the wall clock, not added as minutes: across a
 * change of summer time, minutes added put the day ticks at 23:00, under the day before's name.
 * A time the clocks read twice (the hour repeated when summer time ends) is ticked at both
 * instants: with one, the axis spanned two hours between two ticks an hour apart by their labels.
 */
function ticks(frame: TimeFrame, step: number): number[] {
  const endMs = frame.startMs + frame.minutes * 60_000;
  const first = DateTime.fromMillis(frame.startMs, { zone: frame.timezone }).startOf('day');
  const times = new Set<number>();
  for (let i = 0, day = first; day.toMillis() <= endMs; i++, day = first.plus({ days: i })) {
    if (step >= 1440) {
      if (i % (step / 1440) === 0) times.add(day.toMillis());
      continue;
    }
    for (let k = 0; k < 1440; k += step)
      for (const t of day.set({ hour: Math.floor(k / 60), minute: k % 60 }).getPossibleOffsets())
        times.add(t.toMillis());
  }
  return [...times].filter((t) => t >= frame.startMs && t <= endMs).sort((x, y) => x - y);
}

/**
 * The zone's offsets from UTC over the run: the first at minute 0, then one at each minute the
 * clocks move (summer time); a week across such a change otherwise named one offset for both sides.
 */
export function offsetChanges(
  frame: Pick<TimeFrame, 'startMs' | 'minutes' | 'timezone'>,
): { minute: number; offset: string }[] {
  const at = (minute: number) =>
    DateTime.fromMillis(frame.startMs + minute * 60_000, { zone: frame.timezone });
  const out = [{ minute: 0, offset: at(0).toFormat('ZZ') }];
  let offset = at(0).offset;
  // Hour by hour, then the minute: zones move their clocks on whole or half hours.
  for (let m = 60; m < frame.minutes + 60; m += 60) {
    const hour = Math.min(m, frame.minutes);
    if (at(hour).offset === offset) continue;
    let minute = Math.max(0, hour - 60);
    while (at(minute).offset === offset) minute++;
    offset = at(minute).offset;
    out.push({ minute, offset: at(minute).toFormat('ZZ') });
  }
  return out;
}

/** "UTC+01:00", or "UTC-04:00 then -05:00" when the clocks move during the run. */
function offsetsName(frame: TimeFrame): string {
  return `UTC${offsetChanges(frame)
    .map((c) => c.offset)
    .join(' then ')}`;
}

/** Height of a line of tick labels, and of the axis name under them. */
const TICK_LINE = 16;
/** Between the axis line and its first line of tick labels (ECharts' axisLabel.margin). */
const TICK_MARGIN = 8;

/** Tick spacing of a frame's time axis, in minutes. */
function tickStep(frame: TimeFrame): number {
  return tickMinutes(frame.minutes, Math.floor(frame.width / 95));
}

/**
 * Pixels from the plot's bottom edge to the top of the time axis's name: the tick labels, two
 * lines (the time, and the date under the first tick of each day) or one when every tick is a day.
 */
function axisNameGap(frame: TimeFrame): number {
  return TICK_MARGIN + (tickStep(frame) >= 1440 ? 1 : 2) * TICK_LINE + 2;
}

/** The time axis: ticks on whole local hours (or days), labels in the zone, the date once a day. */
function timeAxis(frame: TimeFrame): echarts.EChartsOption['xAxis'] {
  const step = tickStep(frame);
  const values = ticks(frame, step);
  const first = values[0];
  const label = (value: number): string => {
    const t = DateTime.fromMillis(value, { zone: frame.timezone });
    if (step >= 1440) return t.toFormat('ccc d LLL');
    const firstOfDay = t.hour * 60 + t.minute < step;
    return value === first || firstOfDay
      ? `${t.toFormat('HH:mm')}\n${t.toFormat('ccc d LLL')}`
      : t.toFormat('HH:mm');
  };
  return {
    type: 'value',
    min: frame.startMs,
    max: frame.startMs + frame.minutes * 60_000,
    name: `time (${frame.timezone}, ${offsetsName(frame)})`,
    nameLocation: 'middle',
    nameGap: axisNameGap(frame),
    splitLine: { show: false },
    axisTick: { customValues: values },
    axisLabel: {
      customValues: values,
      formatter: label,
      lineHeight: TICK_LINE,
      margin: TICK_MARGIN,
    },
  };
}

/**
 * A value axis. `whole`: labelled in whole units only (`minInterval`,
 * https://echarts.apache.org/en/option.html#yAxis.minInterval), for GPUs, which come whole: on a
 * small pool ECharts would otherwise label half a GPU.
 */
function valueAxis(name: string, whole = false): echarts.EChartsOption['yAxis'] {
  return {
    type: 'value',
    name,
    nameLocation: 'middle',
    nameGap: 44,
    nameRotate: 90,
    ...(whole ? { minInterval: 1 } : {}),
  };
}

/**
 * Width in pixels of a legend label at 12 px. The server-side renderer cannot measure fonts and
 * guesses narrow ones; a browser's sans-serif is often wider, and legend entries then overlap.
 * So each entry is given this width, which errs wide.
 */
function labelWidth(text: string): number {
  let width = 0;
  for (const c of text) {
    // The ellipsis a shortened label holds is 1 em wide in DejaVu Sans, Arial and Helvetica alike.
    if (c === '…') width += 12;
    else if (/[il.,:;'()|! ]/.test(c)) width += 4;
    else if (/[mwMW%]/.test(c)) width += 11.5;
    else if (/[A-Z0-9]/.test(c)) width += 8.5;
    else width += 7.2;
  }
  return Math.ceil(width);
}

/**
 * Width of a legend entry's icon: wide enough to show a line's dash on both sides of its marker,
 * but on a phone no wider than leaves the longest strategy's name whole.
 */
function iconWidth(chartWidth: number): number {
  return chartWidth > CHART_WIDTHS.phone ? 26 : 17;
}
const ICON_GAP = 5;
const ITEM_GAP = 16;
/** A legend row's height: its 12 px text, taller than the 10 px icon. */
const LEGEND_ROW = 12;
/** Between the time axis's name and the legend, and under the legend. */
const LEGEND_MARGIN = 8;

const TITLE_SIZE = 15;
const TITLE_LINE = 20;

/**
 * The title in lines that fit `width` at its size, broken between words. ECharts' server-side
 * renderer would break it by its own narrow guess of the font, so it is broken here by the same
 * wide estimate as the legend (a phone's chart is too narrow for one line).
 */
function wrapTitle(title: string, width: number): string[] {
  const fits = (text: string) => (labelWidth(text) * TITLE_SIZE) / 12 <= width;
  const lines: string[] = [];
  let current = '';
  for (const word of title.split(' ')) {
    const next = current === '' ? word : `${current} ${word}`;
    if (current !== '' && !fits(next)) {
      lines.push(current);
      current = word;
    } else current = next;
  }
  lines.push(current);
  return lines;
}

/**
 * A legend label as shown in a chart `chartWidth` wide: whole when it fits, else its start and end
 * around an ellipsis. A Cloud Run name has up to 49 characters, too many for a phone's chart:
 * there a long label ran past the picture's edge and was cut, so every long name read the same;
 * names usually differ at their ends. The tables below the chart give every name whole (in the
 * title, past `SHOWN_NAME_CHARACTERS`).
 */
export function legendLabel(text: string, chartWidth: number): string {
  // From the label's start to the picture's edge, against the estimate less the most it was seen
  // to err wide by (a label of 288 estimated pixels fits in 277 in Chromium): a label that fits is
  // never cut.
  const room = chartWidth - LEFT - iconWidth(chartWidth) - ICON_GAP;
  if (labelWidth(text) <= room / 0.95) return text;
  // A label shortened anyway is fitted to the room itself: the estimate errs wide on a mix of
  // letters, not on a run of one (Chromium draws "x" 7.1 px wide, "n" 7.6), and a name of x's
  // shortened to the estimate less its error ran 7 px past the phone's picture.
  const chars = [...text];
  for (let keep = chars.length - 1; keep > 2; keep--) {
    const shown = elided(chars, keep);
    if (labelWidth(shown) <= room) return shown;
  }
  return `${chars[0] ?? ''}…`;
}

/**
 * The legend's width: from the plot's left edge to the picture's right edge. ECharts keeps one of
 * a legend's `left` and `right` (its layout ignores the size), so a `right` margin given with
 * `left` is dropped and the legend wraps at the picture's edge.
 */
function legendWidth(chartWidth: number): number {
  return chartWidth - LEFT;
}

/**
 * The width a legend label is laid out at: its estimate, but never more than leaves its entry
 * within the legend's width. An entry wider than that, ECharts puts on a row of its own and, when
 * it is the first, below an empty row's gap; a label shortened by `legendLabel` (measured to the
 * picture's edge, past the legend's margin) was that wide on a phone.
 */
function legendTextWidth(label: string, chartWidth: number): number {
  return Math.min(
    labelWidth(label),
    legendWidth(chartWidth) - iconWidth(chartWidth) - ICON_GAP - 2,
  );
}

/** A legend entry as ECharts lays it out: where its box starts from its origin, and its width. */
interface LegendEntry {
  left: number;
  width: number;
}

function legendEntry(series: DrawnSeries, chartWidth: number): LegendEntry {
  const text = legendTextWidth(legendLabel(series.name, chartWidth), chartWidth);
  // A line's icon is a stroke 2 px wide along the icon's box, whose edge reaches 1 px out of it.
  const left = series.line ? -1 : 0;
  return { left, width: iconWidth(chartWidth) + ICON_GAP + text - left };
}

/**
 * Rows the plain legend wraps onto, by ECharts' own rule (`boxLayout` in echarts/lib/util/layout.js):
 * an entry goes to a new row when its box would end past the legend's width, not counting the
 * gap after it. The picture is made exactly as tall as the legend these rows make: an estimate
 * that erred wide, as one did by 2 px a row and a gap an entry, left an empty band between the
 * axis and the legend (30 px under a week of sixty services).
 */
function legendRows(series: readonly DrawnSeries[], chartWidth: number): number {
  const entries = series.map((d) => legendEntry(d, chartWidth));
  const max = legendWidth(chartWidth);
  let rows = 1;
  let x = 0;
  entries.forEach((entry, i) => {
    const next = entries[i + 1];
    const move = entry.width + (next ? entry.left - next.left : 0);
    let end = x + move;
    if (end > max && i > 0) {
      rows += 1;
      end = move;
    }
    x = end + ITEM_GAP;
  });
  return rows;
}

/** Pixels from the top of the legend's first row to the bottom of its last. */
function legendHeight(rows: number): number {
  return rows * LEGEND_ROW + (rows - 1) * ITEM_GAP;
}

function render(
  title: string,
  frame: TimeFrame,
  drawn: readonly DrawnSeries[],
  option: echarts.EChartsOption,
): string {
  const { width } = frame;
  const titleLines = wrapTitle(title, width - LEFT - RIGHT);
  const top = TOP + (titleLines.length - 1) * TITLE_LINE;
  // Under the plot: the tick labels, the axis name, then the legend, placed from the plot down,
  // and the picture ends under the legend's last row.
  const legendTop = top + PLOT_HEIGHT + axisNameGap(frame) + TICK_LINE + LEGEND_MARGIN;
  const rows = legendRows(drawn, width);
  const height = legendTop + legendHeight(rows) + LEGEND_MARGIN;
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({
      animation: false,
      textStyle: { fontFamily: 'system-ui, sans-serif' },
      title: {
        text: titleLines.join('\n'),
        left: LEFT,
        top: 8,
        textStyle: { fontSize: TITLE_SIZE, fontWeight: 600, lineHeight: TITLE_LINE },
      },
      grid: { top, left: LEFT, right: RIGHT, height: PLOT_HEIGHT },
      xAxis: timeAxis(frame),
      legend: {
        type: 'plain',
        orient: 'horizontal',
        left: LEFT,
        top: legendTop,
        padding: 0,
        itemWidth: iconWidth(width),
        itemHeight: 10,
        itemGap: ITEM_GAP,
        textStyle: { fontSize: 12 },
        formatter: (name: string) => legendLabel(name, width),
        data: drawn.map((d) => ({
          name: d.name,
          // A band's entry is a box of its colour; a line's is the line as drawn (ECharts' icon for
          // a line series), with its marker, or with none: ECharts puts a circle on a line that
          // has none, made invisible here.
          ...(d.line ? {} : { icon: 'roundRect' }),
          itemStyle: { color: d.colour, ...(d.line && !d.line.marker ? { opacity: 0 } : {}) },
          textStyle: {
            width: legendTextWidth(legendLabel(d.name, width), width),
            backgroundColor: 'transparent',
          },
        })),
      },
      tooltip: { show: false },
      ...option,
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** A line series whose line, area and legend icon all take `colour`. */
function seriesLine(
  name: string,
  colour: string,
  data: Point[],
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    type: 'line' as const,
    symbol: 'none',
    color: colour,
    itemStyle: { color: colour },
    lineStyle: { color: colour, width: 1.5 },
    data,
    ...extra,
  };
}

/**
 * A line drawn as `series.line` says: its dash, its width, and its marker on the points nearest
 * every `MARKER_SPACING` pixels, shifted by `stagger` (0 to 1) of that spacing so that lines lying
 * on each other still show each marker.
 */
function styledLine(series: DrawnSeries, data: Point[], frame: TimeFrame, stagger = 0.5) {
  const look = series.line ?? { dash: [], width: 1.5 };
  const lineStyle = {
    color: series.colour,
    width: look.width,
    type: look.dash.length > 0 ? [...look.dash] : 'solid',
  };
  if (!look.marker) return seriesLine(series.name, series.colour, data, { lineStyle });
  const plot = frame.width - LEFT - RIGHT;
  const marked = new Set<number>();
  const endMs = frame.startMs + frame.minutes * 60_000;
  for (let x = stagger * MARKER_SPACING; x < plot; x += MARKER_SPACING) {
    const at = frame.startMs + (x / plot) * (endMs - frame.startMs);
    let nearest = 0;
    data.forEach(([t], i) => {
      if (Math.abs(t - at) < Math.abs((data[nearest]?.[0] ?? 0) - at)) nearest = i;
    });
    marked.add(nearest);
  }
  return seriesLine(series.name, series.colour, [], {
    lineStyle,
    symbol: look.marker,
    symbolSize: MARKER_SIZE,
    showSymbol: true,
    itemStyle: { color: series.colour },
    data: data.map((p, i) => (marked.has(i) ? p : { value: p, symbol: 'none' })),
  });
}

/** The governor's caps stacked per service under the quota, demand and refused demand. */
export function capsChart(series: PoolSeries, frame: TimeFrame, refusedBy: string): Chart {
  const { startMs, minutes } = frame;
  const most = maxPoints(frame.width);
  const bands = capBands(series);
  const steps = stackedSteps(
    bands.map((b) => b.caps),
    startMs,
    most,
  );
  const drawn: DrawnSeries[] = bands.map((b) => ({
    name: b.name,
    colour: b.colour,
    pattern: b.pattern?.name ?? 'plain',
  }));
  const caps = bands.map((b, i) =>
    seriesLine(b.name, b.colour, steps[i] ?? [], {
      stack: 'caps',
      step: 'end',
      lineStyle: { color: b.colour, width: 0.6 },
      areaStyle: { color: b.colour, opacity: 0.45 },
      // The band's area and its legend entry take its pattern.
      itemStyle: { color: b.colour, ...(b.pattern ? { decal: { ...b.pattern.decal } } : {}) },
    }),
  );
  const demandLabel = `demand, ${SMOOTH_MINUTES}-min mean`;
  const refusedLabel = `refused (${refusedBy}), ${SMOOTH_MINUTES}-min mean`;
  const quotaLine = { name: 'quota', colour: COLOURS.quota, line: CAPS_LOOKS.quota };
  const demandLine = { name: demandLabel, colour: COLOURS.demand, line: CAPS_LOOKS.demand };
  // Past one minute a pixel (a day on a phone, a week anywhere), the thin line is each bucket's
  // busiest minute: a mean, as it was, flattened a minute's peak over the quota, where demand is
  // refused, into the minutes around it.
  const bucket = bucketMinutes(series.demand.length, most);
  const minuteLine = {
    name: bucket === 1 ? 'demand, per minute' : `demand, busiest minute of each ${bucket} min`,
    colour: COLOURS.demandMinute,
    line: CAPS_LOOKS.demandMinute,
  };
  const refusedLine = { name: refusedLabel, colour: COLOURS.refused, line: CAPS_LOOKS.refused };
  drawn.push(quotaLine, demandLine, minuteLine, refusedLine);
  const endMs = startMs + minutes * 60_000;
  // The quota as it was minute by minute: a cut moves the line down from its minute on.
  const quota: Point[] = [[startMs, series.quota]];
  let level = series.quota;
  for (const change of series.quotaChanges) {
    const at = startMs + change.minute * 60_000;
    if (at >= endMs) break;
    quota.push([at, level], [at, change.quota]);
    level = change.quota;
  }
  quota.push([endMs, level]);
  const svg = render('Governor caps, demand and refused demand', frame, drawn, {
    yAxis: valueAxis('GPUs', true),
    series: [
      ...caps,
      styledLine(quotaLine, quota, frame),
      styledLine(minuteLine, bucketPeaks(series.demand, startMs, bucket), frame),
      styledLine(demandLine, smoothed(series.demand, startMs), frame),
      // A line, not an area: an area from 0 would cover the lowest services' cap bands.
      styledLine(refusedLine, smoothed(series.refused, startMs), frame),
    ],
  });
  const note =
    bucket === 1
      ? 'The thin light line is demand minute by minute.'
      : `The thin light line is the busiest minute of each ${bucket} minutes, so no peak is lost where minutes are narrower than a pixel.`;
  return { svg, series: drawn, note };
}

/** Every strategy's refused GPU-minutes accumulated over the run. */
export function refusedChart(
  pool: string,
  strategies: readonly StrategyResult[],
  frame: TimeFrame,
): Chart {
  const drawn: DrawnSeries[] = [];
  const lines = strategies.flatMap((s) => {
    const series = s.series.find((p) => p.pool === pool);
    if (!series) return [];
    const drawnSeries = {
      name: s.label,
      colour: STRATEGY_COLOURS[s.strategy],
      line: STRATEGY_LOOKS[s.strategy],
    };
    drawn.push(drawnSeries);
    let sum = 0;
    const cumulative = series.refused.map((v) => (sum += v));
    const size = Math.max(1, Math.ceil(cumulative.length / maxPoints(frame.width)));
    const points: Point[] = [[frame.startMs, 0]];
    for (let i = size - 1; i < cumulative.length; i += size)
      points.push([frame.startMs + (i + 1) * 60_000, cumulative[i] ?? 0]);
    points.push([frame.startMs + cumulative.length * 60_000, cumulative.at(-1) ?? 0]);
    // Staggered by the strategy's place among all, so the same in every pool.
    const order = Object.keys(STRATEGY_LOOKS);
    const stagger = (order.indexOf(s.strategy) + 0.5) / order.length;
    return [styledLine(drawnSeries, points, frame, stagger)];
  });
  const svg = render('Refused GPU-minutes so far, by strategy', frame, drawn, {
    yAxis: valueAxis('GPU-minutes'),
    series: lines,
  });
  return { svg, series: drawn };
}
