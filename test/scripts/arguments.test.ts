import { describe, expect, it } from 'vitest';
import { scriptArguments, type ScriptUsage } from '../../scripts/arguments.js';

const usage: ScriptUsage = {
  name: 'terraform-docs',
  flags: ['--check'],
  text: 'node dist/scripts/terraform-docs.js [--check]',
};

describe("the scripts' arguments", () => {
  it('takes the flags the script knows', () => {
    const parsed = scriptArguments(['--check'], usage);
    expect(parsed).toEqual({ flags: new Set(['--check']), positionals: [] });
    expect(scriptArguments([], usage)).toEqual({ flags: new Set(), positionals: [] });
  });

  it('refuses a flag it does not know, by name, with the usage', () => {
    expect(scriptArguments(['--chek'], usage)).toEqual({
      error:
        'terraform-docs: unknown option "--chek"; usage: node dist/scripts/terraform-docs.js [--check]',
    });
  });

  it('refuses more paths than the script takes', () => {
    const one = { name: 'package', positionals: 1, text: 'package.js [OUT]' };
    expect(scriptArguments(['a.zip'], one)).toEqual({ flags: new Set(), positionals: ['a.zip'] });
    expect(scriptArguments(['a.zip', 'b.zip'], one)).toEqual({
      error: 'package: unexpected argument "b.zip"; usage: package.js [OUT]',
    });
    expect(scriptArguments(['x'], usage)).toMatchObject({ error: /unexpected argument "x"/ });
  });

  it('answers --help and -h with the usage, and takes a path beginning with "-" after --', () => {
    expect(scriptArguments(['--check', '--help'], usage)).toEqual({
      help: 'usage: node dist/scripts/terraform-docs.js [--check]',
    });
    expect(scriptArguments(['-h'], usage)).toHaveProperty('help');
    const one = { name: 'package', positionals: 1, text: 'package.js [OUT]' };
    expect(scriptArguments(['--', '--help'], one)).toEqual({
      flags: new Set(),
      positionals: ['--help'],
    });
  });
});
