import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonSchemas } from '../src/core/schemas.js';

/** Writes schema/*.json from the zod schemas. Run with `npm run schema`. */
const dir = join(process.cwd(), 'schema');
await mkdir(dir, { recursive: true });
for (const [file, schema] of Object.entries(jsonSchemas())) {
  await writeFile(join(dir, file), JSON.stringify(schema, null, 2) + '\n');
  console.log(`wrote schema/${file}`);
}
