// The floors of docs/architecture.md §1, checked on the import lines: core/ imports no stage,
// plugin or application module, and the contract types form no import circle.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = join(import.meta.dirname, '..');

/** The .ts files under dir, at any depth. */
function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

/** The repository-relative targets of a file's relative imports. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => relative(root, resolve(dirname(file), m[1])));
}

test('no file under core/ imports stages/, plugins/ or app/', () => {
  const bad = tsFiles(join(root, 'core')).flatMap((f) => imports(f).filter((t) => /^(stages|plugins|app)\//.test(t)).map((t) => `${relative(root, f)} -> ${t}`));
  assert.equal(bad, []);
});

test('the contract types (payloads, masking types, architecture, stage) import no module that imports them back', () => {
  const contracts = ['core/payloads.ts', 'core/masking/types.ts', 'core/architecture.ts', 'core/stage.ts'];
  const reach = (from: string, seen = new Set<string>()): Set<string> => {
    for (const t of imports(join(root, from))) if (!seen.has(t)) { seen.add(t); reach(t, seen); }
    return seen;
  };
  for (const c of contracts) assert.not.ok(reach(c).has(c), `${c} reaches itself through its imports`);
});

test.run();
