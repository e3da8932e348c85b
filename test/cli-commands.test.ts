/**
 * record, play and call, each spawned as a real process and driven over loopback.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, encodeMessage, encodeWav, type AudioFrame } from '#lib/index.js';
import { parseWav } from '#lib/audio/index.js';
import { MAIN, runCli, spawnCli, type Running, until } from './helpers.js';
import { allZero } from './fault-helpers.js';

const dirs: string[] = [];
const children: Running[] = [];
after(async () => {
  for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'audiosocket-cli-'));
  dirs.push(d);
  return d;
}

async function cli(args: string[]): Promise<Running> {
  const r = await spawnCli(args);
  children.push(r);
  return r;
}

async function stop(r: Running, signal: NodeJS.Signals = 'SIGINT'): Promise<number> {
  r.child.kill(signal);
  const [code] = await once(r.child, 'exit');
  return code as number;
}

/** 1 s of a non-silent, sample-exact test signal at 8 kHz. */
function signal(seconds = 1): Buffer {
  const b = Buffer.alloc(16000 * seconds);
  for (let i = 0; i < b.length / 2; i++) b.writeInt16LE(((i * 37) % 20000) - 10000 || 1, i * 2);
  return b;
}

function channel(data: Buffer, ch: 0 | 1): Buffer {
  const out = Buffer.alloc(data.length / 2);
  for (let i = 0, o = 0; i + 3 < data.length; i += 4, o += 2) {
    out[o] = data[i + ch * 2]!;
    out[o + 1] = data[i + ch * 2 + 1]!;
  }
  return out;
}

/** The slin samples of `data` that are not zero, in order. */
function withoutSilence(data: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < data.length; i += 2) if (data[i] !== 0 || data[i + 1] !== 0) out.push(data.subarray(i, i + 2));
  return Buffer.concat(out);
}

const runCall = (args: string[]) => runCli(['call', ...args]);

/** The JSON sidecar of the one recording in `dir`. */
async function sidecarOf(dir: string) {
  return JSON.parse(
    await readFile(
      join(
        dir,
        (await readdir(dir)).find((f) => f.endsWith('.json'))!,
      ),
      'utf8',
    ),
  );
}

/** The one WAV file `rec` wrote in `dir`, once it says the recording is saved. */
async function savedWav(rec: Running, dir: string): Promise<ReturnType<typeof parseWav>> {
  await until(() => rec.lines.some((l) => l.startsWith('saved ')), 'the recording to be saved');
  return parseWav(
    await readFile(
      join(
        dir,
        (await readdir(dir)).find((f) => f.endsWith('.wav'))!,
      ),
    ),
  );
}

describe('audiosocket record', () => {
  test('stereo WAV: the caller sample by sample on the left, the echo on the right; sidecar with DTMF', async () => {
    const dir = await tempDir();
    const rec = await cli(['record', '--port', '0', '--dir', dir, '--respond', 'echo']);
    // The recorder's call starts after this (it needs the UUID).
    const connectAt = performance.now();
    const client = await connect({ port: rec.port, uuid: 'abcdef01-2345-4678-89ab-cdef01234567' });
    const audio = signal();
    let echoed = 0;
    // The first frame back can only leave once the recorder has the call: the call's start (the
    // sidecar's zero) is before it, whatever the load.
    let firstBackAt: number | undefined;
    let firstEchoAt: number | undefined;
    client.on('audio', (f) => {
      firstBackAt ??= performance.now();
      if (allZero(f.payload)) return;
      firstEchoAt ??= performance.now();
      echoed++;
    });
    const streaming = client.stream(audio);
    // The digit goes out after 25 of the 50 frames (the UUID is message 1).
    await until(() => client.stats.messagesOut >= 26, 'half of the audio sent');
    const digitSentAt = performance.now();
    client.sendDtmf('7');
    await streaming;
    await until(() => echoed >= 50, 'every frame echoed');
    const hangupAt = performance.now();
    await client.hangup();
    await until(() => rec.lines.some((l) => l.startsWith('saved ')), 'the recording to be saved');
    const files = (await readdir(dir)).sort();
    assert.equal(files.length, 2, files.join());
    const wav = parseWav(
      await readFile(
        join(
          dir,
          files.find((f) => f.endsWith('.wav'))!,
        ),
      ),
    );
    assert.equal(wav.format.channels, 2);
    assert.equal(wav.format.sampleRate, 8000);
    assert.equal(wav.sizeUnknown, false);
    const left = channel(wav.data, 0);
    const right = channel(wav.data, 1);
    // The recording is placed by the recorder's clock: audio that reaches it more than 60 ms late
    // and does not catch up (src/cli/timeline.ts) is preceded by silence, which a loaded client
    // causes. The test signal has no zero sample, so each channel without its silence is exactly
    // what was sent.
    assert.deepEqual(withoutSilence(left), audio, 'left channel is the caller, sample by sample');
    assert.deepEqual(withoutSilence(right), audio, 'right channel is the echo, sample by sample');
    // Where each starts, bounded by what the client saw (16 bytes a millisecond at 8 kHz): the
    // recorder's call started after connectAt, and by firstEchoAt it had placed the caller's first
    // frame and sent its echo. So the caller starts within that span, and the echo (placed at its
    // send, one frame long, within 60 ms of slack) at most that span and two frames after it.
    const tookMs = firstEchoAt! - connectAt;
    const at = left.indexOf(audio.subarray(0, 64));
    assert.ok(
      at >= 0 && at <= 16 * tookMs,
      `caller audio starts at byte ${at}, the first echo came back ${tookMs.toFixed(0)} ms after connecting`,
    );
    const lag = right.indexOf(audio.subarray(0, 64));
    assert.ok(
      lag >= at && lag - at <= 16 * tookMs + 2 * 320,
      `echo lag ${(lag - at) / 16} ms, the first echo came back ${tookMs.toFixed(0)} ms after connecting`,
    );
    const sidecar = await sidecarOf(dir);
    assert.equal(sidecar.uuid, 'abcdef01-2345-4678-89ab-cdef01234567');
    assert.equal(sidecar.endReason, 'remote-hangup');
    assert.deepEqual(
      sidecar.dtmf.map((d: { digit: string }) => d.digit),
      ['7'],
    );
    // The digit reached the recorder at least as long after the call's start as it was sent after
    // the first frame came back (about 480 ms on a quiet machine), and before the hangup.
    const atLeast = Math.floor(digitSentAt - (firstBackAt ?? digitSentAt)) - 1;
    const { atMs } = sidecar.dtmf[0];
    assert.ok(atMs >= atLeast && atMs < sidecar.durationMs, `digit at ${atMs} ms, sent ${atLeast + 1} ms after the first frame back`);
    assert.ok(sidecar.durationMs >= hangupAt - firstBackAt! - 1, `the call lasted ${sidecar.durationMs} ms`);
    assert.match(sidecar.peer, /^127\.0\.0\.1:\d+$/);
    assert.equal(sidecar.format.recording.channels, 2);
    await stop(rec);
  });

  test('the directory removed while it runs: a call is hung up with one line saying why, and the recorder goes on', async () => {
    const dir = await tempDir();
    const rec = await cli(['record', '--port', '0', '--dir', dir]);
    await rm(dir, { recursive: true });
    const client = await connect({ port: rec.port });
    const closed = await client.closed;
    assert.equal(closed.by, 'server-hangup', 'the recorder said hangup');
    await until(() => rec.stderr().includes('not recorded'), 'the reason');
    const line = rec
      .stderr()
      .split('\n')
      .find((l) => l.includes('not recorded'))!;
    assert.match(line, new RegExp(`call ${client.uuid} not recorded, hung up: cannot create its file in .*\\(.* no longer exists\\)$`));
    assert.doesNotMatch(rec.stderr(), /ENOENT|at .*\.js:\d+/, 'no raw system error or stack');
    assert.equal(rec.child.exitCode, null, 'the recorder still runs');
    assert.equal(await stop(rec), 0);
  });

  test("a stall of the recorder itself puts no silence into the caller's side: audio read in a burst is placed where it was due", async () => {
    const dir = await tempDir();
    const rec = await cli(['record', '--port', '0', '--dir', dir]);
    const client = await connect({ port: rec.port });
    const audio = signal();
    // 200 ms more after the second: a frame this busy client sends late with nothing after it
    // looks like a pause to the recorder (src/cli/timeline.ts); the tail keeps that out of the second.
    const streaming = client.stream(Buffer.concat([audio, signal(0.2)]));
    await until(() => client.stats.messagesOut >= 11, 'the first 200 ms sent');
    // The recorder's process stops while 300 ms more are sent: that audio waits in the kernel
    // and is read in one burst when the process goes on.
    rec.child.kill('SIGSTOP');
    try {
      await until(() => client.stats.messagesOut >= 26, '300 ms more sent while the recorder is stopped');
    } finally {
      rec.child.kill('SIGCONT');
    }
    await streaming;
    await client.hangup();
    const wav = await savedWav(rec, dir);
    const left = channel(wav.data, 0);
    const at = left.indexOf(audio.subarray(0, 64));
    assert.ok(at >= 0, "the caller's audio is in the recording");
    assert.deepEqual(
      left.subarray(at, at + audio.length),
      audio,
      "the caller's second in one piece, no silence where the recorder stalled",
    );
    await stop(rec);
  });

  test('a caller who sends no audio: the recording is written as the call goes, not held to its end', async () => {
    const dir = await tempDir();
    const rec = await cli(['record', '--port', '0', '--dir', dir]);
    const client = await connect({ port: rec.port });
    // The caller side is filled with silence up to 1 s behind the clock (src/cli/timeline.ts),
    // so the keep-alive side is written with it: half a second of stereo reaches the file.
    const wavSize = (): number => {
      const file = readdirSync(dir).find((f) => f.endsWith('.wav'));
      return file === undefined ? 0 : statSync(join(dir, file)).size;
    };
    await until(() => wavSize() >= 44 + 4 * 8 * 500, 'half a second of the call in the file during the call');
    assert.equal(client.connected, true, 'the call is still up');
    await client.hangup();
    const wav = await savedWav(rec, dir);
    assert.equal(wav.sizeUnknown, false);
    assert.ok(
      wav.data.every((b) => b === 0),
      'silence on both sides',
    );
    await stop(rec);
  });

  test('a caller sending faster than real time: what runs over 1 s ahead is dropped, said once and counted', async () => {
    const dir = await tempDir();
    const rec = await cli(['record', '--port', '0', '--dir', dir]);
    let stderr = '';
    rec.child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const client = await connect({ port: rec.port });
    // 6 s of audio in 4.5 s: 20 ms frames every 15 ms (every 10 ms would pass for slin16, which
    // the call would detect and resample).
    const audio = signal(6);
    const start = performance.now();
    for (let k = 0; k * 320 < audio.length; k++) {
      const wait = start + 15 * k - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      client.sendAudio(audio.subarray(k * 320, (k + 1) * 320));
    }
    await client.hangup();
    const wav = await savedWav(rec, dir);
    const sidecar = await sidecarOf(dir);
    const kept = withoutSilence(channel(wav.data, 0));
    // Every sample the caller sent is in the file or counted as dropped; the first 3 s (until the
    // side is 1 s ahead) are all there.
    assert.ok(sidecar.droppedMs.caller > 0, `dropped ${sidecar.droppedMs.caller} ms`);
    assert.ok(Math.abs(kept.length / 16 + sidecar.droppedMs.caller - 6000) <= 1, `${kept.length / 16} ms kept`);
    assert.deepEqual(kept.subarray(0, 48_000), audio.subarray(0, 48_000));
    assert.equal(sidecar.droppedMs.sent, 0);
    await until(() => /ahead of the clock/.test(stderr), 'the warning');
    assert.equal(stderr.match(/ahead of the clock/g)!.length, 1, stderr);
    await stop(rec);
  });

  test('--split and SIGINT while a call is live: the call gets a hangup and both files are finalised', async () => {
    const dir = await tempDir();
    const rec = await cli(['record', '--port', '0', '--dir', dir, '--split', '--json']);
    const client = await connect({ port: rec.port });
    const audio = signal(1);
    let received = 0;
    client.on('audio', () => received++);
    for (let off = 0; off < audio.length; off += 320) client.sendAudio(audio.subarray(off, off + 320));
    // Keep-alive has filled ten slots, so the call is live and its out side has audio.
    await until(() => received >= 10, 'ten keep-alive frames');
    assert.equal(await stop(rec), 0);
    assert.equal((await client.closed).by, 'server-hangup');
    const files = (await readdir(dir)).sort();
    const inFile = files.find((f) => f.endsWith('.in.wav'))!;
    const outFile = files.find((f) => f.endsWith('.out.wav'))!;
    assert.ok(inFile && outFile, files.join());
    const inWav = parseWav(await readFile(join(dir, inFile)));
    assert.equal(inWav.sizeUnknown, false, 'header patched on SIGINT');
    assert.equal(inWav.format.channels, 1);
    assert.ok(inWav.data.includes(audio.subarray(0, 3200)), 'caller audio recorded');
    const outWav = parseWav(await readFile(join(dir, outFile)));
    assert.ok(outWav.data.length >= 8 * 320, 'keep-alive silence recorded on the out side');
    // Both files cover the whole call and end together (here the caller's burst runs ahead).
    assert.equal(inWav.data.length, outWav.data.length, 'in and out are as long as each other');
    assert.ok(outWav.data.every((b) => b === 0));
    const sidecar = await sidecarOf(dir);
    assert.equal(sidecar.endReason, 'server-close');
    const events = rec.lines.map((l) => JSON.parse(l) as { event: string });
    assert.ok(events.some((e) => e.event === 'recorded'));
  });
});

describe('audiosocket play', () => {
  test('every caller hears the file, byte-exact and paced, then a hangup', async () => {
    const dir = await tempDir();
    const audio = signal(1);
    const path = join(dir, 'prompt.wav');
    await writeFile(path, encodeWav('slin', audio));
    const play = await cli(['play', path, '--port', '0']);
    const clients = await Promise.all([connect({ port: play.port }), connect({ port: play.port })]);
    const got = clients.map(() => [] as Buffer[]);
    const times = clients.map(() => [] as number[]);
    clients.forEach((c, i) =>
      c.on('audio', (f: AudioFrame) => {
        got[i]!.push(Buffer.from(f.payload));
        times[i]!.push(performance.now());
      }),
    );
    const closes = await Promise.all(clients.map((c) => c.closed));
    assert.deepEqual(
      closes.map((c) => c.by),
      ['server-hangup', 'server-hangup'],
    );
    for (let i = 0; i < 2; i++) {
      const all = Buffer.concat(got[i]!);
      const at = all.indexOf(audio.subarray(0, 64));
      assert.ok(at >= 0);
      assert.deepEqual(all.subarray(at, at + audio.length), audio);
      const span = times[i]!.at(-1)! - times[i]![0]!;
      assert.ok(span > 900, `50 frames over ${span.toFixed(0)} ms: paced`);
    }
    await stop(play);
  });

  test('--barge-in-dtmf stops the file and --then echo takes over', async () => {
    const dir = await tempDir();
    const path = join(dir, 'long.wav');
    await writeFile(path, encodeWav('slin', signal(5)));
    const play = await cli(['play', path, '--port', '0', '--barge-in-dtmf', '--then', 'echo']);
    const client = await connect({ port: play.port });
    const got: Buffer[] = [];
    client.on('audio', (f) => got.push(Buffer.from(f.payload)));
    await until(() => got.filter((f) => !allZero(f)).length >= 5, 'the file to play');
    client.sendDtmf('1');
    // Echo takes over once the play has stopped: send a marker each frame until it comes back.
    const marker = Buffer.alloc(320, 0x5a);
    const timer = setInterval(() => client.sendAudio(marker), 20);
    try {
      await until(() => got.some((f) => f.equals(marker)), 'the marker echoed after barge-in');
    } finally {
      clearInterval(timer);
    }
    await client.hangup();
    await stop(play);
  });

  test('a truncated WAV is played with a one-line warning', async (t) => {
    const dir = await tempDir();
    const path = join(dir, 'cut.wav');
    await writeFile(path, encodeWav('slin', signal(1)).subarray(0, 44 + 3200)); // 0.2 s of a declared 1 s
    const child = spawn(process.execPath, [MAIN, 'play', path, '--port', '0'], { stdio: 'pipe' });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await until(() => /listening on 127\.0\.0\.1:\d+/.test(out), 'the listening line');
    assert.equal(err.split('\n').filter(Boolean).length, 1, err);
    assert.match(
      err,
      /^audiosocket play: warning: .*cut\.wav is truncated: its header declares 1\.00 s of audio but the file holds 0\.20 s; playing what is there/,
    );
    const client = await connect({ port: Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]) });
    let sound = 0;
    client.on('audio', (f) => (sound += allZero(f.payload) ? 0 : 1));
    assert.equal((await client.closed).by, 'server-hangup');
    assert.equal(sound, 10, 'the 0.2 s that is there, then the hangup');
  });

  test('a file that is not a WAV is refused before listening, with exit status 2', async () => {
    const dir = await tempDir();
    const path = join(dir, 'bad.wav');
    await writeFile(path, 'not a wav file at all');
    const r = spawn(process.execPath, [MAIN, 'play', path, '--port', '0'], { stdio: 'pipe' });
    let err = '';
    r.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = await once(r, 'exit');
    assert.equal(code, 2);
    assert.match(err, /cannot play .*bad\.wav.*RIFF/i);
  });
});

describe('audiosocket call (simulated Asterisk)', () => {
  test('streams a WAV to an echo server, records the echo, prints a JSON summary, exit 0', async () => {
    const dir = await tempDir();
    const audio = signal(1);
    const input = join(dir, 'in.wav');
    const output = join(dir, 'out.wav');
    await writeFile(input, encodeWav('slin', audio));
    const server = createServer((call) => call.on('audio', (f) => call.write(f.payload, f.format)));
    const { port } = await server.listen({ port: 0 });
    const dtmf: string[] = [];
    server.on('call', (call) => call.on('dtmf', (d) => dtmf.push(d)));
    const r = await runCall([`127.0.0.1:${port}`, '--play', input, '--record', output, '--dtmf', '4@0.3,2@0.6', '--json']);
    assert.equal(r.code, 0, r.err);
    const summary = r.out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'summary');
    assert.equal(summary.framesSent, 50);
    assert.equal(summary.audioFramesReceived, 50);
    assert.equal(summary.endedBy, 'client');
    assert.equal(summary.violations, 0);
    assert.ok(summary.interArrival.p50Ms > 15 && summary.interArrival.p50Ms < 25);
    assert.deepEqual(dtmf, ['4', '2']);
    const rec = parseWav(await readFile(output));
    const at = rec.data.indexOf(audio.subarray(0, 64));
    assert.ok(at >= 0);
    assert.deepEqual(rec.data.subarray(at, at + audio.length), audio);
    await server.close();
  });

  test('--calls N runs concurrent calls; a server that sends what Asterisk rejects gives exit 3', async (t) => {
    const server = createServer((call) => call.on('audio', (f) => call.write(f.payload, f.format)));
    t.after(() => server.close());
    const { port } = await server.listen({ port: 0 });
    const ok = await runCall(['--host', '127.0.0.1', '--port', String(port), '--calls', '20', '--duration', '1', '--quiet']);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /20 call\(s\) in [\d.]+ s: 20 connected, 0 failed, 0 refused, 0 violation/);
    assert.equal(server.stats.totalCalls, 20);
    await server.close();

    // A broken server: answers the UUID with a DTMF message, which kills a real Asterisk call.
    const bad = net.createServer((s) => {
      s.once('data', () => s.write(encodeMessage(0x03, Buffer.from('1'))));
      s.on('error', () => {});
    });
    await new Promise<void>((res) => bad.listen(0, '127.0.0.1', () => res()));
    t.after(() => bad.close());
    const badPort = (bad.address() as net.AddressInfo).port;
    const r = await runCall([`127.0.0.1:${badPort}`, '--duration', '0.5']);
    assert.equal(r.code, 3, r.out + r.err);
    assert.match(r.out, /FORBIDDEN_KIND/);
    bad.close();

    const refused = await runCall(['127.0.0.1:1', '--duration', '0.2']);
    assert.equal(refused.code, 1);
  });
});
