/**
 * A FIFO consumed with `for await`, optionally bounded: the one queue behind a call's frame
 * iterator, the server's call iterator and a write stream's play source. One consumer.
 */
export interface AsyncQueueOptions<T> {
  /** Most items held; pushing beyond it drops the oldest (reported to `onDrop`). Default unbounded. */
  limit?: number;
  /** An item was dropped because the queue was full. */
  onDrop?: (item: T) => void;
  /** The consumer took an item (room to push another, for a producer that waits). */
  onTake?: (item: T) => void;
}

export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #limit: number;
  readonly #onDrop: ((item: T) => void) | undefined;
  readonly #onTake: ((item: T) => void) | undefined;
  #items: Array<T | undefined> = [];
  #head = 0;
  #ended = false;
  #wake: (() => void) | null = null;

  constructor(options: AsyncQueueOptions<T> = {}) {
    this.#limit = options.limit ?? Infinity;
    this.#onDrop = options.onDrop;
    this.#onTake = options.onTake;
  }

  /** Items waiting. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** True once {@link end} was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds an item (ignored after {@link end}). */
  push(item: T): void {
    if (this.#ended) return;
    if (this.size >= this.#limit) {
      const dropped = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined; // let the dropped item go now
      this.#onDrop?.(dropped);
    }
    this.#items.push(item);
    this.#compact();
    this.#wake?.();
  }

  /** No more items: the consumer gets what is queued, then the iteration ends. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  /** Drops everything queued, without telling `onDrop`, and ends. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.end();
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head]!;
        this.#items[this.#head++] = undefined;
        this.#compact();
        this.#onTake?.(item);
        return { value: item, done: false };
      }
      if (this.#ended) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        this.clear();
        return { value: undefined, done: true };
      },
    };
  }
}
