/**
 * Help and parser cannot drift: for every command in the CLI's registry
 * (src/cli/commands/index.ts), the built CLI's `--help` has an entry for every option of the table
 * its parser uses, and `audiosocket --help` lists every command. The options are read from those
 * tables, not listed here, so an option added without help fails this test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commands } from '#lib/cli/commands/index.js';
import { runCli } from './helpers.js';

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

for (const [name, command] of Object.entries(commands)) {
  test(`audiosocket ${name} --help has an entry for every option its parser takes`, async () => {
    const options = Object.entries(command.options);
    assert.ok(options.length > 0, `${name} has an option table`);

    // Every option of the table given at once, then --help (which wins over everything else):
    // the parser accepts them all, so this table is the parser's, and the help comes out.
    const argv = options.flatMap(([option, spec]) => (spec.type === 'string' ? [`--${option}`, 'x'] : [`--${option}`]));
    const { code, out, err } = await runCli([name, ...argv, '--help']);
    assert.equal(code, 0, `audiosocket ${name} ${argv.join(' ')} --help:\n${err}`);
    assert.equal(out, `${command.help}\n`);

    // An entry: the option at the start of a line, with its short form first if it has one.
    const missing = options
      .filter(([option, spec]) => {
        const short = spec.short === undefined ? '' : `-${escape(spec.short)}, `;
        return !new RegExp(`^ +${short}--${escape(option)}(?= |$)`, 'm').test(out);
      })
      .map(([option, spec]) => (spec.short === undefined ? `--${option}` : `-${spec.short}, --${option}`));
    assert.deepEqual(missing, [], `audiosocket ${name} --help lacks an entry for these options:\n${out}`);

    // And nothing else gets through the parser.
    const unknown = await runCli([name, '--not-an-option']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown option --not-an-option/);
  });
}

test('audiosocket --help lists every command', async () => {
  const { code, out } = await runCli(['--help']);
  assert.equal(code, 0);
  const missing = Object.keys(commands).filter((name) => !new RegExp(`^ {2}${escape(name)} +\\S`, 'm').test(out));
  assert.deepEqual(missing, [], out);
});
