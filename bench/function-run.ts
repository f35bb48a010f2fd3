import { mkdir, writeFile } from 'node:fs/promises';
import { failInOneLine, refuseArguments, step } from './failure.js';
import { benchFunction } from './function.js';

/**
 * `npm run bench:function`: the function's part of `npm run bench` alone (memory, cold start,
 * cost), printed with its targets and written to bench/function-results.json. A step that
 * fails ends it in one line (bench/failure.ts).
 */
refuseArguments('npm run bench:function', 'it runs the whole function bench');
failInOneLine();
const fn = await benchFunction({ step });
const lines = [...fn.lines, '', 'Figures', ''];
const width = Math.max(...fn.figures.map((f) => f.figure.length));
const shownWidth = Math.max(...fn.figures.map((f) => f.shown.length));
for (const f of fn.figures)
  lines.push(
    `  ${f.figure.padEnd(width)}  ${f.shown.padEnd(shownWidth)}  ${f.target.padEnd(8)}  ${f.target.startsWith('—') ? '' : f.met ? 'met' : 'MISSED'}${f.why ? `\n  ${''.padEnd(width)}  why: ${f.why}` : ''}`,
  );
console.log(lines.join('\n'));
await step('writing bench/function-results.json', async () => {
  await mkdir('bench', { recursive: true });
  await writeFile(
    'bench/function-results.json',
    JSON.stringify({ node: process.version, ...fn.results, figures: fn.figures }, null, 2) + '\n',
  );
});
console.log('\nwrote bench/function-results.json');
