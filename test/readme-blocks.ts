// The ```ts blocks of a README section, for the tests that compile and run the README's examples.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';

export const root = join(import.meta.dirname, '..');

/** The ```ts blocks of one README section (from its heading to the next heading of its level). */
export function sectionBlocks(heading: string, markdown = readFileSync(join(root, 'README.md'), 'utf8')): string[] {
  const start = markdown.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has a '${heading}' section`);
  const level = heading.split(' ')[0];
  const rest = markdown.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`^#{1,${level.length}} `, 'm'));
  const body = end < 0 ? rest : rest.slice(0, end);
  return [...body.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

/**
 * Writes the blocks as examples/example-N.ts in a temporary project whose relative `../core/`
 * imports point at this checkout's core/ and whose tsconfig extends the project's; returns the
 * folder and the files.
 */
export function writeExamples(blocks: string[]): { dir: string; files: string[] } {
  const dir = tempDir('mtm-readme-');
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  mkdirSync(join(dir, 'examples'));
  const files = blocks.map((code, i) => {
    const f = join(dir, 'examples', `example-${i + 1}.ts`);
    writeFileSync(f, code.replaceAll("from '../core/", `from '${join(root, 'core')}/`));
    return f;
  });
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(root, 'tsconfig.json'), include: ['examples'] }));
  return { dir, files };
}
