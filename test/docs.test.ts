// The code's reasons stay inside the repository: sources cite docs/ by section (docs/README.md),
// never a file outside the repository or an issue number, and every `docs/<file>.md §N` they cite
// names a file and a section heading that exist (docs/architecture.md §12).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = join(import.meta.dirname, '..');
const SELF = relative(root, import.meta.filename);
const TEXT = /\.(ts|mjs|js|cc|h|py|sh|yaml|md)$/;
const SKIP_DIRS = new Set(['node_modules', '.venv', 'build', 'data', 'results', 'fixtures']);

function files(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.') || SKIP_DIRS.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (TEXT.test(name)) out.push(p);
  }
  return out;
}

/** Files that must cite nothing outside the repository. */
const STRICT = ['core', 'stages', 'plugins'];
/** Files whose docs/ citations must resolve (the strict ones, and everything else that cites docs/). */
const CITING = [...STRICT, 'graphs', 'test', 'bench', 'native', 'docs'];

const read = (p: string) => readFileSync(p, 'utf8');
const rel = (p: string) => relative(root, p);

/** Citations of the design documents that used to live outside the repository, and of issue numbers. */
const FORBIDDEN = /SPEC\.md|DESIGN\.md|PERF-NOTES|\bSPEC section|\bissue [0-9]/i;

test('core/, stages/ and plugins/ cite no file outside the repository and no issue number', () => {
  const bad: string[] = [];
  for (const dir of STRICT) {
    for (const f of files(join(root, dir))) {
      read(f).split('\n').forEach((line, i) => {
        if (FORBIDDEN.test(line)) bad.push(`${rel(f)}:${i + 1}: ${line.trim()}`);
      });
    }
  }
  assert.equal(bad, [], `cite docs/ instead:\n${bad.join('\n')}`);
});

/** Section numbers ("2", "2.4") of a docs file, from its `## §2 ...` / `### §2.4 ...` headings. */
function sections(file: string): Set<string> {
  const out = new Set<string>();
  for (const m of read(file).matchAll(/^#{2,4} §(\d+(?:\.\d+)*)\s/gm)) out.add(m[1]);
  return out;
}

const docsDir = join(root, 'docs');
const docSections = new Map<string, Set<string>>();
for (const name of existsSync(docsDir) ? readdirSync(docsDir) : []) if (name.endsWith('.md')) docSections.set(name, sections(join(docsDir, name)));

// `docs/method.md §2`, `docs/method.md §2.4`, `docs/method.md §5, §6`, `docs/method.md §3-4`.
const CITATION = /docs\/([A-Za-z0-9_-]+\.md)((?:(?:\s*(?:,|and|-|–)\s*|\s+)§\d+(?:\.\d+)*)*)/g;

/** Each cited section ("§3-4" expands to 3 and 4). */
function citedSections(tail: string): string[] {
  const out: string[] = [];
  for (const m of tail.matchAll(/(§\d+(?:\.\d+)*)(?:\s*[-–]\s*§?(\d+))?/g)) {
    const first = m[1].slice(1);
    out.push(first);
    if (m[2] && !first.includes('.')) for (let n = Number(first) + 1; n <= Number(m[2]); n++) out.push(String(n));
  }
  return out;
}

test('docs/ has its index and every docs file numbers its sections', () => {
  assert.ok(docSections.has('README.md'), 'docs/README.md is the index');
  for (const name of ['method.md', 'architecture.md', 'performance.md']) {
    assert.ok(docSections.has(name), `docs/${name} is missing`);
    assert.ok(docSections.get(name)!.size > 0, `docs/${name} has no "## §N ..." headings`);
  }
});

test('every docs/<file>.md §N citation names a file and a section that exist', () => {
  const bad: string[] = [];
  let count = 0;
  const targets = [...CITING.flatMap((d) => files(join(root, d))), join(root, 'README.md')];
  for (const f of targets) {
    if (rel(f) === SELF) continue;
    read(f).split('\n').forEach((line, i) => {
      for (const m of line.matchAll(CITATION)) {
        count++;
        const where = `${rel(f)}:${i + 1}: ${m[0]}`;
        const have = docSections.get(m[1]);
        if (!have) {
          bad.push(`${where}: no file docs/${m[1]}`);
          continue;
        }
        for (const s of citedSections(m[2])) if (!have.has(s)) bad.push(`${where}: docs/${m[1]} has no section §${s}`);
      }
    });
  }
  assert.equal(bad, []);
  assert.ok(count > 0, 'no citation of docs/ found at all: the scan is broken');
});

test('every stage descriptor says which docs section holds its method', () => {
  const bad: string[] = [];
  for (const f of [...files(join(root, 'stages')), ...files(join(root, 'plugins'))]) {
    for (const m of read(f).matchAll(/\bspec:\s*'([^']*)'/g)) {
      if (!/^docs\/[A-Za-z0-9_-]+\.md §\d/.test(m[1])) bad.push(`${rel(f)}: spec '${m[1]}'`);
    }
  }
  assert.equal(bad, []);
});

test.run();
