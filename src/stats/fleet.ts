// the fleet's series: each replica adds what its sampler counted in a 5 s slot to one Redis hash per
// slot (the guard's shared counters: HINCRBY + PEXPIRE in one pipeline, at the sampler's cadence,
// never per request), and /admin/stats reads the window's hashes back and sums nothing itself:
// Redis already holds the fleet's sum. A hash field per replica (its id, 1) says who contributed
import type { FleetCounters, CounterWrite } from '../state/index.js'
import { SLOT_MS, type Delta } from './ring.js'

/**
 * the hashes live under the guard's prefix (PREFIXguard:{~stats}:SLOT); `{` and `~` cannot be in a
 * rollout name, so no guard key collides, and the hash tag keeps a window's slots on one Redis
 * Cluster shard, so that one pipeline reads them
 */
export const slotKey = (slot: number): string => `{~stats}:${slot}`
/** slots a replica keeps to push once Redis is back (5 minutes), so an outage does not undercount the fleet */
export const MAX_PENDING_SLOTS = 60
/** the fleet read is skipped past this: the page answers with the local series instead of waiting */
export const FLEET_READ_TIMEOUT_MS = 1000
/** replicas count as contributing when they wrote in one of the last this many slots */
const RECENT_SLOTS = 3

const BACKEND_FIELD = { legacy: 'l', new: 'n' } as const

/** a slot's delta as hash increments (zeros left out), plus this replica's marker */
export function toFields (d: Delta, replica: string): Record<string, number> {
  const out: Record<string, number> = { [`p:${replica}`]: 1 }
  const put = (f: string, v: number) => { if (v !== 0) out[f] = (out[f] ?? 0) + v }
  for (const [b, k] of Object.entries(BACKEND_FIELD) as [keyof typeof BACKEND_FIELD, string][]) {
    const s = d.backends[b]
    put(`${k}:r`, s.requests)
    put(`${k}:e`, s.errors)
    s.buckets.forEach((v, i) => put(`${k}:h${i}`, v))
  }
  put('s:m', d.shadow.match)
  put('s:x', d.shadow.mismatch)
  put('s:e', d.shadow.error)
  for (const [name, r] of Object.entries(d.rollouts)) {
    put(`r:${name}:d`, r.decided)
    put(`r:${name}:n`, r.onNew)
    put(`r:${name}:t`, r.ratioTotal)
    put(`r:${name}:w`, r.ratioNew)
    // the shares the check's requests were held to, and their variances, summed: HINCRBY adds
    // integers, and a share is a threshold out of 10,000, so these are whole in those units
    put(`r:${name}:e`, Math.round(r.ratioExpected * SHARE_UNITS))
    put(`r:${name}:v`, Math.round(r.ratioVariance * SHARE_UNITS * SHARE_UNITS))
  }
  return out
}

/** a share's unit in the fleet's hash: thresholds are out of 10,000 (routing/bucket.ts) */
const SHARE_UNITS = 10_000

/** a slot hash back to a delta and the replicas that wrote it; null for an empty (absent) hash */
export function fromFields (h: Readonly<Record<string, string>>, width: number): { delta: Delta, replicas: string[] } | null {
  const entries = Object.entries(h)
  if (entries.length === 0) return null
  const side = () => ({ requests: 0, errors: 0, buckets: new Array<number>(width).fill(0) })
  const delta: Delta = { backends: { legacy: side(), new: side() }, shadow: { match: 0, mismatch: 0, error: 0 }, rollouts: {} }
  const replicas: string[] = []
  for (const [f, raw] of entries) {
    const v = Number(raw)
    if (!Number.isFinite(v)) continue
    const colon = f.indexOf(':')
    const head = f.slice(0, colon)
    const rest = f.slice(colon + 1)
    if (head === 'p') replicas.push(rest)
    else if (head === 'l' || head === 'n') {
      const s = delta.backends[head === 'l' ? 'legacy' : 'new']
      if (rest === 'r') s.requests = v
      else if (rest === 'e') s.errors = v
      else if (rest.startsWith('h')) {
        const k = Number(rest.slice(1))
        if (Number.isInteger(k) && k >= 0 && k < width) (s.buckets as number[])[k] = v
      }
    } else if (head === 's') {
      if (rest === 'm') delta.shadow.match = v
      else if (rest === 'x') delta.shadow.mismatch = v
      else if (rest === 'e') delta.shadow.error = v
    } else if (head === 'r') {
      const end = rest.lastIndexOf(':')
      const name = rest.slice(0, end)
      const r = (delta.rollouts[name] ??= { decided: 0, onNew: 0, ratioTotal: 0, ratioNew: 0, ratioExpected: 0, ratioVariance: 0 })
      const k = rest.slice(end + 1)
      if (k === 'd') r.decided = v
      else if (k === 'n') r.onNew = v
      else if (k === 't') r.ratioTotal = v
      else if (k === 'w') r.ratioNew = v
      else if (k === 'e') r.ratioExpected = v / SHARE_UNITS
      else if (k === 'v') r.ratioVariance = v / (SHARE_UNITS * SHARE_UNITS)
    }
  }
  return { delta, replicas }
}

/** where the fleet's counters live: the Redis store (undefined with the file store: no fleet) */
export interface FleetSource {
  readonly counters: FleetCounters
  up (): boolean
}

export interface FleetRead {
  /** slot -> its summed delta (null: nobody wrote it) */
  readonly slots: Map<number, Delta | null>
  readonly replicas: number
}

export class FleetStats {
  readonly #src: FleetSource
  readonly #replica: string
  readonly #width: number
  readonly #ttlMs: number
  // slots not yet pushed (Redis down): slot -> fields, oldest dropped past MAX_PENDING_SLOTS
  readonly #pending = new Map<number, Record<string, number>>()
  #pushing = false

  constructor (src: FleetSource, replica: string, width: number, capacity: number) {
    this.#src = src
    this.#replica = replica
    this.#width = width
    // a slot is read for as long as the longest window holds it
    this.#ttlMs = capacity * SLOT_MS + 60_000
  }

  /** queue a slot's delta and push everything queued; false when the store did not take it */
  async push (now: number, delta: Delta): Promise<boolean> {
    this.#queue(Math.floor(now / SLOT_MS), toFields(delta, this.#replica))
    if (this.#pushing || !this.#src.up()) return false
    this.#pushing = true
    // what is in flight leaves the queue, and comes back to it if the store does not take it
    const sent = [...this.#pending]
    this.#pending.clear()
    try {
      const writes: CounterWrite[] = sent.map(([s, incr]) => ({ key: slotKey(s), incr, ttlMs: this.#ttlMs }))
      if (await this.#src.counters.addAndRead(writes, []) !== null) return true
      for (const [s, f] of sent) this.#queue(s, f)
      return false
    } finally {
      this.#pushing = false
    }
  }

  #queue (slot: number, fields: Record<string, number>): void {
    const q = this.#pending.get(slot)
    if (q === undefined) this.#pending.set(slot, fields)
    else for (const [f, v] of Object.entries(fields)) q[f] = f.startsWith('p:') ? 1 : (q[f] ?? 0) + v
    while (this.#pending.size > MAX_PENDING_SLOTS) this.#pending.delete(Math.min(...this.#pending.keys()))
  }

  /** the hashes of `slots` (oldest first); a string saying why when the store cannot answer */
  async read (slots: readonly number[]): Promise<FleetRead | string> {
    if (!this.#src.up()) return 'redis store down'
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), FLEET_READ_TIMEOUT_MS) })
    try {
      const res = await Promise.race([this.#src.counters.addAndRead([], slots.map(slotKey)), late])
      if (res === 'late') return `redis did not answer within ${FLEET_READ_TIMEOUT_MS} ms`
      if (res === null) return 'redis did not answer'
      const out = new Map<number, Delta | null>()
      const who = new Set<string>()
      slots.forEach((s, i) => {
        const got = fromFields(res[slotKey(s)] ?? {}, this.#width)
        out.set(s, got?.delta ?? null)
        if (got !== null && i >= slots.length - RECENT_SLOTS) for (const r of got.replicas) who.add(r)
      })
      return { slots: out, replicas: who.size }
    } finally {
      clearTimeout(timer)
    }
  }
}
