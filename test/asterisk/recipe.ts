/**
 * The Asterisk configuration users copy, `examples/asterisk/`, is what the private Asterisk of
 * `npm run test:asterisk` runs on: each file is read from there and only the literal values
 * below are replaced (ports, paths, the commented wss:// section), so a recipe that no longer
 * works fails the suite. examples/asterisk/README.md documents the same table.
 *
 * Every literal must be found: an example edited so that the harness would silently stop
 * replacing a value is an error, not a passing run on the wrong port.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** examples/asterisk/ of the repository (this file runs from build/test/asterisk/). */
export const RECIPE_DIR = fileURLToPath(new URL('../../../examples/asterisk/', import.meta.url));

/** The files of the recipe the harness renders (all but README.md). */
export const RECIPE_FILES = [
  'asterisk.conf',
  'logger.conf',
  'modules.conf',
  'extensions.conf',
  'websocket_client.conf',
  'chan_websocket.conf',
] as const;
export type RecipeFile = (typeof RECIPE_FILES)[number];

/** The literal values in the recipe that a run replaces. */
export const RECIPE_LITERALS = {
  /** asterisk.conf: every directory it writes to */
  dir: '/tmp/audiosocket-asterisk',
  /** extensions.conf: where AudioSocket() and Dial(AudioSocket/...) connect */
  audiosocket: '127.0.0.1:9092',
  /** websocket_client.conf, section [bot] */
  websocketUri: 'ws://127.0.0.1:8765/media',
  /** websocket_client.conf, the commented wss:// variant of [bot]: host and port, and the CA file */
  wssHost: 'bot.example.net:8765',
  wssCa: '/etc/asterisk/keys/bot-ca.pem',
  /** chan_websocket.conf: the commented control format */
  controlFormat: ';control_message_format = json',
  /** logger.conf: the log file the harness follows */
  messagesLog: 'messages.log => notice,warning,error',
} as const;

export interface RecipeValues {
  /** the private Asterisk's directory */
  dir: string;
  /** host:port of the AudioSocket server */
  audiosocket: string;
  /** host:port of the chan_websocket server ([bot], ws://) */
  websocket: string;
  /** use the commented wss:// section of websocket_client.conf instead of the ws:// one */
  wss?: { host: string; caFile: string };
  controlFormat: 'json' | 'plain-text';
}

export function readRecipe(file: RecipeFile): string {
  return readFileSync(path.join(RECIPE_DIR, file), 'utf8');
}

function replace(file: RecipeFile, text: string, literal: string, value: string): string {
  if (!text.includes(literal)) {
    throw new Error(
      `examples/asterisk/${file} no longer contains "${literal}", which test:asterisk replaces ` +
        '(examples/asterisk/README.md, "How the test suite uses these files"): change the recipe and test/asterisk/recipe.ts together',
    );
  }
  return text.split(literal).join(value);
}

/**
 * websocket_client.conf with the commented wss:// section in place of the ws:// one, as the
 * recipe tells users to do: the active [bot] section is removed and the commented one (from
 * `;[bot]` on, every line `;` followed directly by `[` or a letter) uncommented.
 */
export function wssVariant(text: string): string {
  const at = text.indexOf('\n;[bot]\n');
  if (at < 0) throw new Error('examples/asterisk/websocket_client.conf: no commented ";[bot]" (the wss:// variant) found');
  const active = /^\[bot\]\n(?:[^;\n].*\n)*/m;
  const head = text.slice(0, at + 1);
  if (!active.test(head)) throw new Error('examples/asterisk/websocket_client.conf: no [bot] section before the commented one');
  return head.replace(active, '') + text.slice(at + 1).replace(/^;(?=[[a-z])/gm, '');
}

/** The `key = value` pairs of the commented wss:// [bot] section (e.g. its username and password). */
export function wssSection(): Record<string, string> {
  const text = wssVariant(readRecipe('websocket_client.conf'));
  const out: Record<string, string> = {};
  for (const m of text.slice(text.indexOf('[bot]')).matchAll(/^(\w+)\s*=\s*(.*?)\s*$/gm)) out[m[1]!] = m[2]!;
  return out;
}

/** One recipe file with the values of this run in place of its literals. */
export function renderRecipe(file: RecipeFile, v: RecipeValues): string {
  let text = readRecipe(file);
  const L = RECIPE_LITERALS;
  switch (file) {
    case 'asterisk.conf':
      return replace(file, text, L.dir, v.dir);
    case 'logger.conf':
      return replace(file, text, L.messagesLog, L.messagesLog);
    case 'modules.conf':
      return text;
    case 'extensions.conf':
      return replace(file, text, L.audiosocket, v.audiosocket);
    case 'websocket_client.conf':
      if (!v.wss) return replace(file, text, L.websocketUri, `ws://${v.websocket}/media`);
      text = wssVariant(text);
      text = replace(file, text, L.wssHost, v.wss.host);
      return replace(file, text, L.wssCa, v.wss.caFile);
    case 'chan_websocket.conf':
      return replace(file, text, L.controlFormat, `control_message_format = ${v.controlFormat}`);
  }
}

/** The modules the recipe loads (`load = X` lines of modules.conf). */
export function recipeModules(): string[] {
  return [...readRecipe('modules.conf').matchAll(/^load\s*=>?\s*(\S+)/gm)].map((m) => m[1]!);
}
