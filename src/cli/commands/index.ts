/**
 * Every command of the CLI: what runs it, its `--help`, its line in `audiosocket --help`, and the
 * options its parser accepts (test/cli-help.test.ts checks that the help names each of them).
 */
import type { OptionSpec } from '../options.js';
import { echoCommand, echoHelp, echoOptions } from './echo.js';
import { inspectCommand, inspectHelp, inspectOptions } from './inspect.js';
import { recordCommand, recordHelp, recordOptions } from './record.js';
import { playCommand, playHelp, playOptions } from './play.js';
import { callCommand, callHelp, callOptions } from './call.js';
import { gatewayCommand, gatewayHelp, gatewayOptions } from './gateway.js';

export interface Command {
  run: (argv: string[]) => Promise<void>;
  help: string;
  summary: string;
  options: OptionSpec;
}

export const commands: Readonly<Record<string, Command>> = {
  echo: { run: echoCommand, help: echoHelp, options: echoOptions, summary: "echo every call's audio back (what npm start runs)" },
  record: {
    run: recordCommand,
    help: recordHelp,
    options: recordOptions,
    summary: 'record every call to WAV (stereo or per direction) with a JSON sidecar',
  },
  play: { run: playCommand, help: playHelp, options: playOptions, summary: 'play a WAV file to every caller, paced in real time' },
  inspect: {
    run: inspectCommand,
    help: inspectHelp,
    options: inspectOptions,
    summary: 'show what Asterisk sends and diagnose common mistakes',
  },
  gateway: {
    run: gatewayCommand,
    help: gatewayHelp,
    options: gatewayOptions,
    summary: 'bridge every call to a voice bot that speaks Twilio Media Streams',
  },
  call: {
    run: callCommand,
    help: callHelp,
    options: callOptions,
    summary: 'simulated Asterisk: call a server, stream audio, send DTMF, record',
  },
};
