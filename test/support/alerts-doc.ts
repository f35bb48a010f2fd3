import { readFile } from 'node:fs/promises';

/** The JSON blocks of docs/alerts.md, in order: the sample message, then its attributes. */
export async function alertsDocJsonBlocks(): Promise<unknown[]> {
  const text = await readFile('docs/alerts.md', 'utf8');
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) => JSON.parse(m[1] ?? '') as unknown,
  );
}
