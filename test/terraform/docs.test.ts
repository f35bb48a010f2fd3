import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import {
  expectedModuleReadme,
  MODULE_DIRS,
  readModuleInterface,
  renderTables,
  typeExpression,
} from '../../scripts/terraform-docs.js';

describe("the modules' READMEs", () => {
  it.each(MODULE_DIRS)(
    '%s/README.md has the inputs and outputs tables generated from variables.tf and outputs.tf (run npm run build && node dist/scripts/terraform-docs.js if this fails)',
    async (dir) => {
      const { current, expected } = await expectedModuleReadme(dir);
      expect(current).toBe(expected);
      expect(current).toMatch(/### Inputs/);
    },
  );

  it('lists every variable and output of the module', async () => {
    const module = await readModuleInterface('terraform');
    const tables = renderTables(module);
    for (const input of module.inputs) expect(tables).toContain(`| \`${input.name}\` |`);
    for (const output of module.outputs) expect(tables).toContain(`| \`${output.name}\` |`);
    expect(module.inputs.find((i) => i.name === 'policy')?.required).toBe(true);
    expect(module.inputs.find((i) => i.name === 'schedule')?.default).toBe('*/5 * * * *');
  });
});

describe('typeExpression', () => {
  it('writes an HCL type on one line', () => {
    expect(typeExpression('${string}')).toBe('string');
    expect(typeExpression('${object({\n  a = string\n  b = optional(number, 3)\n})}')).toBe(
      'object({ a = string, b = optional(number, 3) })',
    );
    expect(typeExpression(undefined)).toBe('any');
  });
});

describe("the module README's table of what the module creates", () => {
  it('has a row for every .tf file of the module, and only for those', () => {
    const files = readdirSync('terraform')
      .filter((f) => f.endsWith('.tf'))
      .sort();
    const readme = readFileSync('terraform/README.md', 'utf8');
    const table = /What the module creates:\n\n((?:\|.*\n)+)/.exec(readme)?.[1] ?? '';
    const rows = [...table.matchAll(/^\| `([^`]+\.tf)` /gm)].map((m) => m[1]).sort();
    expect(rows).toEqual(
      files.filter((f) => f !== 'variables.tf' && f !== 'outputs.tf' && f !== 'versions.tf'),
    );
  });
});
