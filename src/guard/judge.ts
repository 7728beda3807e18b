// the guard's verdict on one sample of traffic: breach, healthy, or inconclusive (too little data).
// every check is a sequential test (stats.ts), so the verdict may be asked for every second without
// raising the chance of a false breach; the checks share the sample's alpha equally (Bonferroni)
import type { GuardConfig } from '../config/index.js'
import { quantileMs, slowerThan, type Counts, type Side } from './counts.js'
import { deltaInterval, pValueAbove, pValueDeltaAbove, lowerBound } from './stats.js'

export type VerdictKind = 'healthy' | 'breach' | 'inconclusive'
export type Check = 'error_rate' | 'latency' | 'error_rate_max' | 'latency_max'
export const CHECKS: readonly Check[] = Object.freeze(['error_rate', 'latency', 'error_rate_max', 'latency_max'])

/** new may exceed the latency threshold on this share of its requests (its p99 is the threshold) */
export const SLOW_SHARE = 0.01
export const DEFAULT_CONFIDENCE = 0.99

export interface BackendView { readonly requests: number, readonly errors: number, readonly errorRate: number, readonly p99Ms: number }

export interface Judgment {
  readonly verdict: VerdictKind
  readonly backends: { readonly legacy: BackendView, readonly new: BackendView }
  /** new - legacy: the observed delta, its confidence sequence, the adjusted always-valid p-value */
  readonly errorRate: { readonly delta: number, readonly lower: number, readonly upper: number, readonly pValue: number } | null
  /** new's p99 over legacy's; the share of new slower than maxP99Ratio x legacy's p99, and its p-value */
  readonly latency: { readonly ratio: number | null, readonly thresholdMs: number, readonly slow: number, readonly pValue: number } | null
  readonly maxErrorRate: { readonly lower: number, readonly pValue: number } | null
  readonly maxP99Ms: { readonly slow: number, readonly pValue: number } | null
  /** adjusted p-values: a breach is a p-value at or below 1 - confidence */
  readonly pValues: Partial<Record<Check, number>>
  readonly reasons: readonly string[]
  /** the figures an audit entry keeps */
  readonly numbers: Readonly<Record<string, number>>
}

export interface JudgeOptions {
  /** this sample's share of 1 - confidence */
  readonly alpha: number
  /** 1 - confidence over alpha: reported p-values are multiplied by it (and by the checks' count) */
  readonly adjust?: number
  /** compute p-values (a bisection; the simulation leaves them out) */
  readonly pValues?: boolean
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`
const pts = (x: number) => `${(x * 100).toFixed(2)} points`
const ms = (x: number) => `${x.toFixed(0)} ms`
const fmtP = (p: number) => p < 1e-4 ? p.toExponential(1) : p.toFixed(4)

function view (s: Side): BackendView {
  return { requests: s.requests, errors: s.errors, errorRate: s.requests === 0 ? 0 : s.errors / s.requests, p99Ms: quantileMs(s, 0.99) }
}

export function judge (g: GuardConfig, c: Counts, o: JudgeOptions): Judgment {
  const legacy = view(c.legacy)
  const fresh = view(c.new)
  const checks: Check[] = []
  if (g.maxErrorRateDelta !== undefined) checks.push('error_rate')
  if (g.maxP99Ratio !== undefined) checks.push('latency')
  if (g.maxErrorRate !== undefined) checks.push('error_rate_max')
  if (g.maxP99Ms !== undefined) checks.push('latency_max')
  const k = Math.max(1, checks.length)
  const alpha = o.alpha / k
  const scale = k * (o.adjust ?? 1)
  const adj = (p: number) => Math.min(1, p * scale)
  const withP = o.pValues !== false
  const pValues: Partial<Record<Check, number>> = {}
  const breaches: string[] = []
  const notes: string[] = []

  let errorRate: Judgment['errorRate'] = null
  if (g.maxErrorRateDelta !== undefined) {
    const margin = g.maxErrorRateDelta
    const ci = deltaInterval(c.new.errors, c.new.requests, c.legacy.errors, c.legacy.requests, alpha)
    const raw = withP ? pValueDeltaAbove(c.new.errors, c.new.requests, c.legacy.errors, c.legacy.requests, margin) : NaN
    errorRate = { delta: fresh.errorRate - legacy.errorRate, lower: ci.lower, upper: ci.upper, pValue: adj(raw) }
    if (withP) pValues.error_rate = errorRate.pValue
    if (ci.lower > margin) breaches.push(`new error rate ${pct(fresh.errorRate)} is ${pts(errorRate.delta)} over legacy's ${pct(legacy.errorRate)}: at least ${pts(ci.lower)} over, beyond the ${pts(margin)} margin${withP ? ` (p = ${fmtP(errorRate.pValue)})` : ''}`)
  }

  let latency: Judgment['latency'] = null
  if (g.maxP99Ratio !== undefined) {
    const thresholdMs = g.maxP99Ratio * legacy.p99Ms
    // with no legacy latency to compare with, nothing is slower than it
    const slow = legacy.requests === 0 ? 0 : slowerThan(c.new, thresholdMs)
    const raw = pValueAbove(slow, c.new.requests, SLOW_SHARE)
    latency = { ratio: legacy.p99Ms > 0 && fresh.requests > 0 ? fresh.p99Ms / legacy.p99Ms : null, thresholdMs, slow, pValue: adj(raw) }
    pValues.latency = latency.pValue
    if (raw <= alpha) breaches.push(`new p99 ${ms(fresh.p99Ms)} is over ${g.maxP99Ratio} x legacy's p99 ${ms(legacy.p99Ms)}: ${slow} of ${fresh.requests} new requests (${pct(slow / fresh.requests)}) took over ${ms(thresholdMs)}, more than ${pct(SLOW_SHARE)} (p = ${fmtP(latency.pValue)})`)
  }

  let maxErrorRate: Judgment['maxErrorRate'] = null
  if (g.maxErrorRate !== undefined) {
    const raw = pValueAbove(c.new.errors, c.new.requests, g.maxErrorRate)
    maxErrorRate = { lower: lowerBound(c.new.errors, c.new.requests, alpha), pValue: adj(raw) }
    pValues.error_rate_max = maxErrorRate.pValue
    if (raw <= alpha) breaches.push(`new error rate ${pct(fresh.errorRate)} is over maxErrorRate ${pct(g.maxErrorRate)} (at least ${pct(maxErrorRate.lower)}, p = ${fmtP(maxErrorRate.pValue)})`)
  }

  let maxP99Ms: Judgment['maxP99Ms'] = null
  if (g.maxP99Ms !== undefined) {
    const slow = slowerThan(c.new, g.maxP99Ms)
    const raw = pValueAbove(slow, c.new.requests, SLOW_SHARE)
    maxP99Ms = { slow, pValue: adj(raw) }
    pValues.latency_max = maxP99Ms.pValue
    if (raw <= alpha) breaches.push(`new p99 ${ms(fresh.p99Ms)} is over maxP99Ms ${g.maxP99Ms}: ${slow} of ${fresh.requests} new requests took longer (p = ${fmtP(maxP99Ms.pValue)})`)
  }

  const short: string[] = []
  if (fresh.requests < g.minRequests) short.push(`${fresh.requests} of ${g.minRequests} requests on new`)
  if (legacy.requests < g.minRequests) short.push(`${legacy.requests} of ${g.minRequests} requests on legacy`)
  let verdict: VerdictKind
  if (short.length > 0) {
    verdict = 'inconclusive'
    notes.push(`inconclusive, ${short.join(', ')}`)
  } else if (breaches.length > 0) {
    verdict = 'breach'
  } else {
    verdict = 'healthy'
    notes.push(`healthy over ${fresh.requests} new / ${legacy.requests} legacy requests: error rate ${pct(fresh.errorRate)} vs ${pct(legacy.errorRate)}, p99 ${ms(fresh.p99Ms)} vs ${ms(legacy.p99Ms)}`)
  }
  const numbers: Record<string, number> = {
    newRequests: fresh.requests, legacyRequests: legacy.requests,
    newErrors: fresh.errors, legacyErrors: legacy.errors,
    newErrorRate: fresh.errorRate, legacyErrorRate: legacy.errorRate,
    newP99Ms: fresh.p99Ms, legacyP99Ms: legacy.p99Ms
  }
  if (errorRate !== null) Object.assign(numbers, { errorRateLower: errorRate.lower, errorRateUpper: errorRate.upper }, withP ? { errorRatePValue: errorRate.pValue } : {})
  if (latency !== null) Object.assign(numbers, { latencySlow: latency.slow, latencyThresholdMs: latency.thresholdMs, latencyPValue: latency.pValue })
  if (maxErrorRate !== null) numbers.maxErrorRatePValue = maxErrorRate.pValue
  if (maxP99Ms !== null) numbers.maxP99MsPValue = maxP99Ms.pValue
  return {
    verdict,
    backends: { legacy, new: fresh },
    errorRate,
    latency,
    maxErrorRate,
    maxP99Ms,
    pValues,
    // a breach on too little data is not a breach, but it is worth saying
    reasons: verdict === 'breach' ? breaches : [...notes, ...breaches.map((b) => `below minRequests, not acted on: ${b}`)],
    numbers
  }
}
