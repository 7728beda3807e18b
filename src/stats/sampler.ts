// reads the counters the request path already records (prom-client) every 5 s into the rings:
// the console's charts cost the request path nothing
import type { Registry } from 'prom-client'
import { randomUUID } from 'node:crypto'
import { StatsRing, SLOT_MS, parseWindow, type Snapshot, type StatsView } from './ring.js'
import { FleetStats, type FleetSource } from './fleet.js'

interface Value { value: number, labels: Record<string, string | number | undefined>, metricName?: string }
type Reader = { get (): Promise<{ values: Value[] }> }

export interface Stats {
  readonly ring: StatsRing
  /** take one snapshot now (the timer does this every 5 s) */
  sample (now?: number): Promise<void>
  /** this replica's series for a window such as `15m`; undefined when the window is not one it serves */
  view (window: string | undefined, now?: number): StatsView | undefined
  /**
   * the fleet's series (every replica's counts, summed in the Redis store) where there is a fleet;
   * this replica's own, saying why, when the store cannot answer; never fails
   */
  fleetView (window: string | undefined, now?: number): Promise<StatsView | undefined>
  start (): void
  stop (): void
}

/** a rollout's sample-ratio sums since start (the metrics keep them as plain numbers) */
export interface RatioTotals { readonly total: number, readonly fresh: number, readonly expected: number, readonly variance: number }

/** a fleet view read from Redis serves every request for the same window this long */
export const FLEET_VIEW_REUSE_MS = 1_000

export interface StatsOptions {
  rollouts?: () => Iterable<string>
  capacity?: number
  /**
   * a rollout's sample-ratio sums; the shares each request was held to are not in any
   * Prometheus series, so the metrics hand them over directly
   */
  ratio?: (rollout: string) => RatioTotals | undefined
  /** the Redis store's shared counters: each slot is added to the fleet's, and read back from there */
  fleet?: FleetSource
}

export function createStats (registry: Registry, bounds: readonly number[], opts: StatsOptions = {}): Stats {
  const ring = new StatsRing(bounds, opts.capacity)
  const fleet = opts.fleet === undefined ? undefined : new FleetStats(opts.fleet, randomUUID(), bounds.length + 1, ring.capacity)
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
  const views = new Map<string, { at: number, view: Promise<StatsView> }>()
  const readFleet = async (ms: number, label: string, now: number): Promise<StatsView> => {
    const fleetSrc = fleet as FleetStats
    const last = Math.floor(now / SLOT_MS)
    const n = Math.max(1, Math.min(ring.capacity, Math.round(ms / SLOT_MS)))
    const slots = Array.from({ length: n }, (_, k) => last - n + 1 + k)
    const got = await fleetSrc.read(slots)
    if (typeof got === 'string') return ring.view(now, ms, label, { scope: 'local', fleet: `unavailable: ${got}` })
    // a ring the size of the window, filled from the fleet's hashes; targets are the shared state's,
    // as this replica saw it, carried forward into slots it has not sampled yet (the current one)
    const sum = new StatsRing(bounds, n)
    let carry: Record<string, number> = {}
    for (const [slot, delta] of got.slots) {
      const seen = ring.targets(slot)
      if (Object.keys(seen).length > 0) carry = seen
      sum.put(slot, delta, carry)
    }
    return sum.view(now, ms, label, { scope: 'fleet', replicas: got.replicas })
  }
  let timer: NodeJS.Timeout | undefined
  const stats: Stats = {
    ring,
    async sample (now = Date.now()) {
      const delta = ring.record(now, await snapshot())
      if (delta !== undefined && fleet !== undefined) await fleet.push(now, delta)
    },
    view (window, now = Date.now()) {
      const ms = parseWindow(window, ring.capacity)
      return ms === undefined ? undefined : ring.view(now, ms, window ?? '15m')
    },
    fleetView (window, now = Date.now()) {
      const ms = parseWindow(window, ring.capacity)
      if (ms === undefined) return Promise.resolve(undefined)
      const label = window ?? '15m'
      if (fleet === undefined) return Promise.resolve(ring.view(now, ms, label))
      // every open console polls: one read of the fleet's window (a hash per slot) serves every
      // request for that window within FLEET_VIEW_REUSE_MS, in flight or done
      const hit = views.get(label)
      if (hit !== undefined && now - hit.at < FLEET_VIEW_REUSE_MS && now >= hit.at) return hit.view
      const view = readFleet(ms, label, now)
      views.set(label, { at: now, view })
      view.catch(() => views.delete(label))
      return view
    },
    start () {
      if (timer !== undefined) return
      const tick = () => { stats.sample().catch(() => {}) }
      tick()
      timer = setInterval(tick, SLOT_MS)
      timer.unref()
    },
    stop () {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
    }
  }
  return stats
}
