import { describe, expect, it } from 'vitest';
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
