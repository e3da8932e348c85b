/**
 * The fast half of `npm run test:walkthrough` (scripts/walkthrough.ts, which clones the repository
 * and runs them): every code block of the documentation it runs is still there, marked, in its
 * language and parses, and every line it picks out still holds what it replaces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import ts from 'typescript';
import { LINES, line, snippet, snippets, USED } from '../scripts/readme-snippets.js';

for (const [file, blocks] of Object.entries(USED)) {
  test(`${file}: the code blocks the walkthrough runs are marked and parse`, () => {
    const marked = snippets(file).map((s) => s.name);
    assert.deepEqual([...marked].sort(), Object.keys(blocks).sort(), `${file}: the marked blocks are not the ones the walkthrough uses`);
    for (const [name, lang] of Object.entries(blocks)) {
      const s = snippet(file, name);
      assert.equal(s.lang, lang, `${file}:${s.line} "${name}"`);
      if (lang === 'sh')
        execFileSync('bash', ['-n', '-c', s.code]); // throws on a syntax error
      else {
        const out = ts.transpileModule(s.code, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.NodeNext } });
        const errors = (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        assert.deepEqual(errors, [], `${file}:${s.line} "${name}" does not parse`);
      }
    }
  });
}

test('the lines the walkthrough runs are each found once, with the literals it replaces', () => {
  for (const name of Object.keys(LINES) as Array<keyof typeof LINES>) assert.ok(line(name).text, name);
  assert.equal(line('start').text.split('#')[0]!.trim(), 'npm install && npm start');
});
