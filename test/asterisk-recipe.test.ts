/**
 * The Asterisk snippets of the documentation are excerpts of examples/asterisk/, the configuration
 * `npm run test:asterisk` runs on: each snippet must appear there, line for line and in order.
 * (This test needs no Asterisk; the recipe itself is tested by test:asterisk.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const read = (p: string): string => readFileSync(fileURLToPath(new URL(`../../${p}`, import.meta.url)), 'utf8');

/**
 * The config lines of a file, as a user would have them once uncommented: prose comments (`; `)
 * and blank lines dropped, commented settings (`;key`, `;[section]`) uncommented, trailing
 * comments and spaces removed.
 */
function configLines(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => !/^\s*;(\s|$)/.test(l) && l.trim() !== '')
    .map((l) =>
      l
        .replace(/^;(?=[[a-z])/, '')
        .replace(/\s+;.*$/, '')
        .trimEnd(),
    );
}

/** The fenced code blocks between heading `from` and the next heading of the same level. */
function blocks(markdown: string, from: string): string[] {
  const start = markdown.indexOf(`\n${from}\n`);
  assert.ok(start >= 0, `heading ${from} not found`);
  const level = from.split(' ')[0]!;
  const rest = markdown.slice(start + from.length + 2);
  const end = rest.search(new RegExp(`\\n${level} `));
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Which recipe file a snippet belongs to, or undefined for other code (TypeScript, shell). */
function recipeFileOf(snippet: string): string | undefined {
  if (/^exten =>/m.test(snippet)) return 'extensions.conf';
  if (/^type = websocket_client/m.test(snippet)) return 'websocket_client.conf';
  if (/^type = global/m.test(snippet)) return 'chan_websocket.conf';
  return undefined;
}

function assertExcerpt(snippet: string, where: string): string {
  const file = recipeFileOf(snippet)!;
  const want = configLines(snippet).join('\n');
  const have = configLines(read(`examples/asterisk/${file}`)).join('\n');
  assert.ok(`\n${have}\n`.includes(`\n${want}\n`), `${where}: this snippet is not in examples/asterisk/${file}:\n${snippet}`);
  return file;
}

test('README.md: the dialplan, websocket_client.conf and chan_websocket.conf snippets are excerpts of examples/asterisk', () => {
  const readme = read('README.md');
  const checked: string[] = [];
  for (const heading of ['## Asterisk dialplan', "## chan_websocket (Asterisk's WebSocket channel driver)"]) {
    for (const snippet of blocks(readme, heading).filter((b) => recipeFileOf(b)))
      checked.push(assertExcerpt(snippet, `README.md ${heading}`));
  }
  // the app, the AudioSocket Dial, the [bot] section, the WebSocket Dial and [global]
  assert.deepEqual(checked.sort(), [
    'chan_websocket.conf',
    'extensions.conf',
    'extensions.conf',
    'extensions.conf',
    'websocket_client.conf',
  ]);
});

test('docs/security.md: the wss:// websocket_client.conf section is the commented one of examples/asterisk', () => {
  const snippets = blocks(read('docs/security.md'), '## chan_websocket: credentials and TLS').filter((b) => recipeFileOf(b));
  assert.equal(snippets.length, 1);
  assert.match(snippets[0]!, /uri = wss:/);
  assertExcerpt(snippets[0]!, 'docs/security.md');
});

test('every Dial() of the recipe has the g option, and every AudioSocket Dial a codec', () => {
  const dials = read('examples/asterisk/extensions.conf').match(/^[^;\n]*Dial\(.*$/gm) ?? [];
  assert.ok(dials.length >= 3);
  for (const d of dials) {
    assert.match(d, /,,g\)$/, d);
    if (d.includes('AudioSocket/')) assert.match(d, /\/c\(slin(16)?\)/, d);
  }
});
