/**
 * The write stream of a call ({@link Call.createWriteStream}): one play fed chunk by chunk, the
 * same for every channel driver.
 */
import { Writable } from 'node:stream';
import { AsyncQueue } from './async-queue.js';
import { parseFormat } from './audio/format.js';
import type { Call, PlayOptions } from './call.js';
import type { PlayResult } from './outbound/queue.js';

export function createPlayStream(call: Call, options: PlayOptions & { highWaterMarkMs?: number } = {}): Writable & { interrupted?: PlayResult } {
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
