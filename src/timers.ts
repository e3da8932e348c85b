/** setTimeout for a duration that may be Infinity, meaning never (setTimeout would make it 1 ms). */
export function timerFor(ms: number, fn: () => void): NodeJS.Timeout | undefined {
  return ms === Infinity ? undefined : setTimeout(fn, ms);
}
