// what the guard counts per backend: requests, errors (5xx and upstream failures; 4xx are the
// client's) and a latency histogram whose buckets grow by 10%, so that p99 is known to within 10%
// and counts from many replicas add up bucket by bucket
import type { BackendName } from '../config/index.js'

const GROWTH = 1.1
const LOG_GROWTH = Math.log(GROWTH)
/** 1 ms to about 60 s */
export const BUCKETS = 116

/** bucket b holds latencies in (1.1^(b-1), 1.1^b] ms; bucket 0 everything up to 1 ms */
export function bucketOf (ms: number): number {
  if (!(ms > 1)) return 0
  const b = Math.ceil(Math.log(ms) / LOG_GROWTH)
  return b >= BUCKETS ? BUCKETS - 1 : b
}

export const bucketUpperMs = (b: number): number => Math.pow(GROWTH, b)
export const bucketLowerMs = (b: number): number => b === 0 ? 0 : Math.pow(GROWTH, b - 1)

export class Side {
  requests = 0
  errors = 0
  readonly hist = new Float64Array(BUCKETS)

  record (ms: number, error: boolean): void {
    this.recordBucket(bucketOf(ms), error)
  }

  recordBucket (b: number, error: boolean): void {
    this.requests++
    if (error) this.errors++
    this.hist[b] = (this.hist[b] as number) + 1
  }

  add (o: Side): void {
    this.requests += o.requests
    this.errors += o.errors
    for (let b = 0; b < BUCKETS; b++) this.hist[b] = (this.hist[b] as number) + (o.hist[b] as number)
  }

  copy (): Side {
    const s = new Side()
    s.add(this)
    return s
  }
}

/** the upper edge of the bucket holding the q-quantile; 0 for an empty side */
export function quantileMs (s: Side, q: number): number {
  if (s.requests <= 0) return 0
  const want = Math.ceil(s.requests * q)
  let seen = 0
  for (let b = 0; b < BUCKETS; b++) {
    seen += s.hist[b] as number
    if (seen >= want) return bucketUpperMs(b)
  }
  return bucketUpperMs(BUCKETS - 1)
}

/** requests in buckets wholly above `ms` (slower than it for certain, whatever the bucket width) */
export function slowerThan (s: Side, ms: number): number {
  let n = 0
  for (let b = BUCKETS - 1; b >= 0 && bucketLowerMs(b) >= ms; b--) n += s.hist[b] as number
  return n
}

/** both sides of one sample */
export class Counts {
  readonly legacy = new Side()
  readonly new = new Side()

  side (b: BackendName): Side { return b === 'legacy' ? this.legacy : this.new }

  copy (): Counts {
    const c = new Counts()
    c.legacy.add(this.legacy)
    c.new.add(this.new)
    return c
  }

  /** the fields of a Redis hash: what grew since `base` (undefined when nothing did) */
  deltaFields (base: Counts | undefined): Record<string, number> | undefined {
    const out: Record<string, number> = {}
    let any = false
    for (const [k, s] of [['l', this.legacy], ['n', this.new]] as const) {
      const b = base?.side(k === 'l' ? 'legacy' : 'new')
      const put = (f: string, v: number) => { if (v !== 0) { out[`${k}.${f}`] = v; any = true } }
      put('r', s.requests - (b?.requests ?? 0))
      put('e', s.errors - (b?.errors ?? 0))
      for (let i = 0; i < BUCKETS; i++) put(String(i), (s.hist[i] as number) - (b === undefined ? 0 : b.hist[i] as number))
    }
    return any ? out : undefined
  }

  /** read a Redis hash written by deltaFields (unknown fields are ignored) */
  static fromFields (h: Readonly<Record<string, string | number>>): Counts {
    const c = new Counts()
    for (const [f, raw] of Object.entries(h)) {
      const v = Number(raw)
      if (!Number.isFinite(v)) continue
      const s = f.startsWith('l.') ? c.legacy : f.startsWith('n.') ? c.new : undefined
      if (s === undefined) continue
      const k = f.slice(2)
      if (k === 'r') s.requests = v
      else if (k === 'e') s.errors = v
      else {
        const b = Number(k)
        if (Number.isInteger(b) && b >= 0 && b < BUCKETS) s.hist[b] = v
      }
    }
    return c
  }
}
