// a sliding window of one rollout's own traffic per backend: requests, errors (5xx and upstream
// failures; 4xx are the client's) and a latency histogram for p99, in fixed slots so recording is
// an index and two increments, and old slots expire by time
import type { BackendName } from '../config/index.js'

// latency buckets grow by 10% from 1 ms to about 60 s: p99 is known to within 10%
const GROWTH = 1.1
const BUCKETS = 116
const LOG_GROWTH = Math.log(GROWTH)
export const SLOTS = 20

export interface WindowStats { readonly requests: number, readonly errors: number, readonly errorRate: number, readonly p99Ms: number }

function bucketOf (ms: number): number {
  if (ms <= 1) return 0
  const b = Math.ceil(Math.log(ms) / LOG_GROWTH)
  return b >= BUCKETS ? BUCKETS - 1 : b
}

class Side {
  readonly requests = new Uint32Array(SLOTS)
  readonly errors = new Uint32Array(SLOTS)
  readonly hist = new Uint32Array(SLOTS * BUCKETS)
  clear (slot: number): void {
    this.requests[slot] = 0
    this.errors[slot] = 0
    this.hist.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS)
  }
}

export class SlidingWindow {
  readonly windowMs: number
  readonly #slotMs: number
  readonly #epoch = new Float64Array(SLOTS)
  readonly #sides: Record<BackendName, Side> = { legacy: new Side(), new: new Side() }

  constructor (windowMs: number) {
    this.windowMs = windowMs
    this.#slotMs = Math.max(1, Math.ceil(windowMs / SLOTS))
    this.#epoch.fill(-1)
  }

  record (backend: BackendName, ms: number, error: boolean, now = Date.now()): void {
    const e = Math.floor(now / this.#slotMs)
    const slot = e % SLOTS
    if (this.#epoch[slot] !== e) {
      this.#epoch[slot] = e
      this.#sides.legacy.clear(slot)
      this.#sides.new.clear(slot)
    }
    const s = this.#sides[backend]
    s.requests[slot] = (s.requests[slot] as number) + 1
    if (error) s.errors[slot] = (s.errors[slot] as number) + 1
    const i = slot * BUCKETS + bucketOf(ms)
    s.hist[i] = (s.hist[i] as number) + 1
  }

  stats (backend: BackendName, now = Date.now()): WindowStats {
    const e = Math.floor(now / this.#slotMs)
    const s = this.#sides[backend]
    let requests = 0
    let errors = 0
    const merged = new Uint32Array(BUCKETS)
    for (let slot = 0; slot < SLOTS; slot++) {
      const age = e - (this.#epoch[slot] as number)
      if (this.#epoch[slot] === -1 || age < 0 || age >= SLOTS) continue
      requests += s.requests[slot] as number
      errors += s.errors[slot] as number
      for (let b = 0; b < BUCKETS; b++) merged[b] = (merged[b] as number) + (s.hist[slot * BUCKETS + b] as number)
    }
    let p99Ms = 0
    if (requests > 0) {
      const want = Math.ceil(requests * 0.99)
      let seen = 0
      for (let b = 0; b < BUCKETS; b++) {
        seen += merged[b] as number
        if (seen >= want) { p99Ms = Math.pow(GROWTH, b); break }
      }
    }
    return { requests, errors, errorRate: requests === 0 ? 0 : errors / requests, p99Ms }
  }

  reset (): void {
    this.#epoch.fill(-1)
  }
}
