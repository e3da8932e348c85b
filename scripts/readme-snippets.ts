/**
 * The code blocks of the documentation that `npm run test:walkthrough` runs, read from the
 * Markdown itself so the walkthrough runs what a reader copies, not a copy of it.
 *
 * A block is marked by an HTML comment on the line before its fence (invisible on GitHub):
 *
 *   <!-- walkthrough: fresh-machine -->
 *   ```sh
 *   npm install && npm start   # echo server on 127.0.0.1:9092
 *   ```
 *
 * Where a block holds a placeholder (`/path/to/`, a URL that is an example), the walkthrough
 * replaces that literal and fails, naming the file and the block, if it is no longer there.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The root of the repository (this file runs from build/scripts/). */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface Snippet {
  /** the Markdown file, relative to the repository */
  file: string;
  /** the marker's name */
  name: string;
  /** the fence's language (`sh`, `ts`, ...) */
  lang: string;
  code: string;
  /** 1-based line of the fence */
  line: number;
}

/**
 * The snippets the walkthrough takes from each file, by marker name: the fast test
 * (test/walkthrough-snippets.test.ts) checks that every one is there, in the language given,
 * and parses.
 */
export const USED = {
  'README.md': {
    'fresh-machine': 'sh',
    'own-project': 'sh',
    'cli-tour': 'sh',
    'quick-start': 'ts',
    'simulated-asterisk': 'ts',
  },
  'examples/asterisk/README.md': {
    'asterisk-bot': 'sh',
    'asterisk-call': 'sh',
  },
} as const;

/** Every marked snippet of a Markdown file (`root` defaults to this repository). */
export function snippets(file: string, root = REPO): Snippet[] {
  const lines = readFileSync(`${root}${file}`, 'utf8').split('\n');
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!-- walkthrough: ([\w-]+) -->$/.exec(lines[i]!);
    if (!marker) continue;
    const fence = /^```(\w*)$/.exec(lines[i + 1] ?? '');
    if (!fence) throw new Error(`${file}:${i + 1}: the walkthrough marker "${marker[1]}" is not followed by a fenced code block`);
    const end = lines.indexOf('```', i + 2);
    if (end < 0) throw new Error(`${file}:${i + 2}: the code block of "${marker[1]}" is not closed`);
    out.push({ file, name: marker[1]!, lang: fence[1]!, code: `${lines.slice(i + 2, end).join('\n')}\n`, line: i + 2 });
    i = end;
  }
  return out;
}

/** How the examples/asterisk walkthrough reaches its Asterisk; replaced by the private one's. */
export const ASTERISK_CLI = 'asterisk -C /tmp/audiosocket-asterisk/asterisk.conf';

/**
 * The single lines the walkthrough runs, by the block they are in and a pattern that finds them;
 * `literals` are what it replaces in them (each must be there).
 */
export const LINES = {
  start: { file: 'README.md', block: 'fresh-machine', match: /^npm install && npm start\b/, literals: [] },
  call: { file: 'README.md', block: 'cli-tour', match: /^audiosocket call 127\.0\.0\.1:9092 /, literals: [] },
  pack: { file: 'README.md', block: 'own-project', match: /^npm pack\b/, literals: [] },
  tarball: { file: 'README.md', block: 'own-project', match: /^npm install \/path\/to\/audiosocket-[\d.]+\.tgz$/, literals: ['/path/to/'] },
  git: { file: 'README.md', block: 'own-project', match: /^npm install git\+/, literals: ['https://example.com/you/audiosocket.git'] },
  asteriskBot: {
    file: 'examples/asterisk/README.md',
    block: 'asterisk-bot',
    match: /^npx audiosocket echo --websocket 8765$/,
    literals: [],
  },
  originate: {
    file: 'examples/asterisk/README.md',
    block: 'asterisk-call',
    match: /-rx "channel originate Local\/200@audiosocket application Milliwatt"$/,
    literals: [ASTERISK_CLI, 'Local/200@'],
  },
  showChannels: {
    file: 'examples/asterisk/README.md',
    block: 'asterisk-call',
    match: /-rx "core show channels"$/,
    literals: [ASTERISK_CLI],
  },
  hangupAll: {
    file: 'examples/asterisk/README.md',
    block: 'asterisk-call',
    match: /-rx "channel request hangup all"$/,
    literals: [ASTERISK_CLI],
  },
} as const satisfies Record<string, { file: keyof typeof USED; block: string; match: RegExp; literals: readonly string[] }>;

/** One of {@link LINES}, with the snippet it comes from (for {@link substitute}). */
export function line(name: keyof typeof LINES, root = REPO): { snippet: Snippet; text: string } {
  const l = LINES[name];
  const s = snippet(l.file, l.block, root);
  const text = lineOf(s, l.match);
  for (const literal of l.literals) substitute(s, text, literal, literal);
  return { snippet: s, text };
}

/** The snippet marked `name` in `file`; throws naming both when it is missing or marked twice. */
export function snippet(file: string, name: string, root = REPO): Snippet {
  const found = snippets(file, root).filter((s) => s.name === name);
  if (found.length !== 1)
    throw new Error(`${file}: ${found.length === 0 ? 'no' : found.length} code block(s) marked "<!-- walkthrough: ${name} -->"`);
  return found[0]!;
}

/** The one line of a snippet that matches `re` (comments after `#` included). */
export function lineOf(s: Snippet, re: RegExp): string {
  const found = s.code.split('\n').filter((l) => re.test(l));
  if (found.length !== 1) throw new Error(`${s.file}:${s.line} ("${s.name}"): ${found.length} lines match ${re}, want 1:\n${s.code}`);
  return found[0]!;
}

/** `text` with every `literal` replaced by `value`; throws naming the snippet if `literal` is not there. */
export function substitute(s: Snippet, text: string, literal: string, value: string): string {
  if (!text.includes(literal))
    throw new Error(`${s.file}:${s.line} ("${s.name}") no longer contains "${literal}", which the walkthrough replaces:\n${text}`);
  return text.split(literal).join(value);
}
