/**
 * What the calls of every channel driver share on top of their events: the write stream
 * ({@link Call.createWriteStream}, one play fed chunk by chunk), the async iterator over
 * received frames ({@link Call.frames}) and the play source of a WAV file.
 */
import { Writable } from 'node:stream';
import { AsyncQueue } from '../async-queue.js';
import { AudioSocketError, audioSocketError, ErrorCodes } from '../errors.js';
import { createConverter } from '../audio/convert.js';
import { parseFormat, sameFormat, type AudioFormat } from '../audio/format.js';
import { readWavFile } from '../audio/wav.js';
import type { AudioFrame, CallBase, WriteStreamOptions } from './types.js';
import type { PlayResult } from '../outbound/queue.js';

export function createPlayStream(call: CallBase, options: WriteStreamOptions = {}): Writable & { interrupted?: PlayResult } {
  const format = options.format === undefined ? (call.sendFormat ?? call.outboundFormat) : parseFormat(options.format);
  const bytesPerMs = (format.sampleRate * format.channels * (format.encoding === 'slin' ? 2 : 1)) / 1000;
  const hwm = Math.max(2, Math.round((options.highWaterMarkMs ?? 400) * bytesPerMs));
  // Each chunk waits in the queue with its write callback, called when play() takes it:
  // taking a chunk frees room, so the Writable sends the next one.
  const queue = new AsyncQueue<{ chunk: Buffer; callback: () => void }>({ onTake: (e) => e.callback() });
  let discard = false;
  const source: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const r = await queue.next();
        if (r.done) return;
        yield r.value.chunk;
      }
    },
  };
  let played: Promise<PlayResult> | undefined;
  const stream: Writable & { interrupted?: PlayResult } = new Writable({
    highWaterMark: hwm,
    write(chunk: Buffer, _encoding, callback) {
      if (discard) callback();
      else queue.push({ chunk, callback: () => callback() });
    },
    final(callback) {
      queue.end();
      played!.then(
        () => callback(),
        (err: Error) => callback(err),
      );
    },
    destroy(err, callback) {
      queue.end();
      callback(err);
    },
  });
  played = call.play(source, { ...options, format });
  played.then(
    (r) => {
      if (r.status !== 'interrupted') return;
      discard = true;
      stream.interrupted = r;
      while (queue.size > 0) void queue.next(); // release every waiting write
      stream.emit('interrupted', r);
    },
    (err: Error) => stream.destroy(err),
  );
  return stream;
}

/**
 * Received audio of `call` as an async iterable, buffered from the first `next()` on: beyond
 * `limit` frames the oldest are dropped and `onDrop` is told (the call counts and warns).
 * `ended`: the call is already ending, so the iteration ends at once.
 */
export function receivedFrames<F extends AudioFrame>(
  call: CallBase<F>,
  opts: { limit: number; ended: boolean; onDrop: () => void; signal?: AbortSignal | undefined },
): AsyncIterable<F> {
  return {
    [Symbol.asyncIterator]: (): AsyncIterator<F> => {
      const queue = new AsyncQueue<F>({ limit: opts.limit, onDrop: opts.onDrop });
      const onAudio = (frame: F): void => queue.push(frame);
      const finish = (): void => queue.end();
      const detach = (): void => {
        call.off('audio', onAudio);
        call.signal.removeEventListener('abort', finish);
        opts.signal?.removeEventListener('abort', finish);
      };
      // An iterable made before the end but iterated after it ends at once (an aborted signal fires no more).
      if (opts.ended || opts.signal?.aborted || call.signal.aborted) queue.end();
      else {
        call.on('audio', onAudio);
        call.signal.addEventListener('abort', finish, { once: true });
        opts.signal?.addEventListener('abort', finish, { once: true });
      }
      return {
        next: async () => {
          const r = await queue.next();
          if (r.done) detach();
          return r;
        },
        return: async () => {
          detach();
          queue.clear(); // a next() waiting right now ends too
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/** Rejects with `err` as an {@link AudioSocketError}: a failing play source keeps its own error as `cause`. */
export function rejectAsSourceError(err: unknown): never {
  if (err instanceof AudioSocketError) throw err;
  throw audioSocketError(ErrorCodes.SOURCE, `play source failed: ${err instanceof Error ? err.message : String(err)}`, err);
}

/** A file system error reading `path`, as an {@link AudioSocketError} naming the path, with the original as `cause`. */
export function fileError(path: string, err: unknown): AudioSocketError {
  const code = (err as NodeJS.ErrnoException).code;
  const missing = code === 'ENOENT' || code === 'ENOTDIR';
  return audioSocketError(
    missing ? ErrorCodes.FILE_NOT_FOUND : ErrorCodes.FILE_READ,
    `cannot read WAV file ${path}: ${err instanceof Error ? err.message : String(err)}`,
    err,
  );
}

/** A WAV file as a play source in `target`'s format: read, then converted in one-second slices so a long file starts at once and memory stays flat. */
export async function* wavPlaySource(path: string, target: AudioFormat): AsyncGenerator<Buffer> {
  const wav = await readWavFile(path).catch((err: unknown) => {
    throw err instanceof AudioSocketError ? err : fileError(path, err);
  });
  if (sameFormat(wav.format, target)) {
    yield wav.data;
    return;
  }
  const convert = createConverter(wav.format, target);
  const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  try {
    const step = Math.max(2, Math.round(wav.format.sampleRate * wav.format.channels * (wav.format.encoding === 'slin' ? 2 : 1)));
    for (let off = 0; off < wav.data.length; off += step) {
      const out = convert.push(wav.data.subarray(off, off + step));
      if (out.length > 0) yield view(out);
    }
    const tail = convert.flush();
    if (tail.length > 0) yield view(tail);
  } finally {
    convert.dispose();
  }
}
