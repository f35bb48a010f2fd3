import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonSchemas } from '../src/core/schemas.js';
import { argumentsOrExit } from './arguments.js';
import { errorMessage } from '../src/core/errors.js';

/**
 * Writes schema/*.json from the zod schemas. Run with `npm run schema`; test/core/schemas.test.ts
 * fails when they are stale.
 */
argumentsOrExit({
  name: 'write-schemas',
  text: 'npm run schema (writes schema/*.json from the zod schemas; takes no arguments)',
});
const dir = join(process.cwd(), 'schema');
try {
  await mkdir(dir, { recursive: true });
  for (const [file, schema] of Object.entries(jsonSchemas())) {
    await writeFile(join(dir, file), JSON.stringify(schema, null, 2) + '\n');
    console.log(`wrote schema/${file}`);
  }
} catch (error) {
  // Node's messages name the path (`EEXIST: file already exists, mkdir '…/schema'`).
  process.stderr.write(`write-schemas: ${errorMessage(error)}\n`);
  process.exitCode = 1;
}
