import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { parsePolicy } from '../../src/core/policy.js';
import { jsonSchemas } from '../../src/core/schemas.js';

describe('committed JSON Schemas', () => {
  for (const [file, schema] of Object.entries(jsonSchemas())) {
    it(`schema/${file} is generated from the zod schema (run npm run schema if this fails)`, () => {
      const committed: unknown = JSON.parse(readFileSync(`schema/${file}`, 'utf8'));
      expect(committed).toEqual(schema);
    });
  }
});

describe('schema/policy.schema.json and the validator', () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const schemaAccepts = ajv.compile(
    JSON.parse(readFileSync('schema/policy.schema.json', 'utf8')) as object,
  );
  const validatorAccepts = (policy: unknown): boolean => {
    try {
      parsePolicy(policy);
      return true;
    } catch (e) {
      if (e instanceof InputError) return false;
      throw e;
    }
  };
  const withLabels = (labels: Record<string, string>) => [
    { version: 1, projects: ['p'], services: [{ match: { labels } }] },
    { version: 1, discovery: { organization: '1', labels } },
  ];

  // An editor that reads the schema underlines what `governor validate` refuses: a label no
  // service can have (Google's label rules, core/units.ts), which the validator checks on its own.
  it.each([
    ['an upper-case key', { Team: 'search' }],
    ['a key with a dot', { 'team.name': 'search' }],
    ['a key beginning with a digit', { '1team': 'search' }],
    ['a value with a space', { team: 'search ranking' }],
    ['a value of 64 characters', { team: 'a'.repeat(64) }],
  ])('both refuse a label with %s', (_, labels) => {
    for (const policy of withLabels(labels)) {
      expect(validatorAccepts(policy)).toBe(false);
      expect(schemaAccepts(policy), JSON.stringify(policy)).toBe(false);
    }
  });

  it.each([
    ['a plain label', { team: 'search', 'cost-center': 'r_d-7' }],
    ['an empty value', { team: '' }],
    ['a lower-case letter of another script', { équipe: 'recherche' }],
  ])('both accept %s', (_, labels) => {
    for (const policy of withLabels(labels)) {
      expect(validatorAccepts(policy)).toBe(true);
      expect(schemaAccepts(policy), ajv.errorsText(schemaAccepts.errors)).toBe(true);
    }
  });
});
