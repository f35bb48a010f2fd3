import { mkdir, writeFile } from 'node:fs/promises';
import { benchFunction } from './function.js';

/**
 * `npm run bench:function`: the function's part of `npm run bench` alone (memory, cold start,
 * cost), printed with its targets and written to bench/function-results.json.
 */
const fn = await benchFunction();
const lines = [...fn.lines, '', 'Figures', ''];
const width = Math.max(...fn.figures.map((f) => f.figure.length));
const shownWidth = Math.max(...fn.figures.map((f) => f.shown.length));
for (const f of fn.figures)
  lines.push(
    `  ${f.figure.padEnd(width)}  ${f.shown.padEnd(shownWidth)}  ${f.target.padEnd(8)}  ${f.target.startsWith('—') ? '' : f.met ? 'met' : 'MISSED'}${f.why ? `\n  ${''.padEnd(width)}  why: ${f.why}` : ''}`,
  );
console.log(lines.join('\n'));
await mkdir('bench', { recursive: true });
await writeFile(
  'bench/function-results.json',
  JSON.stringify({ node: process.version, ...fn.results, figures: fn.figures }, null, 2) + '\n',
);
console.log('\nwrote bench/function-results.json');
