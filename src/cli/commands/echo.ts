/**
 * `audiosocket echo`: sends every audio message back unchanged (same kind, same payload).
 */
import { parseServerArgs, serverOptions, serverOptionsHelp } from '../options.js';
import { runServer } from '../run-server.js';

/** What `echo` takes: the server options. */
export const echoOptions = serverOptions;

export const echoHelp = `Usage: audiosocket echo [options]

Echo server: every audio message a call sends comes back unchanged (same kind, same bytes),
at once in steady state, never in bursts Asterisk would drop. Silence fills the gaps so Asterisk
never starves (docs/protocol.md#keep-alive). Every call and every DTMF digit gets a line; on a
terminal a status line below them shows active calls, frames per second, drops and late slots.

${serverOptionsHelp}`;

export async function echoCommand(argv: string[]): Promise<void> {
  const { common } = parseServerArgs(argv, echoOptions);
  if (common.help) {
    process.stdout.write(`${echoHelp}\n`);
    return;
  }
  // An echo never converts between rates nor detects speech: without those two WebAssembly
  // modules the process costs less per message (ServerOptions.preloadWasm). The monitor's
  // listen-in loads the resampler itself if someone listens.
  common.server.preloadWasm = false;
  const running = await runServer('echo', common, (call) => {
    call.on('audio', (frame) => call.write(frame.payload, frame.format));
  });
  await running.done;
}
