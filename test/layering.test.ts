// TypeScript layering (issue 12, item 7), read from the sources (no root, no kernel):
// - no value-import cycles anywhere in lib/ (type-only imports are fine: they vanish when compiled);
// - the core (lib/*.ts) never loads lib/topology/, lib/cli/ or lib/cni/ (index.ts and index.mts,
//   the package's public surface, re-export them and are the one exception);
// - topology/, cni/ and cli/ reach the kernel through the typed core, never through the addon
//   (lib/native.ts) directly.
import path from 'node:path';
import { importCycles, importGraph, sourceFiles, valueImports } from './support/import-graph';

const LIB = path.resolve(__dirname, '..', '..', 'lib');
const rel = (f: string) => path.relative(LIB, f);
const graph = importGraph(sourceFiles(LIB));
const FACADES = new Set(['index.ts', 'index.mts']);
const UPPER = /^(topology|cli|cni)\//;

test('the checker reads lib/', () => {
  expect(graph.size).toBeGreaterThan(40);
  expect(graph.get(path.join(LIB, 'netns.ts'))?.map(rel)).toEqual(expect.arrayContaining(['links.ts', 'watch.ts', 'native.ts']));
});

test('no value-import cycles in lib/', () => {
  expect(importCycles(graph).map((c) => c.map(rel))).toEqual([]);
});

test('core files do not load topology/, cli/ or cni/', () => {
  const wrong: string[] = [];
  for (const [file, deps] of graph) {
    if (rel(file).includes('/') || FACADES.has(rel(file))) continue;
    for (const d of deps) if (UPPER.test(rel(d))) wrong.push(`${rel(file)} -> ${rel(d)}`);
  }
  expect(wrong).toEqual([]);
});

test('topology/, cli/ and cni/ do not call the addon directly', () => {
  const native = path.join(LIB, 'native.ts');
  const wrong = [...graph].filter(([file, deps]) => UPPER.test(rel(file)) && deps.includes(native)).map(([file]) => rel(file));
  expect(wrong).toEqual([]);
});

describe('the checker itself', () => {
  test('tells value imports from type-only ones', () => {
    const src = [
      "import { a } from './a';",
      "import type { B } from './b';",
      "import { type C } from './c';",
      "import { type D, d } from './d';",
      "export { e } from './e';",
      "export type { F } from './f';",
      "import * as g from './g';",
      "import 'node:fs';",
      "const h = require('./h');",
      "void import('./i');",
    ].join('\n');
    expect(valueImports('x.ts', src)).toEqual(['./a', './d', './e', './g', './h', './i']);
  });

  test('finds a cycle, and only the cycle', () => {
    const files = ['/l/a.ts', '/l/b.ts', '/l/c.ts', '/l/d.ts'];
    const sources: Record<string, string> = {
      '/l/a.ts': "import { b } from './b';",
      '/l/b.ts': "import { c } from './c';",
      '/l/c.ts': "import { a } from './a';\nimport type { D } from './d';",
      '/l/d.ts': "import { a } from './a';",
    };
    expect(importCycles(importGraph(files, (f) => sources[f]))).toEqual([['/l/a.ts', '/l/b.ts', '/l/c.ts']]);
    sources['/l/c.ts'] = "import type { A } from './a';";
    expect(importCycles(importGraph(files, (f) => sources[f]))).toEqual([]);
  });
});
