/**
 * The pacer: the one rule that decides when an outbound message may leave. Every message of a
 * call (played, written, keep-alive silence) takes its place on one timeline and passes one
 * limiter. `docs/pacing.md` explains the model; in short:
 *
 * - **Timeline.** `end` is the instant at which the audio sent so far ends, were it played from
 *   its first frame at real time. A message of duration `d` sent now starts at `start` and moves
 *   `end` to `start + d`.
 * - **Lead** (`leadFrames`): audio is never more than `leadFrames` frames ahead of the wall
 *   clock: `start + d <= now + lead`. Asterisk forwards what we send at once (it neither
 *   buffers nor paces), so this is what the phone's jitter buffer must absorb.
 * - **Lateness and catch-up** (`maxLatenessMs`, `catchUpRate`): when the timeline is behind the
 *   clock, the call owes audio (an event-loop stall of ours, or input that came in late for an
 *   echo). That debt, up to `maxLatenessMs`, is made up at no more than `catchUpRate` x real
 *   time: a second limiter (a GCRA of rate `catchUpRate` and the same burst as the lead) holds
 *   every window of output to `catchUpRate * window + lead`. Older lateness is forgiven:
 *   later audio is simply later; nothing is dropped.
 * - **Quiet time is not credit** (`graceFrames`): once the timeline has run dry for
 *   `graceFrames` frames of quiet time with nothing to send, the call is idle: the debt is
 *   forgotten, the next message starts on the wall clock, and keep-alive silence may fill the
 *   slots. Quiet time is time in which the call's input kept arriving and the event loop was
 *   awake to read it (the caller supplies that instant: `observedUntil` of {@link rest}).
 *   Time without input is not quiet, for up to `inputWaitMs`: an echo's writer that waits
 *   for late input owes that time, and makes it up as above when the input comes in a burst.
 *   The wait is short because a server that sends nothing can stall Asterisk's channel driver,
 *   which then stops reading the caller (see `docs/protocol.md`, keep-alive).
 * - **Input held up is lateness owed** (no parameter): the call's input comes from Asterisk in
 *   real time, so input read in a burst (messages read together, within a quarter frame: our
 *   loop stalled, or the network held them) was held up: the burst's first message by the rest
 *   of the burst. A talk spurt that begins within such a burst (an echo answering it) moves
 *   back on the timeline towards where the burst's first message was due, into the slots left
 *   empty before it (never over audio or silence already sent, and not at all at the very
 *   start of the call's stream, where at most the one silence frame it starts over went
 *   before it): it owes that lateness and makes it up as above, instead of
 *   playing the burst at real time behind a delay that would last the whole call. Audio
 *   already under way is not moved (a prompt is not an answer to input that happens to come
 *   in a burst).
 * - **Silence yields.** Keep-alive silence only fills slots nobody else wants, one per slot on
 *   the grid: audio that starts while a silence frame is still playing starts on the wall
 *   clock, over that frame's tail, so an echo that starts mid-slot does not carry that offset
 *   as delay for the rest of the call. Silence passes the catch-up limiter like everything
 *   else, charged at its slot (a silence frame a late pass sent does not hold back the audio
 *   that follows), so the window bound holds for all audio measured on the grid; the lead bound
 *   holds for the call's own audio, and for all audio with at most that one frame's tail more.
 *
 * Pure arithmetic on times in ms: no clock, no timers, no I/O.
 */

/** The pacing model's parameters. Each has one meaning; see the module comment. */
export interface PacingParameters {
  /** Frame duration, ms: the grid of the shared timer and of keep-alive silence. */
  readonly frameMs: number;
  /** Most audio, in frames, sent ahead of the wall clock (the frame due now included). */
  readonly leadFrames: number;
  /** Fastest output, as a multiple of real time, while making up lateness. */
  readonly catchUpRate: number;
  /** Most lateness, ms, that is made up; beyond it the timeline moves on. */
  readonly maxLatenessMs: number;
  /** Frames the timeline may run dry before the call counts as idle (quiet time, not lateness). */
  readonly graceFrames: number;
  /**
   * Most time, ms, that late input excuses the writer's silence (an echo waiting for its
   * input); after it, that time counts as quiet. Used by the caller of {@link Pacer.rest}.
   */
  readonly inputWaitMs: number;
}

/** Defaults of the model's parameters, frame duration aside. */
export const DEFAULT_PACING = {
  leadFrames: 3,
  catchUpRate: 1.25,
  maxLatenessMs: 1000,
  graceFrames: 2,
  inputWaitMs: 200,
} as const satisfies Omit<PacingParameters, 'frameMs'>;

/** Tolerance for floating-point comparisons of times, ms. */
const EPS = 1e-6;

export class Pacer {
  // Read per frame, together first (see PacedOutbound): the state, then the parameters.
  #idle = true;
  /** The last message was keep-alive silence: audio may start over its tail. */
  #silenceTail = false;
  #end = -Infinity;
  /** The catch-up limiter: the instant at which everything sent so far is paid for at `catchUpRate`. */
  #paidAt = -Infinity;
  /** When the last message of the call's own audio left. */
  #sentAt = -Infinity;
  readonly frameMs: number;
  /** `leadFrames * frameMs`. */
  readonly leadMs: number;
  readonly catchUpRate: number;
  readonly maxLatenessMs: number;
  /** `graceFrames * frameMs`. */
  readonly graceMs: number;
  /** When the last input message was read, when the burst it belongs to began, and its input, ms. */
  #inputAt = -Infinity;
  #burstAt = -Infinity;
  #burstMs = 0;
  /** When the current talk spurt (audio after idle) began, and where on the timeline. */
  #spurtAt = -Infinity;
  #spurtStart = -Infinity;
  /** How far back the spurt may move: the end of what was sent before it (slots left empty may be taken, no others). */
  #spurtFloor = -Infinity;
  /** Where the timeline ended before the last message, if that was silence (its own start if it was the first message). */
  #endBeforeSilence = -Infinity;
  #forgottenMs = 0;
  readonly inputWaitMs: number;

  constructor(params: PacingParameters) {
    this.frameMs = params.frameMs;
    this.leadMs = params.leadFrames * params.frameMs;
    this.catchUpRate = params.catchUpRate;
    this.maxLatenessMs = params.maxLatenessMs;
    this.graceMs = params.graceFrames * params.frameMs;
    this.inputWaitMs = params.inputWaitMs;
  }

  /** Where the audio sent so far ends on the timeline (-Infinity before the first message). */
  get end(): number {
    return this.#end;
  }

  /** True while the call has nothing to send and owes nothing (quiet time). */
  get idle(): boolean {
    return this.#idle;
  }

  /** Lateness, ms, beyond `maxLatenessMs` that was forgiven instead of made up. */
  get forgottenMs(): number {
    return this.#forgottenMs;
  }

  /**
   * Where a message sent at `now` starts on the timeline. An idle call starts at `anchor` (the
   * wall clock, or the grid slot a tick stands for); a busy one where its audio ends, or at
   * most `maxLatenessMs` back.
   */
  startAt(now: number, anchor: number = now): number {
    if (!this.#idle) return Math.max(this.#end, now - this.maxLatenessMs);
    return this.#silenceTail ? Math.max(this.#end - this.frameMs, anchor) : Math.max(this.#end, anchor);
  }

  /**
   * Records input of `durationMs` read at `now` (before the writer answers it). Input read
   * within a quarter frame of the previous input belongs to the same burst: all but its last
   * message were held up, the first by the rest of the burst. A talk spurt that began in that
   * burst moves back to where the burst's first message was due (see the module comment).
   * Returns whether it did (the timeline's end moved back).
   */
  noteInput(durationMs: number, now: number): boolean {
    if (now - this.#inputAt < this.frameMs / 4) this.#burstMs += durationMs;
    else {
      this.#burstAt = now;
      this.#burstMs = durationMs;
    }
    this.#inputAt = now;
    if (this.#idle || this.#spurtAt < this.#burstAt - EPS) return false;
    const due = Math.max(this.#spurtFloor, this.#burstAt - Math.min(this.#burstMs - durationMs, this.maxLatenessMs));
    if (due >= this.#spurtStart - EPS) return false;
    this.#end -= this.#spurtStart - due;
    this.#spurtStart = due;
    return true;
  }

  /**
   * Whether a message of `durationMs` may leave at `now` (`silence`: keep-alive, see the module
   * comment). The lead is measured from `horizon`: the wall clock, or for a timer pass the slot it
   * stands for, so that a pass that runs late sends what an on-time pass would, not one frame more.
   */
  admits(durationMs: number, now: number, anchor: number = now, silence = false, horizon: number = now): boolean {
    const start = silence ? Math.max(this.#end, anchor) : this.startAt(now, anchor);
    if (start + durationMs > horizon + this.leadMs + EPS) return false;
    const rate = this.catchUpRate;
    const at = silence ? Math.min(now, anchor) : now;
    return Math.max(this.#paidAt, at) + durationMs / rate <= at + this.leadMs / rate + EPS;
  }

  /**
   * Records a message of `durationMs` sent at `now` and returns its lateness: how long after its
   * place on the timeline it left (0 or less: on time). Keep-alive silence (`silence`) leaves an
   * idle call idle.
   */
  commit(durationMs: number, now: number, anchor: number = now, silence = false): number {
    const start = silence ? Math.max(this.#end, anchor) : this.startAt(now, anchor);
    if (!this.#idle && start > this.#end + EPS) this.#forgottenMs += start - this.#end;
    if (!silence && this.#idle) {
      this.#spurtAt = now;
      this.#spurtStart = start;
      // Nothing sent before: the spurt starts the stream and stays where it is.
      this.#spurtFloor = this.#end === -Infinity ? start : Math.min(start, this.#silenceTail ? this.#endBeforeSilence : this.#end);
    }
    if (silence) this.#endBeforeSilence = this.#end === -Infinity ? start : this.#end;
    this.#end = Math.max(this.#end, start + durationMs);
    this.#silenceTail = silence;
    // Silence is charged at its slot, as it takes its slot on the timeline: a late pass's
    // silence does not hold back the audio that starts over its tail (docs/pacing.md).
    this.#paidAt = Math.max(this.#paidAt, silence ? Math.min(now, anchor) : now) + durationMs / this.catchUpRate;
    if (!silence) {
      this.#idle = false;
      this.#sentAt = now;
    }
    return now - start;
  }

  /**
   * Reports that nothing was ready to send, with quiet time (see the module comment) known up
   * to `observedUntil`. The timeline runs dry at the later of where its audio ends and when its
   * last message left (a writer whose frames come late, one at a time, keeps a debt it never
   * needs to pay; its silence still counts from its last message). Once it has been dry for
   * `graceMs` of quiet time, the call is idle. Returns whether it is.
   */
  rest(observedUntil: number): boolean {
    // Decided by restsFrom itself: a pass the scheduler skips before that instant could not turn the call idle.
    if (!this.#idle && observedUntil >= this.restsFrom) this.#idle = true;
    return this.#idle;
  }

  /**
   * The earliest quiet time (`observedUntil` of {@link rest}) at which the call can turn idle:
   * `graceMs` after the timeline ran dry. Before it, `rest` returns false whatever else happens,
   * unless more is sent (which moves it later) or {@link noteInput} moves the timeline back.
   */
  get restsFrom(): number {
    return Math.max(this.#end, this.#sentAt) + this.graceMs - EPS;
  }

  /** Whether the slot at `time` is empty: the audio sent so far has ended by then. */
  dueBy(time: number): boolean {
    return this.#end <= time + EPS;
  }
}
