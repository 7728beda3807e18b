// wait on a condition, never on a clock: poll until it holds or the deadline passes, then fail
// with what was awaited (and the last value seen) so a red test says what did not happen
import { setTimeout as delay } from 'node:timers/promises'

export interface WaitOptions {
  /** what the test waits for, in words: it is the failure's message */
  readonly what: string
  /** generous by default: the suite must pass with another process holding one of two cores */
  readonly timeoutMs?: number
  readonly intervalMs?: number
}

export const DEFAULT_WAIT_TIMEOUT_MS = 15_000

/**
 * resolves with the condition's first truthy value; rejects after timeoutMs naming `what`.
 * an error thrown by the condition counts as "not yet" and is reported if the deadline passes.
 */
export async function waitFor<T> (condition: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS
  const intervalMs = opts.intervalMs ?? 20
  const deadline = performance.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await condition()
      if (value) return value as NonNullable<T>
      last = value
    } catch (err) {
      last = err
    }
    if (performance.now() >= deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what} (last seen: ${seen})`)
    }
    await delay(intervalMs)
  }
}
