// the guard's verdict on a window: healthy, breached (and by what), or not enough traffic to say
import type { GuardConfig } from '../config/index.js'
import type { WindowStats } from './window.js'

export type Verdict =
  | { readonly kind: 'inconclusive', readonly why: string }
  | { readonly kind: 'healthy', readonly evidence: string }
  | { readonly kind: 'breach', readonly why: string, readonly numbers: Record<string, number> }

const pct = (x: number) => `${(x * 100).toFixed(2)}%`

export function judge (g: GuardConfig, legacy: WindowStats, fresh: WindowStats): Verdict {
  if (fresh.requests < g.minRequests || legacy.requests < g.minRequests) {
    return { kind: 'inconclusive', why: `not enough traffic: new ${fresh.requests}, legacy ${legacy.requests}, need ${g.minRequests} each` }
  }
  const numbers = {
    newRequests: fresh.requests, legacyRequests: legacy.requests,
    newErrorRate: fresh.errorRate, legacyErrorRate: legacy.errorRate,
    newP99Ms: fresh.p99Ms, legacyP99Ms: legacy.p99Ms
  }
  const why: string[] = []
  if (g.maxErrorRate !== undefined && fresh.errorRate > g.maxErrorRate) why.push(`new error rate ${pct(fresh.errorRate)} > maxErrorRate ${pct(g.maxErrorRate)}`)
  if (g.maxErrorRateDelta !== undefined && fresh.errorRate - legacy.errorRate > g.maxErrorRateDelta) why.push(`new error rate ${pct(fresh.errorRate)} is ${pct(fresh.errorRate - legacy.errorRate)} over legacy's ${pct(legacy.errorRate)} (maxErrorRateDelta ${pct(g.maxErrorRateDelta)})`)
  if (g.maxP99Ms !== undefined && fresh.p99Ms > g.maxP99Ms) why.push(`new p99 ${fresh.p99Ms.toFixed(0)} ms > maxP99Ms ${g.maxP99Ms}`)
  if (g.maxP99Ratio !== undefined && legacy.p99Ms > 0 && fresh.p99Ms > g.maxP99Ratio * legacy.p99Ms) why.push(`new p99 ${fresh.p99Ms.toFixed(0)} ms > ${g.maxP99Ratio} x legacy p99 ${legacy.p99Ms.toFixed(0)} ms`)
  const window = `${fresh.requests} new / ${legacy.requests} legacy requests`
  if (why.length > 0) return { kind: 'breach', why: `guard: ${why.join('; ')} (${window})`, numbers }
  return { kind: 'healthy', evidence: `healthy over ${window}: error rate ${pct(fresh.errorRate)} vs ${pct(legacy.errorRate)}, p99 ${fresh.p99Ms.toFixed(0)} vs ${legacy.p99Ms.toFixed(0)} ms` }
}
