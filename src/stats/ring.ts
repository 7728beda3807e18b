// the console's time series: fixed-size rings of 5 s slots filled from cumulative counters.
// pure (time is a parameter): the sampler feeds it snapshots, /admin/stats reads it
import type { BackendName } from '../config/index.js'

export const SLOT_MS = 5000
/** one hour of 5 s slots: the longest window /admin/stats serves */
export const DEFAULT_CAPACITY = 720
/** the sample-ratio check looks at the last minute */
export const RATIO_WINDOW_MS = 60_000
/** rollouts tracked at most: config names, so a bound only against a runaway config */
export const MAX_ROLLOUTS = 256

/** cumulative counts since start, as prom-client holds them */
export interface BackendCounts {
  requests: number
  /** answers with a 5xx status (upstream failures map to 502/504) */
  errors: number
  /** cumulative histogram counts per upper bound of `bounds`, then +Inf */
  buckets: readonly number[]
}

export interface Snapshot {
  backends: Record<BackendName, BackendCounts>
  shadow: { match: number, mismatch: number, error: number }
  /**
   * per rollout: decisions, and the sample-ratio check's requests (percent, percent segments,
   * unkeyed) with the shares they were held to, summed (`ratioExpected`), and those shares'
   * binomial variances, summed (`ratioVariance`)
   */
  rollouts: Record<string, { decided: number, onNew: number, ratioTotal: number, ratioNew: number, ratioExpected: number, ratioVariance: number, targetPercent: number }>
}

/** what grew between two snapshots: counts of one slot, the unit replicas add up in the fleet */
export interface Delta {
  backends: Record<BackendName, BackendCounts>
  shadow: Snapshot['shadow']
  rollouts: Record<string, { decided: number, onNew: number, ratioTotal: number, ratioNew: number, ratioExpected: number, ratioVariance: number }>
}

export interface SampleRatio {
  /** requests decided by percent, a percent segment or unkeyed over the last minute */
  n: number
  observed: number | null
  /** the mean of the shares those requests were held to (the target share while there are none) */
  expected: number
  /** chi-square goodness of fit, 1 degree of freedom; null without requests */
  pValue: number | null
  /** false when the split is off target beyond chance (p < 0.001, the usual SRM alarm) */
  ok: boolean | null
}

export interface StatsView {
  window: string
  stepMs: number
  /** fleet: the sum of every replica's counts through the Redis store; local: this replica's own */
  scope: 'local' | 'fleet'
  /** fleet scope: the replicas that wrote in the last three slots */
  replicas?: number
  /** local scope with a Redis store: why the fleet's counts could not be read */
  fleet?: string
  /** the end of each slot, ms since epoch */
  t: number[]
  backends: Record<BackendName, { rps: (number | null)[], errorRate: (number | null)[], p99Ms: (number | null)[] }>
  shadow: { match: (number | null)[], mismatch: (number | null)[], error: (number | null)[] }
  rollouts: Record<string, { share: (number | null)[], target: (number | null)[], sampleRatio: SampleRatio }>
}

const BACKENDS: readonly BackendName[] = ['legacy', 'new']
const SRM_ALPHA = 0.001

interface RolloutRing { decided: Float64Array, onNew: Float64Array, ratioTotal: Float64Array, ratioNew: Float64Array, ratioExpected: Float64Array, ratioVariance: Float64Array, target: Float64Array }

export class StatsRing {
  readonly capacity: number
  readonly bounds: readonly number[]
  // which slot number each index holds now; a stale one reads as "no data"
  #slot: Float64Array
  #req: Record<BackendName, Float64Array>
  #err: Record<BackendName, Float64Array>
  #hist: Record<BackendName, Float64Array>
  #shadow: { match: Float64Array, mismatch: Float64Array, error: Float64Array }
  #rollouts = new Map<string, RolloutRing>()
  #prev: Snapshot | undefined

  /** bounds: the histogram's upper bounds in seconds (without +Inf) */
  constructor (bounds: readonly number[], capacity = DEFAULT_CAPACITY) {
    this.capacity = capacity
    this.bounds = bounds
    const f = () => new Float64Array(capacity)
    this.#slot = new Float64Array(capacity).fill(-1)
    this.#req = { legacy: f(), new: f() }
    this.#err = { legacy: f(), new: f() }
    this.#hist = { legacy: new Float64Array(capacity * (bounds.length + 1)), new: new Float64Array(capacity * (bounds.length + 1)) }
    this.#shadow = { match: f(), mismatch: f(), error: f() }
  }

  /** bytes held by the rings: constant for a given set of rollouts, whatever the time */
  footprint (): number {
    let n = this.#slot.byteLength
    for (const b of BACKENDS) n += this.#req[b].byteLength + this.#err[b].byteLength + this.#hist[b].byteLength
    n += this.#shadow.match.byteLength + this.#shadow.mismatch.byteLength + this.#shadow.error.byteLength
    for (const r of this.#rollouts.values()) n += r.decided.byteLength * 7
    return n
  }

  /** the slot that `now` falls in, cleared when it last held an older slot */
  #index (now: number): number {
    const slot = Math.floor(now / SLOT_MS)
    const i = slot % this.capacity
    if (this.#slot[i] !== slot) {
      this.#slot[i] = slot
      for (const b of BACKENDS) {
        this.#req[b][i] = 0
        this.#err[b][i] = 0
        this.#hist[b].fill(0, i * (this.bounds.length + 1), (i + 1) * (this.bounds.length + 1))
      }
      this.#shadow.match[i] = 0
      this.#shadow.mismatch[i] = 0
      this.#shadow.error[i] = 0
      for (const r of this.#rollouts.values()) {
        r.decided[i] = 0; r.onNew[i] = 0; r.ratioTotal[i] = 0; r.ratioNew[i] = 0; r.ratioExpected[i] = 0; r.ratioVariance[i] = 0; r.target[i] = NaN
      }
    }
    return i
  }

  #rollout (name: string): RolloutRing | undefined {
    let r = this.#rollouts.get(name)
    if (r === undefined && this.#rollouts.size < MAX_ROLLOUTS) {
      const f = () => new Float64Array(this.capacity)
      r = { decided: f(), onNew: f(), ratioTotal: f(), ratioNew: f(), ratioExpected: f(), ratioVariance: f(), target: f().fill(NaN) }
      this.#rollouts.set(name, r)
    }
    return r
  }

  /** forget rollouts no longer configured */
  retain (names: ReadonlySet<string>): void {
    for (const name of this.#rollouts.keys()) if (!names.has(name)) this.#rollouts.delete(name)
  }

  /**
   * add what happened since the previous snapshot to the slot of `now`; returns that delta (what the
   * fleet is told), undefined for the first snapshot (the baseline)
   */
  record (now: number, snap: Snapshot): Delta | undefined {
    const prev = this.#prev
    this.#prev = snap
    const delta = prev === undefined ? undefined : diff(prev, snap)
    this.#add(this.#index(now), delta ?? diff(snap, snap), snap)
    return delta
  }

  /** a slot's counts as the fleet holds them (replacing what it held); null: no replica wrote it */
  put (slot: number, delta: Delta | null, targets?: Readonly<Record<string, number>>): void {
    const i = ((slot % this.capacity) + this.capacity) % this.capacity
    if (delta === null) {
      this.#slot[i] = -1
      return
    }
    this.#slot[i] = -1
    this.#index(slot * SLOT_MS)
    const rollouts: Snapshot['rollouts'] = {}
    for (const [name, r] of Object.entries(delta.rollouts)) rollouts[name] = { ...r, targetPercent: targets?.[name] ?? NaN }
    for (const name of Object.keys(targets ?? {})) rollouts[name] ??= { decided: 0, onNew: 0, ratioTotal: 0, ratioNew: 0, ratioExpected: 0, ratioVariance: 0, targetPercent: targets?.[name] as number }
    this.#add(i, delta, { ...delta, rollouts })
  }

  /** the target percent each rollout had in `slot`, as this ring saw it */
  targets (slot: number): Record<string, number> {
    const i = ((slot % this.capacity) + this.capacity) % this.capacity
    const out: Record<string, number> = {}
    if (this.#slot[i] !== slot) return out
    for (const [name, r] of this.#rollouts) if (!Number.isNaN(r.target[i] as number)) out[name] = r.target[i] as number
    return out
  }

  #add (i: number, delta: Delta, snap: Snapshot): void {
    const width = this.bounds.length + 1
    for (const b of BACKENDS) {
      const d = delta.backends[b]
      this.#req[b][i] = (this.#req[b][i] as number) + d.requests
      this.#err[b][i] = (this.#err[b][i] as number) + d.errors
      const h = this.#hist[b]
      for (let k = 0; k < width; k++) h[i * width + k] = (h[i * width + k] as number) + (d.buckets[k] ?? 0)
    }
    for (const k of ['match', 'mismatch', 'error'] as const) this.#shadow[k][i] = (this.#shadow[k][i] as number) + delta.shadow[k]
    for (const [name, s] of Object.entries(snap.rollouts)) {
      const r = this.#rollout(name)
      if (r === undefined) continue
      const o = delta.rollouts[name]
      if (o !== undefined) {
        r.decided[i] = (r.decided[i] as number) + o.decided
        r.onNew[i] = (r.onNew[i] as number) + o.onNew
        r.ratioTotal[i] = (r.ratioTotal[i] as number) + o.ratioTotal
        r.ratioNew[i] = (r.ratioNew[i] as number) + o.ratioNew
        r.ratioExpected[i] = (r.ratioExpected[i] as number) + o.ratioExpected
        r.ratioVariance[i] = (r.ratioVariance[i] as number) + o.ratioVariance
      }
      if (!Number.isNaN(s.targetPercent)) r.target[i] = s.targetPercent
    }
  }

  /** the series of the last `windowMs` ending with the slot of `now` */
  view (now: number, windowMs: number, label: string, scope: Pick<StatsView, 'scope' | 'replicas' | 'fleet'> = { scope: 'local' }): StatsView {
    const n = Math.max(1, Math.min(this.capacity, Math.round(windowMs / SLOT_MS)))
    const last = Math.floor(now / SLOT_MS)
    const secs = SLOT_MS / 1000
    const width = this.bounds.length + 1
    const t: number[] = []
    const idx: (number | -1)[] = []
    for (let s = last - n + 1; s <= last; s++) {
      t.push((s + 1) * SLOT_MS)
      const i = ((s % this.capacity) + this.capacity) % this.capacity
      idx.push(this.#slot[i] === s ? i : -1)
    }
    const per = (a: Float64Array) => idx.map((i) => (i === -1 ? null : round((a[i] as number) / secs)))
    const backends = {} as StatsView['backends']
    for (const b of BACKENDS) {
      const req = this.#req[b]
      const err = this.#err[b]
      const h = this.#hist[b]
      backends[b] = {
        rps: per(req),
        errorRate: idx.map((i) => (i === -1 || (req[i] as number) === 0 ? null : round((err[i] as number) / (req[i] as number)))),
        p99Ms: idx.map((i) => (i === -1 ? null : quantileMs(h, i * width, this.bounds, 0.99)))
      }
    }
    const rollouts: StatsView['rollouts'] = {}
    const ratioSlots = Math.max(1, Math.round(RATIO_WINDOW_MS / SLOT_MS))
    for (const [name, r] of this.#rollouts) {
      let total = 0
      let fresh = 0
      let expected = 0
      let variance = 0
      for (const i of idx.slice(-ratioSlots)) {
        if (i === -1) continue
        total += r.ratioTotal[i] as number
        fresh += r.ratioNew[i] as number
        expected += r.ratioExpected[i] as number
        variance += r.ratioVariance[i] as number
      }
      const lastTarget = [...idx].reverse().map((i) => (i === -1 ? NaN : r.target[i] as number)).find((v) => !Number.isNaN(v))
      rollouts[name] = {
        share: idx.map((i) => (i === -1 || (r.decided[i] as number) === 0 ? null : round((r.onNew[i] as number) / (r.decided[i] as number)))),
        target: idx.map((i) => (i === -1 || Number.isNaN(r.target[i] as number) ? null : (r.target[i] as number) / 100)),
        sampleRatio: total === 0 ? sampleRatio(0, 0, (lastTarget ?? 0) / 100) : sampleRatio(total, fresh, expected / total, variance)
      }
    }
    return {
      window: label,
      stepMs: SLOT_MS,
      ...scope,
      t,
      backends,
      shadow: { match: per(this.#shadow.match), mismatch: per(this.#shadow.mismatch), error: per(this.#shadow.error) },
      rollouts
    }
  }
}

// a counter that went down was reset (a registry rebuilt): count from zero
const grew = (a: number, b: number | undefined) => (b === undefined || a < b ? a : a - b)

export function diff (prev: Snapshot, snap: Snapshot): Delta {
  const backends = {} as Delta['backends']
  for (const b of BACKENDS) {
    const cur = snap.backends[b]
    const old = prev.backends[b]
    backends[b] = { requests: grew(cur.requests, old.requests), errors: grew(cur.errors, old.errors), buckets: cur.buckets.map((v, k) => grew(v, old.buckets[k])) }
  }
  const rollouts: Delta['rollouts'] = {}
  for (const [name, s] of Object.entries(snap.rollouts)) {
    const o = prev.rollouts[name]
    // a reset (ratioTotal counts from zero) resets the four sample-ratio sums at once: they move together
    const reset = o === undefined || s.ratioTotal < o.ratioTotal
    rollouts[name] = {
      decided: grew(s.decided, o?.decided),
      onNew: grew(s.onNew, o?.onNew),
      ratioTotal: grew(s.ratioTotal, o?.ratioTotal),
      ratioNew: grew(s.ratioNew, o?.ratioNew),
      ratioExpected: reset ? s.ratioExpected : s.ratioExpected - o.ratioExpected,
      ratioVariance: reset ? s.ratioVariance : s.ratioVariance - o.ratioVariance
    }
  }
  return {
    backends,
    shadow: { match: grew(snap.shadow.match, prev.shadow.match), mismatch: grew(snap.shadow.mismatch, prev.shadow.mismatch), error: grew(snap.shadow.error, prev.shadow.error) },
    rollouts
  }
}

const round = (v: number) => Math.round(v * 1e4) / 1e4

/** histogram_quantile over one slot's bucket deltas (linear within the bucket, as Prometheus does) */
export function quantileMs (h: Float64Array, offset: number, bounds: readonly number[], q: number): number | null {
  let total = 0
  for (let k = 0; k <= bounds.length; k++) total += h[offset + k] as number
  if (total === 0) return null
  const rank = q * total
  let seen = 0
  for (let k = 0; k <= bounds.length; k++) {
    const c = h[offset + k] as number
    if (seen + c >= rank && c > 0) {
      // past the last bound the answer is that bound: the histogram knows no more
      if (k === bounds.length) return (bounds[bounds.length - 1] as number) * 1000
      const lo = k === 0 ? 0 : bounds[k - 1] as number
      const hi = bounds[k] as number
      return round((lo + (hi - lo) * ((rank - seen) / c)) * 1000)
    }
    seen += c
  }
  return null
}

/**
 * chi-square test of an observed split against the expected share (sample ratio mismatch):
 * `expected` is the mean of the shares the n requests were held to, `variance` the sum of each
 * one's p(1 - p) (n * expected * (1 - expected) when every request had the same share: Pearson's)
 */
export function sampleRatio (n: number, onNew: number, expected: number, variance = n * expected * (1 - expected)): SampleRatio {
  if (n === 0) return { n, observed: null, expected, pValue: null, ok: null }
  const observed = onNew / n
  const shown = round(expected)
  const d = onNew - n * expected
  // every share 0% or 100% (float sums of 0s and 1s): nothing drifts by chance, any request off is a mismatch
  if (!(variance > 1e-9)) {
    const ok = Math.abs(d) < 0.5
    return { n, observed: round(observed), expected: shown, pValue: ok ? 1 : 0, ok }
  }
  const p = erfc(Math.sqrt(d * d / variance / 2))
  return { n, observed: round(observed), expected: shown, pValue: Number(p.toPrecision(4)), ok: p >= SRM_ALPHA }
}

// complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7)
function erfc (x: number): number {
  const z = Math.abs(x)
  const t = 1 / (1 + 0.5 * z)
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
  return x >= 0 ? r : 2 - r
}

/** `15m`, `5m`, `1h`, `90s` → ms, within one slot and the ring's length; undefined when not */
export function parseWindow (s: string | undefined, capacity = DEFAULT_CAPACITY): number | undefined {
  const m = /^([0-9]{1,5})(s|m|h)$/.exec(s ?? '15m')
  if (m === null) return undefined
  const ms = Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 3_600_000)
  if (ms < SLOT_MS || ms > capacity * SLOT_MS) return undefined
  return ms
}
