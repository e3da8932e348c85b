/**
 * Every user mistake on the command line: exit status 2, one line saying what is wrong and how to
 * fix it, then `see 'audiosocket <cmd> --help'`; no stack trace, no help dump, and nothing
 * listens or dials first. Each case runs the real CLI process.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeWav } from '#lib/index.js';
import { runCli, spawnCli } from './helpers.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'audiosocket-cli-errors-'));
  dirs.push(d);
  return d;
}

/** Runs the CLI and checks the shape of a usage error; returns the one message line. */
async function usageError(args: string[], pattern: RegExp): Promise<string> {
  const r = await runCli(args);
  const cmd = ['echo', 'record', 'play', 'inspect', 'call'].includes(args[0]!) ? args[0]! : '';
  const prefix = cmd ? `audiosocket ${cmd}` : 'audiosocket';
  const shown = `${args.join(' ')}\n--- stderr:\n${r.err}--- stdout:\n${r.out}`;
  assert.equal(r.code, 2, shown);
  const lines = r.err.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 2, `exactly one message line and the pointer to --help:\n${shown}`);
  assert.ok(lines[0]!.startsWith(`${prefix}: `), shown);
  assert.match(lines[0]!, pattern, shown);
  assert.equal(lines[1], `see '${prefix} --help'`, shown);
  assert.doesNotMatch(r.err, /^\s+at .*:\d+:\d+\)?$/m, `no stack trace:\n${shown}`);
  assert.equal(r.out, '', `nothing on stdout (no help dump, no listening line):\n${shown}`);
  return lines[0]!;
}

/** A TCP server that counts connections: proof that a command refused its options before dialling. */
async function witness(t: { after(fn: () => unknown): void }): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as net.AddressInfo).port, connections: () => n };
}

describe('server options (echo, record, play, inspect)', () => {
  test('--allow with a bad CIDR names the entry and the valid range', async () => {
    await usageError(['echo', '--allow', '10.0.0.0/33'], /--allow: .*"10\.0\.0\.0\/33".*prefix length \(0-32\).*10\.0\.0\.0\/8/);
    await usageError(['inspect', '--allow', 'example.com'], /--allow: .*"example\.com" is not an IP address/);
  });

  test('an --allow list no caller can match on a loopback listener is a warning; one that can match is not', async () => {
    const stderrOf = async (allow: string): Promise<string> => {
      const cli = await spawnCli(['echo', '--port', '0', '--allow', allow]);
      cli.child.kill('SIGTERM');
      await once(cli.child, 'close'); // its output read to the end, not only its exit
      return cli.stderr();
    };
    assert.match(
      await stderrOf('10.0.0.1'),
      /^audiosocket echo: warning: --allow 10\.0\.0\.1 can match no caller: the server listens on 127\.0\.0\.1, so every caller comes from 127\.0\.0\.1; add 127\.0\.0\.1 to --allow/m,
    );
    assert.doesNotMatch(await stderrOf('10.0.0.1,127.0.0.1'), /can match no caller/);
    assert.doesNotMatch(await stderrOf('127.0.0.0/8'), /can match no caller/);
    // Callers of 127.0.0.1 come from 127.0.0.1, never from ::1.
    assert.match(await stderrOf('::1'), /--allow ::1 can match no caller: the server listens on 127\.0\.0\.1/);
  });

  test("--frame-ms must be one of Asterisk's frame sizes", async () => {
    await usageError(['echo', '--frame-ms', '25'], /--frame-ms must be one of 10, 20, 30, 40, 50, 60.*"25"/);
    await usageError(['record', '--frame-ms', 'abc'], /--frame-ms must be one of .*"abc"/);
  });

  test('--port -1, abc, 70000 and a missing value', async () => {
    for (const p of ['-1', 'abc', '70000', '1.5']) {
      await usageError(
        ['echo', '--port', p],
        new RegExp(`--port must be a whole number from 0 to 65535 \\(0 picks a free port\\), got "${p.replace('.', '\\.')}"`),
      );
    }
    await usageError(['echo', '--port'], /--port needs a value/);
    await usageError(['echo', '--port=-1'], /--port must be a whole number/);
  });

  test('unknown options, a value on a flag, stray arguments, bad enums', async () => {
    await usageError(['echo', '--prot', '9092'], /unknown option --prot; did you mean --port\?/);
    await usageError(['echo', '--target', 'x'], /^audiosocket echo: unknown option --target$/);
    await usageError(['echo', '--json=yes'], /--json takes no value/);
    await usageError(['echo', 'extra'], /unexpected argument "extra": this command takes options only/);
    await usageError(['echo', '--inbound', 'gsm'], /--inbound must be slin, ulaw or alaw, got "gsm"/);
    await usageError(
      ['echo', '--format', 'ulaw'],
      /--format must be one of slin, .* \(a server always sends slin; for ulaw from Asterisk use --inbound ulaw\)/,
    );
    await usageError(['echo', '--max-calls', '0'], /--max-calls must be a whole number from 1 to/);
    await usageError(['echo', '--workers', 'lots'], /--workers must be a whole number from 1 to 256 \(or auto\)/);
    await usageError(['echo', '--workers', '2', '--metrics', '127.0.0.1:0'], /--metrics works with one worker only/);
    await usageError(['record', '--respond', 'music'], /--respond must be silence or echo, got "music"/);
    await usageError(['play', 'a.wav', '--then', 'dance'], /--then must be hangup, silence or echo/);
    await usageError(['play', 'a.wav', 'b.wav'], /unexpected argument "b\.wav": this command takes one FILE only/);
    await usageError(['play'], /no FILE given/);
    await usageError(
      ['call', '127.0.0.1:1', '--play', 'a.wav', '--record', './a.wav'],
      /--record \.\/a\.wav would write \.\/a\.wav, the file --play reads/,
    );
    await usageError(
      ['call', '127.0.0.1:1', '--play', 'a-2.wav', '--record', 'a.wav', '--calls', '2'],
      /would write a-2\.wav, the file --play reads/,
    );
    // A bare port or directory: the option it most likely meant.
    await usageError(['echo', '48023'], /unexpected argument "48023": this command takes options only; did you mean --port 48023\?$/);
    await usageError(['record', 'out/'], /did you mean --dir out\/\?$/);
    await usageError(['call', '127.0.0.1', '9092'], /unexpected argument "9092": .*; did you mean 127\.0\.0\.1:9092\?$/);
  });

  test('--metrics: not HOST:PORT, a port out of range', async () => {
    await usageError(['echo', '--metrics', 'localhost'], /--metrics must be \[HOST:\]PORT .*got "localhost"; write localhost:9464/);
    await usageError(['echo', '--metrics', '127.0.0.1:70000'], /--metrics: port must be a whole number from 0 to 65535, got "70000"/);
  });

  test('a metrics port in use stops the command before it listens (it does not run without metrics)', async (t) => {
    const busy = await witness(t);
    const line = await usageError(
      ['echo', '--port', '0', '--metrics', `127.0.0.1:${busy.port}`],
      /--metrics 127\.0\.0\.1:\d+: port \d+ is already in use.*pick another with --metrics/,
    );
    assert.ok(line.includes(String(busy.port)));
  });

  test('the AudioSocket port in use', async (t) => {
    const first = await spawnCli(['echo', '--port', '0']);
    t.after(async () => {
      first.child.kill('SIGKILL');
      if (first.child.exitCode === null) await once(first.child, 'exit');
    });
    await usageError(
      ['echo', '--port', String(first.port)],
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: port ${first.port} is already in use .*pick another with --port`),
    );
  });

  test('unknown command', async () => {
    await usageError(['nope'], /unknown command "nope"; commands are echo, record, play, inspect, gateway, call/);
  });

  test('options before the command: the order that works', async () => {
    await usageError(
      ['--port', '45090', 'echo', '--quiet'],
      /"--port" comes before a command; options go after it, as in: audiosocket echo --port 45090 --quiet$/,
    );
    await usageError(
      ['--port', '45090'],
      /"--port" comes before a command; options go after it, as in: audiosocket <command> --port 45090 \(commands are echo, record, play, inspect, gateway, call\)$/,
    );
  });
});

describe('record --dir is checked before listening', () => {
  test('a file, a missing directory, a read-only directory', async () => {
    const dir = await tempDir();
    const file = join(dir, 'not-a-dir');
    await writeFile(file, 'x');
    await usageError(['record', '--port', '0', '--dir', file], /--dir .*not-a-dir: not a directory/);
    await usageError(
      ['record', '--port', '0', '--dir', join(dir, 'missing')],
      /--dir .*missing: no such directory; create it first \(mkdir -p .*missing\)/,
    );
    // root writes through file modes, so as root use a place the kernel refuses (sysfs).
    let readOnly = '/sys';
    if (process.getuid?.() !== 0) {
      readOnly = join(dir, 'ro');
      await (await import('node:fs/promises')).mkdir(readOnly);
      await chmod(readOnly, 0o555);
    }
    await usageError(
      ['record', '--port', '0', '--dir', readOnly],
      /--dir .*: cannot create files there \((permission denied|read-only file system)\); pick a writable directory/,
    );
    // A directory whose file system takes no files at all.
    await usageError(
      ['record', '--port', '0', '--dir', '/proc'],
      /--dir \/proc: cannot create files there \(its file system takes no new files\)/,
    );
  });
});

describe('audio files that are not WAV are named, with the command that converts them', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    [
      'id3.mp3',
      Buffer.concat([Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x00', 'latin1'), Buffer.alloc(20)]),
      /an MP3 file \(an ID3 tag\).*ffmpeg -i \S*id3\.mp3 -ar 8000 -ac 1 -c:a pcm_s16le \S*id3-8k\.wav/,
    ],
    [
      'sync.mp3',
      Buffer.concat([Buffer.from([0xff, 0xf3, 0x90, 0x64]), Buffer.alloc(20)]),
      /an MP3 file \(an MPEG audio frame sync 0xFF 0xF3\).*ffmpeg -i \S*sync\.mp3 /,
    ],
    [
      'sync2.mp3',
      Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(20)]),
      /an MP3 file \(an MPEG audio frame sync 0xFF 0xFB\)/,
    ],
    [
      'voice.ogg',
      Buffer.concat([Buffer.from('OggS\x00\x02', 'latin1'), Buffer.alloc(20)]),
      /an Ogg \(Vorbis or Opus\) file.*ffmpeg -i \S*voice\.ogg .*\(or sox \S*voice\.ogg -r 8000 -c 1 -b 16 \S*voice-8k\.wav\)/,
    ],
    [
      'music.flac',
      Buffer.concat([Buffer.from('fLaC\x00\x00\x00\x22', 'latin1'), Buffer.alloc(20)]),
      /a FLAC file.*sox \S*music\.flac -r 8000 -c 1 -b 16 \S*music-8k\.wav/,
    ],
    [
      'README.md',
      Buffer.from('# My bot\n\nA prompt that I meant to play.\n'.repeat(4)),
      /this is a text file, not audio .*give a WAV file/,
    ],
    [
      'prompt.sln',
      Buffer.from(Int16Array.from({ length: 400 }, (_, i) => (i * 97) % 3000).buffer),
      /maybe raw audio.*sox -t raw -r 8000 -e signed -b 16 -c 1 \S*prompt\.sln \S*prompt-8k\.wav/,
    ],
  ];
  for (const [name, bytes, pattern] of cases) {
    test(`${name}: play FILE and call --play`, async () => {
      const dir = await tempDir();
      const path = join(dir, name);
      await writeFile(path, bytes);
      await usageError(
        ['play', path, '--port', '0'],
        new RegExp(`cannot play \\S*${name.replace('.', '\\.')}: .*not a RIFF file.*${pattern.source}`),
      );
      await usageError(['call', '127.0.0.1:1', '--play', path], new RegExp(`--play: cannot play .*${pattern.source}`));
    });
  }

  test('a WAV without audio: play FILE and call --play refuse it', async () => {
    const dir = await tempDir();
    const path = join(dir, 'empty.wav');
    await writeFile(path, encodeWav('slin', Buffer.alloc(0)));
    await usageError(['play', path, '--port', '0'], /cannot play \S*empty\.wav: it holds no audio \(its data chunk is empty\)/);
    await usageError(['call', '127.0.0.1:1', '--play', path], /--play: cannot play \S*empty\.wav: it holds no audio/);
  });

  test('a missing file', async () => {
    await usageError(['play', '/nonexistent/prompt.wav', '--port', '0'], /cannot play \/nonexistent\/prompt\.wav: no such file/);
  });
});

describe('two listeners on one port', () => {
  test('--monitor, --metrics or --websocket on the port of another: one line, exit 2', async () => {
    await usageError(
      ['echo', '--port', '47093', '--monitor', '47093'],
      /--monitor 47093 is the port of --port too; give each its own port/,
    );
    await usageError(
      ['echo', '--port', '47001', '--websocket', '47765', '--monitor', '47765'],
      /--monitor 47765 is the port of --websocket too/,
    );
    await usageError(['record', '--port', '47002', '--metrics', '47002'], /--metrics 47002 is the port of --port too/);
  });
});

describe('call: every option is checked before dialling', () => {
  test('a bad DTMF digit anywhere in the list: nothing is dialled, so no digit is sent', async (t) => {
    const server = await witness(t);
    await usageError(
      ['call', `127.0.0.1:${server.port}`, '--dtmf', '1@0.2,x@0.6'],
      /--dtmf: "x" \(in "x@0\.6"\) is not a DTMF digit; use 0-9 \* # A-D a-d X/,
    );
    await usageError(['call', `127.0.0.1:${server.port}`, '--dtmf', '12e'], /--dtmf: "e" \(character 3\) is not a DTMF digit/);
    await usageError(['call', `127.0.0.1:${server.port}`, '--dtmf', '1@soon'], /--dtmf: the time in "1@soon" must be seconds/);
    assert.equal(server.connections(), 0, 'the server was never dialled');
  });

  test('a digit timed after --duration is an error, not silently dropped', async (t) => {
    const server = await witness(t);
    await usageError(
      ['call', `127.0.0.1:${server.port}`, '--duration', '2', '--dtmf', '1@0.5,#@2.5'],
      /--dtmf: #@2\.5 would come after the call ends at --duration 2; lengthen --duration or send the digits earlier/,
    );
    assert.equal(server.connections(), 0);
  });

  test('call localhost names the HOST:PORT argument (there is no --target)', async () => {
    const line = await usageError(
      ['call', 'localhost'],
      /server address "localhost" has no port: write localhost:9092 \(the HOST:PORT argument\), or use --host localhost --port PORT/,
    );
    assert.doesNotMatch(line, /--target/);
    await usageError(['call', 'localhost:abc'], /the HOST:PORT argument: port must be a whole number from 1 to 65535, got "abc"/);
    await usageError(['call', 'a:1', 'b:2'], /unexpected argument "b:2": this command takes one HOST:PORT only/);
    // Two addresses for one server are a mistake, not a choice made without a word.
    await usageError(
      ['call', '127.0.0.1:5000', '--port', '5001'],
      /the HOST:PORT argument says 127\.0\.0\.1:5000 but --port 5001 says otherwise/,
    );
    await usageError(
      ['call', '127.0.0.1:5000', '--host', '10.1.1.1'],
      /the HOST:PORT argument says 127\.0\.0\.1:5000 but --host 10\.1\.1\.1 says otherwise/,
    );
    // A bare PORT argument names no host: with --host it is one address (nothing listens there).
    const one = await runCli(['call', '--host', 'localhost', '1', '--duration', '1']);
    assert.doesNotMatch(one.err, /says otherwise/);
    assert.match(one.err, /could not connect to localhost:1\b/);
  });

  test('nothing listening: one line that says so, with the hint; -q prints its summary on stdout', async () => {
    const free = net.createServer();
    free.listen(0, '127.0.0.1');
    await once(free, 'listening');
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const r = await runCli(['call', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.out, '', 'no summary of a call that never connected');
    const lines = r.err.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0]!, new RegExp(`ECONNREFUSED.*is a server listening there\\? \\(try: audiosocket echo --port ${port}\\)`));
    // Another loopback address: the server must be told to listen there.
    const other = await runCli(['call', `127.0.0.2:${port}`]);
    assert.match(other.err, new RegExp(`is a server listening there\\? \\(try: audiosocket echo --host 127\\.0\\.0\\.2 --port ${port}\\)`));
    await usageError(
      ['call', '--websocket', `127.0.0.2:${port}`, '--host', '127.0.0.1'],
      /names host 127\.0\.0\.2 but --host says 127\.0\.0\.1/,
    );
    await usageError(['call', '--websocket', `ws://127.0.0.2:${port}/media`, '--host', '127.0.0.1'], /--host with a --websocket URL/);
    const q = await runCli(['call', '-q', `127.0.0.1:${port}`]);
    assert.match(q.out, /^1 call\(s\) in [\d.]+ s: 0 connected, 1 failed, 0 refused, 0 violation\(s\)\n$/);
  });

  test('--port -1, abc, 70000, 0', async () => {
    for (const p of ['-1', 'abc', '70000', '0']) {
      await usageError(['call', '--port', p], new RegExp(`--port must be a whole number from 1 to 65535, got "${p}"`));
    }
  });

  test('format, tone, duration, calls, uuid, record, play with tone', async () => {
    const dir = await tempDir();
    await usageError(['call', '--format', 'ulax'], /--format must be one of slin, .*slin192, ulaw, alaw; got "ulax"/);
    await usageError(['call', '--tone', '5000'], /--tone must be a frequency in Hz above 0 and below 4000/);
    await usageError(['call', '--tone', '0'], /--tone must be a frequency in Hz above 0 and below 4000 .*got "0"/);
    await usageError(['call', '--format', 'slin16', '--tone', 'loud'], /--tone must be a frequency in Hz above 0 and below 8000/);
    await usageError(['call', '--duration', '0'], /--duration must be a positive number of seconds such as 2\.5, got "0"/);
    await usageError(['call', '--duration', '-3'], /--duration must be a positive number of seconds/);
    await usageError(['call', '--calls', 'many'], /--calls must be a whole number from 1 to 100000/);
    await usageError(['call', '--uuid', 'abc'], /--uuid: not a UUID: "abc"; use the 8-4-4-4-12 hex form/);
    await usageError(
      ['call', '--record', join(dir, 'missing', 'out.wav')],
      /--record .*out\.wav: directory .*missing does not exist; create it first \(mkdir -p .*missing\)/,
    );
    await usageError(['call', '--record', dir], /--record .*: is a directory; give a file name/);
    const wav = join(dir, 'a.wav');
    await writeFile(wav, encodeWav('slin', Buffer.alloc(320)));
    await usageError(['call', '--play', wav, '--tone', '440'], /--play and --tone both given; pick one/);
  });
});
