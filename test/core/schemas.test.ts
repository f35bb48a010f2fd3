import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jsonSchemas } from '../../src/core/schemas.js';

describe('committed JSON Schemas', () => {
  for (const [file, schema] of Object.entries(jsonSchemas())) {
    it(`schema/${file} is generated from the zod schema (run npm run schema if this fails)`, () => {
      const committed: unknown = JSON.parse(readFileSync(`schema/${file}`, 'utf8'));
      expect(committed).toEqual(schema);
    });
  }
});
