/**
 * File checks the commands run before listening or dialling: a WAV to play (named when it is an
 * MP3, Ogg, FLAC or raw file, with the command that converts it; a warning when it is truncated)
 * and directories or files to write (created and removed once, so a read-only or missing place
 * is reported up front instead of failing every call).
 */
import { rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { readWavFile, type DecodedWav } from '../index.js';
import { UsageError } from './options.js';

/** A file system error in a few words. */
export function why(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return err.message;
  }
}

/**
 * Reads the WAV for option `what` (e.g. "--play"; empty for an argument); a problem is a {@link UsageError}.
 * `warn` gets one line when the file is shorter than its header says.
 */
export async function loadWav(path: string, what: string, warn: (line: string) => void): Promise<DecodedWav> {
  let wav: DecodedWav;
  try {
    wav = await readWavFile(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(
      `${what ? `${what}: ` : ''}cannot play ${path}: ${e.code && !e.code.startsWith('ERR_AUDIOSOCKET') ? why(e) : e.message}`,
    );
  }
  if (wav.data.length === 0) {
    throw new UsageError(
      `${what ? `${what}: ` : ''}cannot play ${path}: it holds no audio (its data chunk is empty); record or export it again`,
    );
  }
  if (wav.truncated) {
    const bytesPerSecond = wav.source.sampleRate * wav.source.blockAlign;
    const declared = wav.declaredDataBytes / bytesPerSecond;
    const actual = wav.data.length / (wav.format.sampleRate * wav.format.channels * (wav.format.encoding === 'slin' ? 2 : 1));
    warn(
      `${path} is truncated: its header declares ${declared.toFixed(2)} s of audio but the file holds ` +
        `${actual.toFixed(2)} s; playing what is there (was the copy or download cut short?)`,
    );
  }
  return wav;
}

/** Checks that files can be created in `dir` (which must exist), by creating and removing one. */
export async function checkWritableDir(dir: string, option: string): Promise<string> {
  const abs = resolve(dir);
  let st;
  try {
    st = await stat(abs);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new UsageError(`${option} ${dir}: no such directory; create it first (mkdir -p ${dir})`);
    throw new UsageError(`${option} ${dir}: ${why(e)}`);
  }
  if (!st.isDirectory()) throw new UsageError(`${option} ${dir}: not a directory; give the directory to write the recordings into`);
  const probe = join(abs, `.audiosocket-write-test-${process.pid}`);
  try {
    await writeFile(probe, '', { flag: 'wx' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // The directory exists, so ENOENT here means its file system takes no new files (/proc, /sys).
    const reason = e.code === 'ENOENT' ? 'its file system takes no new files' : why(e);
    throw new UsageError(`${option} ${dir}: cannot create files there (${reason}); pick a writable directory`);
  }
  await rm(probe, { force: true });
  return abs;
}

/** Checks that `path` can be written: its directory exists and is writable, and it is not a directory. */
export async function checkWritableFile(path: string, option: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory()) throw new UsageError(`${option} ${path}: is a directory; give a file name such as ${join(path, 'out.wav')}`);
  const dir = dirname(resolve(path));
  const dst = await stat(dir).catch((err: NodeJS.ErrnoException) => err);
  if (dst instanceof Error) {
    if (dst.code === 'ENOENT')
      throw new UsageError(`${option} ${path}: directory ${dir} does not exist; create it first (mkdir -p ${dir})`);
    throw new UsageError(`${option} ${path}: ${why(dst)}`);
  }
  if (!dst.isDirectory()) throw new UsageError(`${option} ${path}: ${dir} is not a directory`);
  const probe = join(dir, `.audiosocket-write-test-${process.pid}`);
  try {
    await writeFile(probe, '', { flag: 'wx' });
  } catch (err) {
    throw new UsageError(`${option} ${path}: cannot create files in ${dir} (${why(err as NodeJS.ErrnoException)}); pick a writable place`);
  }
  await rm(probe, { force: true });
}
