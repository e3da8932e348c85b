/**
 * `npm run test:walkthrough`: a new user's first bot, by the book. Clones this repository's HEAD
 * into a temporary directory and runs the commands of README.md (and, with ASTERISK_BIN, of
 * examples/asterisk/README.md) as they are written there, read from the marked code blocks
 * (scripts/readme-snippets.ts), so the README cannot drift from what works:
 *
 *  1. fresh machine: `npm install && npm start` in the clone, until the echo server listens on
 *     127.0.0.1:9092;
 *  2. the command-line tour: `audiosocket call 127.0.0.1:9092 --play hello.wav --record back.wav
 *     --dtmf "1@0.5"` against it: hello.wav must come back byte for byte, and the digit arrive;
 *  3. your own project: `npm pack` in the clone and `npm install <the tarball>` in a new ESM
 *     project (without a warning), and `npm install git+<the clone>` in another (dist/ is built);
 *  4. the Quick start bot, compiled by TypeScript against the installed package's types, answering
 *     the same `audiosocket call` (`npx audiosocket` in that project) and the README's simulated
 *     Asterisk snippet;
 *  5. with ASTERISK_BIN set: examples/asterisk/README.md's bot (`npx audiosocket echo --websocket
 *     8765` in that project) called by a private Asterisk on the recipe (test/asterisk/asterisk.ts)
 *     with the README's `channel originate` lines, extensions 200, 100, 101 and 102.
 *
 * The README's addresses are fixed (127.0.0.1:9092, :8765): the run stops at once if they are
 * taken. Waits are on output lines, exits and ports, each bounded. Exit status 0 when every step
 * passed, 1 when one failed, 2 when the run could not start. `--keep` keeps the temporary directory.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeWav, parseWav } from '#lib/audio/index.js';
import { PrivateAsterisk } from '../test/asterisk/asterisk.js';
import { until } from '../test/helpers.js';
import { ASTERISK_CLI, line, REPO, snippet, substitute, type Snippet } from './readme-snippets.js';

const keep = process.argv.includes('--keep');
const MINUTE = 60_000;

// Children get a clean environment: nothing of the `npm run` that started us (npm_* settings, this
// repository's node_modules/.bin on PATH), as in a new user's shell.
const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS'),
);
baseEnv.PATH = (process.env.PATH ?? '')
  .split(path.delimiter)
  .filter((p) => !p.includes(`${path.sep}node_modules${path.sep}.bin`) && !p.includes('node-gyp-bin'))
  .join(path.delimiter);

const running = new Set<Proc>();
let ast: PrivateAsterisk | undefined;
const work = mkdtempSync(path.join(tmpdir(), 'as-walk-'));

/** A shell command run as a reader would run it (`bash -c`), in its own process group. */
class Proc {
  out = '';
  code: number | null | undefined;
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;

  constructor(
    readonly cmd: string,
    readonly cwd: string,
    env: NodeJS.ProcessEnv = baseEnv,
  ) {
    this.child = spawn('bash', ['-c', cmd], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = once(this.child, 'exit').then(([code, signal]) => {
      this.code = (code as number | null) ?? (signal ? 128 : null);
      running.delete(this);
    });
    const add = (d: Buffer): void => void (this.out += d.toString());
    this.child.stdout!.on('data', add);
    this.child.stderr!.on('data', add);
    running.add(this);
  }

  /** The last lines of output, for an error message. */
  tail(n = 25): string {
    return this.out.trimEnd().split('\n').slice(-n).join('\n');
  }

  /** Waits until the output matches `re`; fails at once if the command exits first. */
  async waitFor(re: RegExp, what: string, timeoutMs = MINUTE): Promise<RegExpExecArray> {
    await until(
      () => {
        if (re.test(this.out)) return true;
        if (this.code !== undefined) throw new Error(`\`${this.cmd}\` exited (${this.code}) before ${what}:\n${this.tail()}`);
        return false;
      },
      what,
      timeoutMs,
    );
    return re.exec(this.out)!;
  }

  /** Waits for the exit, bounded. */
  async done(timeoutMs = MINUTE): Promise<number | null> {
    await until(() => this.code !== undefined, `\`${this.cmd}\` to exit`, timeoutMs).catch((e: Error) => {
      throw new Error(`${e.message}:\n${this.tail()}`);
    });
    return this.code!;
  }

  /** SIGINT to the whole group (npm, its shell and node), as Ctrl-C does; SIGKILL if it stays. */
  async stop(): Promise<void> {
    if (this.code !== undefined) return;
    this.signal('SIGINT');
    await this.done(10_000).catch(() => {
      this.signal('SIGKILL');
      return this.exited;
    });
  }

  signal(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, sig);
    } catch {
      // already gone
    }
  }
}

/** Runs a command to completion; fails with its output unless it exits 0. */
async function run(cmd: string, cwd: string, timeoutMs = 5 * MINUTE, env?: NodeJS.ProcessEnv): Promise<Proc> {
  const p = new Proc(cmd, cwd, env);
  const code = await p.done(timeoutMs);
  if (code !== 0) throw new Error(`\`${cmd}\` (in ${cwd}) exited with ${code}:\n${p.tail()}`);
  return p;
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port` (one attempt at a time). */
async function listening(port: number, proc: Proc, what: string): Promise<void> {
  let open = false;
  let trying = false;
  await until(
    () => {
      if (proc.code !== undefined) throw new Error(`\`${proc.cmd}\` exited (${proc.code}) before ${what}:\n${proc.tail()}`);
      if (!open && !trying) {
        trying = true;
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          open = true;
          s.destroy();
        });
        s.once('error', () => (trying = false));
      }
      return open;
    },
    what,
    20_000,
  );
}

/** Fails (exit 2) unless `port` on 127.0.0.1 is free: the README's addresses are fixed. */
async function requireFree(port: number, why: string): Promise<void> {
  const srv = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise((r) => srv.close(r));
  else {
    process.stderr.write(`test:walkthrough: 127.0.0.1:${port} is in use; ${why} needs it (the README's address is fixed)\n`);
    process.exit(2);
  }
}

/** hello.wav: 1 s of a 440 Hz tone, slin 8 kHz, as the CLI tour expects a reader to have. */
function helloWav(dir: string): Buffer {
  const pcm = Buffer.alloc(16000);
  for (let i = 0; i < 8000; i++) pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), i * 2);
  writeFileSync(path.join(dir, 'hello.wav'), encodeWav('slin', pcm));
  return pcm;
}

/** back.wav must hold hello.wav's audio, byte for byte and in one piece (an echo). */
function checkEcho(dir: string, hello: Buffer): string {
  const back = parseWav(readFileSync(path.join(dir, 'back.wav')));
  check(back.format.sampleRate === 8000 && back.format.channels === 1, `back.wav is ${JSON.stringify(back.format)}`);
  const at = back.data.indexOf(hello.subarray(0, 320));
  check(at >= 0, `back.wav (${back.data.length} B) does not contain the start of hello.wav`);
  check(back.data.subarray(at, at + hello.length).equals(hello), `back.wav differs from hello.wav after byte ${at}`);
  return `hello.wav back byte for byte (${hello.length} B at ${(at / 16).toFixed(0)} ms)`;
}

const results: Array<{ name: string; ok: boolean; ms: number; note?: string; error?: string }> = [];

async function step(name: string, fn: () => Promise<string | void>): Promise<void> {
  const t0 = performance.now();
  try {
    const note = await fn();
    results.push({ name, ok: true, ms: performance.now() - t0, ...(note ? { note } : {}) });
    process.stdout.write(`ok   ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)${note ? `\n     ${note}` : ''}\n`);
  } catch (e) {
    const error = (e as Error).message;
    results.push({ name, ok: false, ms: performance.now() - t0, error });
    process.stdout.write(`FAIL ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n     ${error.split('\n').join('\n     ')}\n`);
    throw e;
  }
}

async function cleanup(): Promise<void> {
  for (const p of [...running]) await p.stop();
  await ast?.stop();
  if (!keep) rmSync(work, { recursive: true, force: true });
}

function cleanupSync(): void {
  for (const p of running) p.signal('SIGKILL');
  ast?.stopSync();
  if (!keep) rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\ntest:walkthrough: ${sig}: stopping what it started and removing ${work}\n`);
    process.exit(130);
  });
}

async function main(): Promise<void> {
  const bin = process.env.ASTERISK_BIN;
  await requireFree(9092, "README's echo server and Quick start bot");
  if (bin) await requireFree(8765, "examples/asterisk/README.md's chan_websocket bot");

  const sha = execFileSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain'], { encoding: 'utf8' }).trim();
  process.stdout.write(`test:walkthrough: ${sha.slice(0, 12)} of ${REPO} in ${work}, node ${process.version}\n`);
  if (dirty) process.stdout.write('     (uncommitted changes are not part of it: it runs a clone of HEAD)\n');
  process.stdout.write('\n');

  const clone = path.join(work, 'audiosocket');
  const tour1 = path.join(work, 'tour');
  const project = path.join(work, 'my-bot');
  const gitProject = path.join(work, 'my-bot-git');
  for (const d of [tour1, project, gitProject]) mkdirSync(d);
  const hello = helloWav(tour1);
  helloWav(project);

  await step('git clone of HEAD', async () => {
    await run(`git clone --quiet ${JSON.stringify(REPO)} ${JSON.stringify(clone)}`, work);
    await run(`git checkout --quiet -B walkthrough ${sha}`, clone);
  });

  // The snippets of the clone's README (HEAD's), all read before anything else runs: a README
  // that lost one fails at once.
  const root = `${clone}/`;
  const quick = snippet('README.md', 'quick-start', root);
  const simulated = snippet('README.md', 'simulated-asterisk', root);
  const start = line('start', root);
  const call = line('call', root);
  const pack = line('pack', root);
  const tarball = line('tarball', root);
  const git = line('git', root);
  const asteriskLines = bin
    ? {
        bot: line('asteriskBot', root),
        originate: line('originate', root),
        show: line('showChannels', root),
        hangupAll: line('hangupAll', root),
      }
    : undefined;
  const startLine = start.text;
  const callLine = call.text;
  const packLine = pack.text;
  const tarballLine = tarball.text;
  const gitLine = git.text;

  let server: Proc | undefined;
  await step(`fresh machine: ${startLine}`, async () => {
    server = new Proc(startLine, clone);
    await server.waitFor(/audiosocket echo listening on 127\.0\.0\.1:9092/, 'the echo server to listen on 127.0.0.1:9092', 10 * MINUTE);
  });

  await step(`command line: ${callLine}`, async () => {
    // `audiosocket` as a reader has it after installing: the clone's CLI (README: "node dist/cli/main.js in a clone")
    const shims = path.join(work, 'bin');
    mkdirSync(shims);
    writeFileSync(path.join(shims, 'audiosocket'), `#!/bin/sh\nexec node ${JSON.stringify(path.join(clone, 'dist/cli/main.js'))} "$@"\n`);
    chmodSync(path.join(shims, 'audiosocket'), 0o755);
    const call = await run(callLine, tour1, MINUTE, { ...baseEnv, PATH: `${shims}${path.delimiter}${baseEnv.PATH}` });
    check(/ended by us/.test(call.out), `the call's summary does not say who ended it:\n${call.out}`);
    await server!.waitFor(/\ndtmf [0-9a-f-]+ 1 /, 'the echo server to log the digit 1');
    await server!.waitFor(/\nend .* reason=remote-hangup/, "the echo server to log the call's end");
    return checkEcho(tour1, hello);
  });

  await step('Ctrl-C stops npm start', async () => {
    await server!.stop();
    check(/closed after 1 call\(s\)/.test(server!.out), `the echo server did not close cleanly:\n${server!.tail()}`);
  });

  await step(`your own project: ${packLine}, then ${tarballLine}`, async () => {
    await run(packLine, clone);
    const tgz = /audiosocket-\d+\.\d+\.\d+\.tgz/.exec(tarballLine)?.[0];
    check(tgz && existsSync(path.join(clone, tgz)), `npm pack did not write the tarball the README names (${tgz ?? '?'})`);
    await run('npm init -y && npm pkg set type=module', project);
    const install = await run(substitute(tarball.snippet, tarballLine, '/path/to/', `${clone}/`), project);
    const warnings = install.out.split('\n').filter((l) => /npm warn/i.test(l));
    check(warnings.length === 0, `installing the tarball warned:\n${warnings.join('\n')}`);
    const status = execFileSync('git', ['-C', clone, 'status', '--porcelain'], { encoding: 'utf8' }).trim();
    check(status === '', `npm pack left the clone changed (package.json is restored after packing):\n${status}`);
  });

  await step(`your own project, from git: ${gitLine}`, async () => {
    await run('npm init -y && npm pkg set type=module', gitProject);
    await run(substitute(git.snippet, gitLine, 'https://example.com/you/audiosocket.git', `file://${clone}`), gitProject);
    const built = ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js'].filter(
      (f) => !existsSync(path.join(gitProject, 'node_modules/audiosocket', f)),
    );
    check(built.length === 0, `the git install has no ${built.join(', ')}: prepare did not build it`);
    await run("node -e \"import('audiosocket').then((m) => { if (typeof m.createServer !== 'function') process.exit(1) })\"", gitProject);
  });

  await step('Quick start bot (TypeScript) answers `npx audiosocket call`', async () => {
    writeFileSync(path.join(project, 'bot.ts'), quick.code);
    writeFileSync(path.join(project, 'simulated.ts'), simulated.code);
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'es2022',
          strict: true,
          // @types/node, which a TypeScript project has; this one takes the repository's
          typeRoots: [path.join(REPO, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['bot.ts', 'simulated.ts'],
      }),
    );
    await run(`node ${JSON.stringify(path.join(REPO, 'node_modules/typescript/bin/tsc'))} -p .`, project);
    const bot = new Proc('node bot.js', project);
    await listening(9092, bot, 'the Quick start bot to listen on 127.0.0.1:9092');
    const call = await run(`npx ${callLine}`, project, MINUTE);
    check(/ended by us/.test(call.out), `the call's summary does not say who ended it:\n${call.out}`);
    await bot.waitFor(/call [0-9a-f-]+ from 127\.0\.0\.1/, 'the bot to log the call');
    await bot.waitFor(/pressed 1/, 'the bot to log the digit');
    await bot.waitFor(/ended: remote-hangup/, "the bot to log the call's end");
    const echo = checkEcho(project, hello);
    const sim = await run('node simulated.js', project, MINUTE);
    check(/bot says \d+ bytes/.test(sim.out), `the simulated Asterisk snippet heard nothing:\n${sim.out}`);
    check(/^\[\]$/m.test(sim.out), `the simulated Asterisk snippet saw violations:\n${sim.out}`);
    await bot.waitFor(/pressed 5/, 'the bot to log the digit 5 of the simulated Asterisk snippet');
    await until(() => (bot.out.match(/ended: remote-hangup/g) ?? []).length === 2, 'the second call to end');
    await bot.stop();
    return `${echo}; the simulated Asterisk snippet: ${(sim.out.match(/bot says/g) ?? []).length} frames, no violations`;
  });

  if (!bin || !asteriskLines) {
    process.stdout.write('skip Asterisk (examples/asterisk/README.md): ASTERISK_BIN is not set\n');
    return;
  }
  const botLine = asteriskLines.bot.text;
  const { originate, show, hangupAll } = asteriskLines;

  let echo: Proc | undefined;
  await step(`Asterisk: a private one on examples/asterisk, and ${botLine}`, async () => {
    ast = new PrivateAsterisk({ bin });
    await ast.start();
    echo = new Proc(botLine, project);
    await echo.waitFor(/listening for chan_websocket on ws:\/\/127\.0\.0\.1:8765/, 'the bot to listen');
    return `${await ast.version()}, configs in ${ast.dir}`;
  });
  const asterisk = (l: { snippet: Snippet; text: string }, text = l.text): string =>
    substitute(l.snippet, text, ASTERISK_CLI, `${bin} -C ${ast!.conf}`);

  // examples/asterisk/README.md: 200 first, then "Try Local/100@audiosocket (the app), Local/101@audiosocket and Local/102@audiosocket the same way"
  for (const [k, exten] of ['200', '100', '101', '102'].entries()) {
    await step(`Asterisk: channel originate Local/${exten}@audiosocket application Milliwatt`, async () => {
      await run(asterisk(originate, substitute(originate.snippet, originate.text, 'Local/200@', `Local/${exten}@`)), project, MINUTE);
      await until(() => (echo!.out.match(/^call /gm) ?? []).length === k + 1, `call ${k + 1} to reach the bot`, 10_000);
      // Let the call run until Asterisk says it has been up a second (Milliwatt streams all along).
      for (const deadline = performance.now() + 10_000; ;) {
        const shown = (await run(asterisk(show), project, MINUTE)).out;
        const concise = await ast!.rx('core show channels concise');
        const up = concise.split('\n').filter((l) => l.startsWith(exten === '200' ? 'WebSocket/bot' : `Local/${exten}@audiosocket`));
        if (up.some((l) => Number(l.split('!')[11]) >= 1)) {
          check(/Milliwatt/.test(shown), `core show channels does not list the caller's Milliwatt():\n${shown}`);
          break;
        }
        check(performance.now() < deadline, `the call was not up for a second within 10 s:\n${concise}`);
      }
      await run(asterisk(hangupAll), project, MINUTE);
      await until(() => (echo!.out.match(/^end /gm) ?? []).length === k + 1, `call ${k + 1} to end`, 10_000);
      const end = echo!.out.match(/^end .*$/gm)![k]!;
      const m = /in=(\d+) out=(\d+) .*reason=remote-hangup/.exec(end);
      check(m && Number(m[1]) > 0 && Number(m[2]) > 0, `the bot's line for the call: ${end}`);
      return end;
    });
  }
}

let code = 1;
const t0 = performance.now();
try {
  await main();
  code = 0;
} catch (e) {
  if (!results.some((r) => !r.ok)) process.stderr.write(`test:walkthrough: ${(e as Error).message}\n`);
} finally {
  await cleanup();
}
const failed = results.filter((r) => !r.ok).length;
process.stdout.write(
  `\n${results.length - failed} steps passed, ${failed} failed, in ${((performance.now() - t0) / 1000).toFixed(1)} s${keep ? `; kept ${work}` : ''}\n`,
);
process.exit(code);
