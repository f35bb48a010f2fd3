/**
 * Turns a TypeScript entry file and every file it imports by relative path into JavaScript in a
 * temporary directory, so that a test can run it in a child process of its own (`node file.js`)
 * without a build. Packages resolve through a `node_modules` link to the project's.
 */
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const relativeImport = /\bfrom\s+['"](\.{1,2}\/[^'"]+)\.js['"]/g;

/** Returns the path of the entry's JavaScript; `dir` is the temporary directory. */
export async function transpileForNode(entry: string): Promise<{ dir: string; script: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'governor-transpiled-'));
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const done = new Set<string>();
  const pending = [resolve(entry)];
  for (let source = pending.pop(); source !== undefined; source = pending.pop()) {
    if (done.has(source)) continue;
    done.add(source);
    const text = await readFile(source, 'utf8');
    for (const match of text.matchAll(relativeImport)) {
      if (match[1] !== undefined) pending.push(resolve(dirname(source), `${match[1]}.ts`));
    }
    const { outputText } = ts.transpileModule(text, {
      compilerOptions: {
        // ES modules as they are (NodeNext would pick CommonJS, seeing no package.json here).
        module: ts.ModuleKind.ES2022,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
        esModuleInterop: true,
      },
      fileName: source,
    });
    const out = join(dir, relative(root, source)).replace(/\.ts$/, '.js');
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, outputText);
  }
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  return { dir, script: join(dir, relative(root, resolve(entry))).replace(/\.ts$/, '.js') };
}
