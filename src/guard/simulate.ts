// the guard fed a synthetic stream, with no sockets and no clock: the samples and the judge exactly
// as the guardian runs them, one tick a second over one hold. bench/guard-sim.js and the tests use it
import type { GuardConfig } from '../config/index.js'
import { Counts, bucketOf } from './counts.js'
import { judge, type VerdictKind } from './judge.js'
import { judgeSamples, samplesAt } from './samples.js'

export interface SimSide {
  /** requests per second */
  readonly rps: number
  readonly errorRate: number
  /** latency: lognormal with this median (ms) and log-sd */
  readonly medianMs: number
  readonly sigma: number
}

export interface SimOptions {
  readonly guard: GuardConfig
  readonly holdMs: number
  readonly legacy: SimSide
  readonly new: SimSide
  readonly random: () => number
  readonly tickMs?: number
}

export interface SimResult {
  /** ms into the hold of the first breach, or null */
  readonly breachAtMs: number | null
  /** requests on new when it breached (or at the end of the hold) */
  readonly newRequests: number
  /** the verdict on the whole hold at its end (what a plan acts on) */
  readonly holdVerdict: VerdictKind
}

/** mulberry32: a small seeded generator, so a simulation can be run again to the same figures */
export function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// a lognormal latency as its histogram bucket, read from a table of 4,096 quantiles: the same
// counts as drawing each latency, at a table lookup a request (the simulation draws millions)
const QUANTILES = 4096
function bucketTable (medianMs: number, sigma: number): Uint8Array {
  const t = new Uint8Array(QUANTILES)
  for (let i = 0; i < QUANTILES; i++) t[i] = bucketOf(medianMs * Math.exp(sigma * normalQuantile((i + 0.5) / QUANTILES)))
  return t
}

// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9)
function normalQuantile (p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239]
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572]
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783]
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416]
  const q = Math.min(p, 1 - p)
  let x: number
  if (q < 0.02425) {
    const r = Math.sqrt(-2 * Math.log(q))
    x = (((((c[0]! * r + c[1]!) * r + c[2]!) * r + c[3]!) * r + c[4]!) * r + c[5]!) / ((((d[0]! * r + d[1]!) * r + d[2]!) * r + d[3]!) * r + 1)
    return p < 0.5 ? x : -x
  }
  const r = p - 0.5
  const r2 = r * r
  return (((((a[0]! * r2 + a[1]!) * r2 + a[2]!) * r2 + a[3]!) * r2 + a[4]!) * r2 + a[5]!) * r / (((((b[0]! * r2 + b[1]!) * r2 + b[2]!) * r2 + b[3]!) * r2 + b[4]!) * r2 + 1)
}

/** one hold of a plan step: counts every tick, judges every tick, stops at the first breach */
export function simulateHold (o: SimOptions): SimResult {
  const tick = o.tickMs ?? 1000
  const alpha = 1 - o.guard.confidence
  // a hold starts anywhere relative to the window's boundaries
  const start = Math.floor(o.random() * o.guard.windowMs) + o.guard.windowMs * 10
  const samples = new Map<string, Counts>()
  const carry = { legacy: o.random(), new: o.random() }
  let newRequests = 0
  let holdVerdict: VerdictKind = 'inconclusive'
  const tables = { legacy: bucketTable(o.legacy.medianMs, o.legacy.sigma), new: bucketTable(o.new.medianMs, o.new.sigma) }
  for (let t = start + tick; t <= start + o.holdMs; t += tick) {
    const s = samplesAt(t, o.guard.windowMs, alpha, 0, start, o.holdMs)
    const next = new Map<string, Counts>()
    for (const spec of s.open) next.set(spec.id, samples.get(spec.id) ?? new Counts())
    samples.clear()
    for (const [k, v] of next) samples.set(k, v)
    const open = [...next.values()]
    for (const b of ['legacy', 'new'] as const) {
      const side = o[b]
      const table = tables[b]
      carry[b] += side.rps * tick / 1000
      const n = Math.floor(carry[b])
      carry[b] -= n
      if (b === 'new') newRequests += n
      for (let i = 0; i < n; i++) {
        const error = o.random() < side.errorRate
        const bucket = table[(o.random() * QUANTILES) | 0] as number
        for (const c of open) c.side(b).recordBucket(bucket, error)
      }
    }
    const j = judgeSamples(s, alpha, (spec, a) => judge(o.guard, samples.get(spec.id) as Counts, { alpha: a, pValues: false }))
    if (j.breach !== undefined) return { breachAtMs: t - start, newRequests, holdVerdict: 'breach' }
    holdVerdict = (j.hold ?? j.window).verdict
  }
  return { breachAtMs: null, newRequests, holdVerdict }
}
