/** Small helpers of the Asterisk suite that must not depend on the library under test. */

export function formatUuidBytes(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Bounded wait for a predicate, polled every `everyMs`. */
export async function until<T>(predicate: () => T | undefined | false, timeoutMs: number, what: string, everyMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = predicate();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class AssertionFailure extends Error {}

export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new AssertionFailure(message);
}
