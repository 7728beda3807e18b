// reads the counters the request path already records (prom-client) every 5 s into the rings:
// the console's charts cost the request path nothing
import type { Registry } from 'prom-client'
import { StatsRing, SLOT_MS, parseWindow, type Snapshot, type StatsView } from './ring.js'

interface Value { value: number, labels: Record<string, string | number | undefined>, metricName?: string }
type Reader = { get (): Promise<{ values: Value[] }> }

export interface Stats {
  readonly ring: StatsRing
  /** take one snapshot now (the timer does this every 5 s) */
  sample (now?: number): Promise<void>
  /** the series for a window such as `15m`; undefined when the window is not one it serves */
  view (window: string | undefined, now?: number): StatsView | undefined
  start (): void
  stop (): void
}

/** a rollout's sample-ratio sums since start (the metrics keep them as plain numbers) */
export interface RatioTotals { readonly total: number, readonly fresh: number, readonly expected: number, readonly variance: number }

/**
 * `ratio`: a rollout's sample-ratio sums; the shares each request was held to are not in any
 * Prometheus series, so the metrics hand them over directly
 */
export function createStats (registry: Registry, bounds: readonly number[], opts: { rollouts?: () => Iterable<string>, capacity?: number, ratio?: (rollout: string) => RatioTotals | undefined } = {}): Stats {
  const ring = new StatsRing(bounds, opts.capacity)
  const read = async (name: string): Promise<Value[]> => {
    const m = registry.getSingleMetric(name) as unknown as Reader | undefined
    return m === undefined ? [] : (await m.get()).values
  }
  const snapshot = async (): Promise<Snapshot> => {
    const [requests, duration, decisions, percent, shadow] = await Promise.all([
      read('dualtrack_requests_total'), read('dualtrack_request_duration_seconds'), read('dualtrack_routing_decisions_total'),
      read('dualtrack_rollout_percent'), read('dualtrack_shadow_total')
    ])
    const mk = () => ({ requests: 0, errors: 0, buckets: new Array<number>(bounds.length + 1).fill(0) })
    const backends = { legacy: mk(), new: mk() }
    for (const v of requests) {
      const b = backends[v.labels.backend as 'legacy' | 'new']
      if (b === undefined) continue
      b.requests += v.value
      if (Number(v.labels.code) >= 500) b.errors += v.value
    }
    for (const v of duration) {
      if (v.metricName !== 'dualtrack_request_duration_seconds_bucket') continue
      const b = backends[v.labels.backend as 'legacy' | 'new']
      if (b === undefined) continue
      const le = v.labels.le
      const k = le === '+Inf' ? bounds.length : bounds.indexOf(Number(le))
      if (k >= 0) b.buckets[k] = (b.buckets[k] as number) + v.value
    }
    // cumulative per bound in prom-client: the ring wants each bucket's own count
    for (const b of Object.values(backends)) {
      for (let k = b.buckets.length - 1; k > 0; k--) b.buckets[k] = (b.buckets[k] as number) - (b.buckets[k - 1] as number)
    }
    const rollouts: Snapshot['rollouts'] = {}
    const known = opts.rollouts ? new Set(opts.rollouts()) : undefined
    const of = (name: unknown) => {
      const n = String(name)
      if (known !== undefined && !known.has(n)) return undefined
      return (rollouts[n] ??= { decided: 0, onNew: 0, ratioTotal: 0, ratioNew: 0, ratioExpected: 0, ratioVariance: 0, targetPercent: 0 })
    }
    for (const v of percent) { const r = of(v.labels.rollout); if (r) r.targetPercent = v.value }
    for (const v of decisions) {
      const r = of(v.labels.rollout)
      if (r === undefined) continue
      r.decided += v.value
      if (v.labels.backend === 'new') r.onNew += v.value
    }
    for (const [name, r] of Object.entries(rollouts)) {
      const sums = opts.ratio?.(name)
      if (sums === undefined) continue
      r.ratioTotal = sums.total
      r.ratioNew = sums.fresh
      r.ratioExpected = sums.expected
      r.ratioVariance = sums.variance
    }
    const sh = { match: 0, mismatch: 0, error: 0 }
    for (const v of shadow) {
      const k = v.labels.result
      if (k === 'match' || k === 'mismatch' || k === 'error') sh[k] += v.value
    }
    if (known !== undefined) ring.retain(known)
    return { backends, shadow: sh, rollouts }
  }
  let timer: NodeJS.Timeout | undefined
  const stats: Stats = {
    ring,
    async sample (now = Date.now()) { ring.record(now, await snapshot()) },
    view (window, now = Date.now()) {
      const ms = parseWindow(window, ring.capacity)
      return ms === undefined ? undefined : ring.view(now, ms, window ?? '15m')
    },
    start () {
      if (timer !== undefined) return
      void stats.sample()
      timer = setInterval(() => { void stats.sample() }, SLOT_MS)
      timer.unref()
    },
    stop () {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
    }
  }
  return stats
}
