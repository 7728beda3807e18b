// Prometheus metrics (DESIGN.md §5) with prom-client. Labels come from config names and fixed sets
// only, never from a user, an order or a raw path. The request path adds to plain numbers held by
// prepared tallies found through small Maps (no label hashing, no allocation: bench/micro/metrics.js);
// prom-client hears the totals at scrape time, from each metric's collect()
import { readFileSync } from 'node:fs'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { KNOWN_METHODS, type BackendName } from '../config/index.js'
import { sampleRatioPValue } from '../guard/index.js'
import { BUCKETS, REASONS, type Decision, type Reason } from '../routing/index.js'
import type { UpstreamErrorKind } from '../errors.js'

/** transaction latencies: 5 ms to 10 s, with bounds at 1.5 s and 2 s where guards' maxP99Ms usually sit */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 5, 10]

// the product's version, read once from the package.json two folders up (src/metrics or dist/metrics)
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
const ERROR_KINDS: readonly UpstreamErrorKind[] = ['timeout', 'connect', 'reset', 'bad_response']
/** what the affinity counter counts: lookups (the request path) and owner records (after a create) */
export type AffinityOp = 'lookup' | 'record'
/** each affinity result belongs to one operation; the `op` label is derived from it */
export const AFFINITY_RESULTS = {
  hit: 'lookup',
  miss: 'lookup',
  error: 'lookup',
  pattern: 'lookup',
  peer_hit: 'lookup',
  peer_miss: 'lookup',
  peer_timeout: 'lookup',
  learned: 'record',
  record_error: 'record',
  wait_timeout: 'record',
  flushed: 'record'
} as const satisfies Record<string, AffinityOp>
export type AffinityResult = keyof typeof AFFINITY_RESULTS
/** the affinity counter as its callers see it: the op label follows from the result */
export interface AffinityCounter {
  /** the prepared series (created at 0 on first sight): keep it, its inc() is a plain number */
  labels (rollout: string, result: AffinityResult): Tally
}
/** the sample-ratio window: 60 one-second slots */
export const SAMPLE_WINDOW_S = 60

type CounterChild = ReturnType<Counter<string>['labels']>

/** a counter child counted in a plain number; flush() hands the increase to prom-client (scrape time) */
export class Tally {
  n = 0
  readonly #child: CounterChild
  constructor (child: CounterChild) { this.#child = child }
  inc (): void { this.n++ }
  flush (): void {
    // prom-client re-hashes the labels on every child call: once per scrape here, not per request
    if (this.n > 0) { const n = this.n; this.n = 0; this.#child.inc(n) }
  }
}

// the parts of prom-client 15's Histogram a scrape-time flush writes into (its per-series record)
interface HistogramEntry { labels: Record<string, string>, bucketValues: Record<string, number>, sum: number, count: number }
type HistogramInternals = Histogram<string> & { hashMap: Record<string, HistogramEntry>, upperBounds: readonly number[] }

/** a histogram child kept as plain bucket counts; flushInto() adds them to prom-client's series */
export class Timing {
  readonly labels: Record<string, string>
  readonly #bounds: readonly number[]
  readonly #counts: Float64Array
  sum = 0
  count = 0
  constructor (bounds: readonly number[], labels: Record<string, string>) {
    this.#bounds = bounds
    this.#counts = new Float64Array(bounds.length)
    this.labels = labels
  }

  observe (seconds: number): void {
    const b = this.#bounds
    // the first bound that holds it, as prom-client's findBound; past the last one only +Inf (count)
    for (let i = 0; i < b.length; i++) {
      if (seconds <= (b[i] as number)) { this.#counts[i] = (this.#counts[i] as number) + 1; break }
    }
    this.sum += seconds
    this.count++
  }

  flushInto (h: Histogram<string>, entries: Map<string, HistogramEntry>, key: string): void {
    if (this.count === 0) return
    let e = entries.get(key)
    if (e === undefined) {
      h.zero(this.labels)
      const hm = (h as HistogramInternals).hashMap
      for (const v of Object.values(hm)) if (sameLabels(v.labels, this.labels)) e = v
      if (e === undefined) throw new Error(`prom-client histogram ${key}: zero() made no series`)
      entries.set(key, e)
    }
    const b = this.#bounds
    for (let i = 0; i < b.length; i++) {
      const c = this.#counts[i] as number
      if (c > 0) { e.bucketValues[b[i] as number] = (e.bucketValues[b[i] as number] ?? 0) + c; this.#counts[i] = 0 }
    }
    e.sum += this.sum
    e.count += this.count
    this.sum = 0
    this.count = 0
  }
}

function sameLabels (a: Record<string, string>, b: Record<string, string>): boolean {
  for (const k in b) if (a[k] !== b[k]) return false
  return true
}

interface BackendSeries {
  readonly duration: Timing
  readonly errors: Record<UpstreamErrorKind, Tally>
  // method -> status -> tally; filled on first sight, then found without allocating
  readonly requests: Map<string, Map<number, Tally>>
}

/** what the request path records per route, prepared once per route name */
export interface RouteSeries {
  readonly name: string
  readonly backends: Record<BackendName, BackendSeries>
}

/**
 * the sample-ratio sums of a set of requests: how many, how many went to new, and the share on new
 * each was held to (its Decision's threshold / 10000), summed (`expected`), with the binomial
 * variance of each, summed (`variance`): a rollout's percent, its percent segments' and a percent
 * change inside the window each count at their own share
 */
export interface RatioSums {
  total: number
  fresh: number
  expected: number
  variance: number
}

/** per rollout: decisions by reason and backend, and the sample-ratio window */
export interface RolloutSeries extends RatioWindow {
  readonly name: string
  readonly decisions: Record<Reason, Record<BackendName, Tally>>
  readonly ratio: Record<BackendName, Tally>
  // segment name -> tallies by backend; filled on first sight (names come from the config)
  readonly segments: Map<string, Record<BackendName, Tally>>
  /** the rollout's window counts decisions by percent, unkeyed and percent segments; these are its sums since start */
  readonly sums: RatioSums
  /** the target share now (percent / 100): the expected share shown while the window is empty */
  share: number
  /** per region with its own percentage: the same window, for decisions with reason region */
  readonly regions: Map<string, RatioWindow>
}

/** one sample-ratio window: 60 one-second slots */
export interface RatioWindow {
  readonly slotsTotal: Uint32Array
  readonly slotsNew: Uint32Array
  readonly slotsExpected: Float64Array
  readonly slotsVariance: Float64Array
  readonly slotSecond: Float64Array
}

const ratioWindow = (): RatioWindow => ({
  slotsTotal: new Uint32Array(SAMPLE_WINDOW_S),
  slotsNew: new Uint32Array(SAMPLE_WINDOW_S),
  slotsExpected: new Float64Array(SAMPLE_WINDOW_S),
  slotsVariance: new Float64Array(SAMPLE_WINDOW_S),
  slotSecond: new Float64Array(SAMPLE_WINDOW_S)
})

/** count one request held to share `p` into the window's slot of `nowMs` */
export function countRatio (w: RatioWindow, backend: BackendName, p: number, nowMs: number): void {
  const sec = Math.floor(nowMs / 1000)
  const i = sec % SAMPLE_WINDOW_S
  if (w.slotSecond[i] !== sec) { w.slotSecond[i] = sec; w.slotsTotal[i] = 0; w.slotsNew[i] = 0; w.slotsExpected[i] = 0; w.slotsVariance[i] = 0 }
  w.slotsTotal[i] = (w.slotsTotal[i] as number) + 1
  w.slotsExpected[i] = (w.slotsExpected[i] as number) + p
  w.slotsVariance[i] = (w.slotsVariance[i] as number) + p * (1 - p)
  if (backend === 'new') w.slotsNew[i] = (w.slotsNew[i] as number) + 1
}

/** the window's sums over the 60 s ending at `nowMs` */
export function sumRatio (w: RatioWindow, nowMs: number): RatioSums {
  const now = Math.floor(nowMs / 1000)
  const out: RatioSums = { total: 0, fresh: 0, expected: 0, variance: 0 }
  for (let i = 0; i < SAMPLE_WINDOW_S; i++) {
    if (now - (w.slotSecond[i] as number) < SAMPLE_WINDOW_S) {
      out.total += w.slotsTotal[i] as number
      out.fresh += w.slotsNew[i] as number
      out.expected += w.slotsExpected[i] as number
      out.variance += w.slotsVariance[i] as number
    }
  }
  return out
}

export interface Metrics {
  readonly registry: Registry
  readonly contentType: string
  route (name: string): RouteSeries
  rollout (name: string): RolloutSeries
  /** one finished request */
  request (route: RouteSeries, backend: BackendName, method: string, status: number, seconds: number, error: UpstreamErrorKind | undefined): void
  /**
   * one routing decision: by reason and backend, by segment when one decided, and into the
   * sample-ratio check when a percentage decided (its `threshold`, -1 otherwise)
   */
  decision (rollout: RolloutSeries, d: Readonly<Pick<Decision, 'backend' | 'reason' | 'segment' | 'region' | 'threshold'>>): void
  /** a rollout's sample-ratio sums since start (the console's /admin/stats reads them), if it has a series */
  ratioSums (rollout: string): Readonly<RatioSums> | undefined
  /** start a rollout's segment series at 0 (a dashboard shows them before the first match) */
  segments (rollout: string, names: readonly string[]): void
  /** run-time state: percent per rollout, rollbacks, version */
  state (rollouts: Readonly<Record<string, { percent: number, rollback: unknown, plan?: { step: number } | null, regions?: Readonly<Record<string, number>> }>>, version: number): void
  storeUp (kind: string, up: () => boolean): void
  reload (ok: boolean): void
  readonly shadow: {
    total: Counter<'route' | 'result'>
    fields: Counter<'route' | 'field'>
    duration: Histogram<'route' | 'backend'>
    /** prepared series for the copy path (plain numbers, flushed at scrape time); `zero`: the series starts at 0 */
    tally (metric: 'total' | 'fields', route: string, label: string, zero?: boolean): Tally
    timing (route: string, backend: BackendName): Timing
  }
  readonly autoRollbacks: Counter<'rollout'>
  /** the guard's current verdict (1 on its series, 0 on the others) and adjusted p-values per check */
  guard (rollout: string, verdict: 'healthy' | 'breach' | 'inconclusive', pValues: Readonly<Partial<Record<string, number>>>): void
  readonly affinity: AffinityCounter
  /** owner records waiting for the store (write-behind) */
  readonly affinityPending: Gauge
  readonly affinityDropped: Counter
  /** requests naming an owned order during a rollback, by the order's owner */
  readonly rollbackOwned: Counter<'rollout' | 'backend'>
  text (): Promise<string>
}

export function createMetrics (opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  // the request path's tallies, by the metric they flush into when it is read (scrape, stats sampler)
  const requestTallies: Tally[] = []
  const errorTallies: Tally[] = []
  const decisionTallies: Tally[] = []
  const ratioTallies: Tally[] = []
  const segmentTallies: Tally[] = []
  const timings: Timing[] = []
  const timingEntries = new Map<string, HistogramEntry>()
  const flush = (ts: Tally[]) => { for (const t of ts) t.flush() }
  const flushTimings = (h: Histogram<string>, ts: Timing[], entries: Map<string, HistogramEntry>) => {
    // a reset() drops prom-client's series: find them again
    if (entries.size > 0 && Object.keys((h as HistogramInternals).hashMap).length === 0) entries.clear()
    for (const t of ts) t.flushInto(h, entries, `${t.labels.route as string}\0${t.labels.backend as string}`)
  }
  const requests = new Counter({ name: 'dualtrack_requests_total', help: 'Proxied requests by route, backend, method and status code', labelNames: ['route', 'backend', 'method', 'code'], registers: [registry], collect () { flush(requestTallies) } })
  new Histogram({
    name: 'dualtrack_request_duration_seconds',
    help: 'Time from routing to the last byte of the answer',
    labelNames: ['route', 'backend'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
    collect () { flushTimings(this, timings, timingEntries) }
  })
  const upstreamErrors = new Counter({ name: 'dualtrack_upstream_errors_total', help: 'Backend failures by kind', labelNames: ['route', 'backend', 'kind'], registers: [registry], collect () { flush(errorTallies) } })
  const decisions = new Counter({ name: 'dualtrack_routing_decisions_total', help: 'Routing decisions by rollout, backend and reason', labelNames: ['rollout', 'backend', 'reason'], registers: [registry], collect () { flush(decisionTallies) } })
  // with server.workers the primary aggregates the workers' registries: gauges say how (not a sum)
  const percent = new Gauge({ name: 'dualtrack_rollout_percent', help: 'Target share of keyed users on new, in percent', labelNames: ['rollout'], registers: [registry], aggregator: 'max' })
  const rollback = new Gauge({ name: 'dualtrack_rollback_active', help: '1 while the rollout is rolled back', labelNames: ['rollout'], registers: [registry], aggregator: 'max' })
  new Gauge({ name: 'dualtrack_build_info', help: 'Always 1: the dualtrack version and the Node.js version this process runs', labelNames: ['version', 'node'], registers: [registry], aggregator: 'max' })
    .labels(VERSION, process.version).set(1)
  const planStep = new Gauge({ name: 'dualtrack_plan_step', help: 'The step of the ramp plan in force, counted from 1 (0: the plan has not started)', labelNames: ['rollout'], registers: [registry], aggregator: 'min' })
  const version = new Gauge({ name: 'dualtrack_state_version', help: 'Version of the run-time state this replica serves (the oldest worker\'s)', registers: [registry], aggregator: 'min' })
  let probe: { kind: string, up: () => boolean } | undefined
  new Gauge({
    name: 'dualtrack_state_store_up',
    help: '1 when the state store is reachable',
    labelNames: ['store'],
    registers: [registry],
    aggregator: 'min',
    collect () { if (probe !== undefined) this.labels(probe.kind).set(probe.up() ? 1 : 0) }
  })
  const reloads = new Counter({ name: 'dualtrack_config_reloads_total', help: 'Config reloads by result', labelNames: ['result'], registers: [registry] })
  const shadowTotalTallies: Tally[] = []
  const shadowFieldTallies: Tally[] = []
  const shadowTimings: Timing[] = []
  const shadowTimingEntries = new Map<string, HistogramEntry>()
  const shadowTotal = new Counter({ name: 'dualtrack_shadow_total', help: 'Shadow copies by result', labelNames: ['route', 'result'], registers: [registry], collect () { flush(shadowTotalTallies) } })
  const shadowFields = new Counter({ name: 'dualtrack_shadow_field_mismatches_total', help: 'Mismatching fields of shadow comparisons (templated paths)', labelNames: ['route', 'field'], registers: [registry], collect () { flush(shadowFieldTallies) } })
  const shadowDuration = new Histogram({
    name: 'dualtrack_shadow_duration_seconds',
    help: 'Latency of shadow copies by the backend that served them',
    labelNames: ['route', 'backend'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
    collect () { flushTimings(this, shadowTimings, shadowTimingEntries) }
  })
  const autoRollbacks = new Counter({ name: 'dualtrack_auto_rollbacks_total', help: 'Rollbacks made by the guard', labelNames: ['rollout'], registers: [registry] })
  const guardVerdict = new Gauge({ name: 'dualtrack_guard_verdict', help: 'The guard\'s verdict per rollout: 1 on the current one (healthy, breach, inconclusive)', labelNames: ['rollout', 'verdict'], registers: [registry], aggregator: 'max' })
  const guardP = new Gauge({ name: 'dualtrack_guard_p_value', help: 'Always-valid p-value of each guard check, adjusted: a breach is a value at or below 1 - confidence', labelNames: ['rollout', 'check'], registers: [registry], aggregator: 'min' })
  const affinityTallies: Tally[] = []
  const affinityTotal = new Counter({ name: 'dualtrack_affinity_total', help: 'Affinity lookups (op="lookup") and owner records (op="record") by result', labelNames: ['rollout', 'op', 'result'], registers: [registry], collect () { flush(affinityTallies) } })
  const affinitySeries = new Map<string, Tally>()
  const affinityPending = new Gauge({ name: 'dualtrack_affinity_pending', help: 'Owner records the store refused, waiting to be written when it answers again', registers: [registry], aggregator: 'sum' })
  const affinityDropped = new Counter({ name: 'dualtrack_affinity_dropped_total', help: 'Owner records dropped because the write-behind queue was full', registers: [registry] })
  const rollbackOwned = new Counter({ name: 'dualtrack_rollback_owned_total', help: 'Requests during a rollback that named an order with a known owner, by that owner (hard: those owned by new reached legacy)', labelNames: ['rollout', 'backend'], registers: [registry] })
  const ratio = new Counter({ name: 'dualtrack_sample_ratio_total', help: 'Requests decided by percent, a percent segment or unkeyed, by backend (the sample-ratio check)', labelNames: ['rollout', 'backend'], registers: [registry], collect () { flush(ratioTallies) } })
  const segmentDecisions = new Counter({ name: 'dualtrack_segment_decisions_total', help: 'Requests decided by a segment, by rollout, segment and backend', labelNames: ['rollout', 'segment', 'backend'], registers: [registry], collect () { flush(segmentTallies) } })
  const tally = (list: Tally[], child: CounterChild, zero = false) => {
    // zero: the series exists at 0 from the start (increase() sees the first event)
    if (zero) child.inc(0)
    const t = new Tally(child)
    list.push(t)
    return t
  }
  const affinity: AffinityCounter = {
    labels: (rollout, result) => {
      const k = `${rollout}\0${result}`
      let t = affinitySeries.get(k)
      if (t === undefined) {
        t = tally(affinityTallies, affinityTotal.labels(rollout, AFFINITY_RESULTS[result], result), true)
        affinitySeries.set(k, t)
      }
      return t
    }
  }
  const rollouts = new Map<string, RolloutSeries>()
  const segmentOf = (r: RolloutSeries, name: string) => {
    let s = r.segments.get(name)
    if (s === undefined) {
      s = { legacy: tally(segmentTallies, segmentDecisions.labels(r.name, name, 'legacy'), true), new: tally(segmentTallies, segmentDecisions.labels(r.name, name, 'new'), true) }
      r.segments.set(name, s)
    }
    return s
  }
  const windowOf = (r: RolloutSeries) => sumRatio(r, Date.now())
  new Gauge({
    name: 'dualtrack_sample_ratio_p_value',
    help: 'Chi-square p-value of the share on new against the target each request was held to, over the last 60 s, per rollout (region "": percent, percent segments, unkeyed) and per region with its own percentage; absent below the minimum count',
    labelNames: ['rollout', 'region'],
    registers: [registry],
    aggregator: 'min',
    collect () {
      this.reset()
      const now = Date.now()
      for (const r of rollouts.values()) {
        const w = sumRatio(r, now)
        const p = sampleRatioPValue(w.total, w.fresh, w.expected, w.variance)
        if (p !== undefined) this.labels(r.name, '').set(p)
        for (const [region, rw] of r.regions) {
          const x = sumRatio(rw, now)
          const q = sampleRatioPValue(x.total, x.fresh, x.expected, x.variance)
          if (q !== undefined) this.labels(r.name, region).set(q)
        }
      }
    }
  })
  new Gauge({
    name: 'dualtrack_sample_ratio_observed',
    help: 'Observed share (0..1) on new of requests decided by percent, a percent segment or unkeyed, over the last 60 s',
    labelNames: ['rollout'],
    registers: [registry],
    aggregator: 'average',
    collect () {
      for (const r of rollouts.values()) {
        const w = windowOf(r)
        if (w.total > 0) this.labels(r.name).set(w.fresh / w.total)
      }
    }
  })
  new Gauge({
    name: 'dualtrack_sample_ratio_window_requests',
    help: 'Requests decided by percent, a percent segment or unkeyed over the last 60 s (n of the sample-ratio check)',
    labelNames: ['rollout'],
    registers: [registry],
    collect () {
      for (const r of rollouts.values()) this.labels(r.name).set(windowOf(r).total)
    }
  })
  new Gauge({
    name: 'dualtrack_sample_ratio_expected',
    help: 'Expected share (0..1) on new of the same requests over the last 60 s: the mean of the share each was held to (the rollout percent / 100 when no percent segment decided; that while the window is empty)',
    labelNames: ['rollout'],
    registers: [registry],
    aggregator: 'average',
    collect () {
      for (const r of rollouts.values()) {
        const w = windowOf(r)
        this.labels(r.name).set(w.total > 0 ? w.expected / w.total : r.share)
      }
    }
  })
  // start the counters people alert on at 0, so increase() sees the first event
  for (const r of ['success', 'failure']) reloads.labels(r).inc(0)

  const routes = new Map<string, RouteSeries>()
  const metrics: Metrics = {
    registry,
    contentType: registry.contentType,
    route (name) {
      let r = routes.get(name)
      if (r === undefined) {
        const seriesOf = (b: BackendName): BackendSeries => {
          const errors = {} as Record<UpstreamErrorKind, Tally>
          for (const k of ERROR_KINDS) errors[k] = tally(errorTallies, upstreamErrors.labels(name, b, k), true)
          const timing = new Timing(LATENCY_BUCKETS, { route: name, backend: b })
          timings.push(timing)
          return { duration: timing, errors, requests: new Map() }
        }
        r = { name, backends: { legacy: seriesOf('legacy'), new: seriesOf('new') } }
        routes.set(name, r)
      }
      return r
    },
    rollout (name) {
      let r = rollouts.get(name)
      if (r === undefined) {
        const d = {} as Record<Reason, Record<BackendName, Tally>>
        for (const reason of REASONS) d[reason] = { legacy: tally(decisionTallies, decisions.labels(name, 'legacy', reason)), new: tally(decisionTallies, decisions.labels(name, 'new', reason)) }
        r = {
          name,
          decisions: d,
          ratio: { legacy: tally(ratioTallies, ratio.labels(name, 'legacy')), new: tally(ratioTallies, ratio.labels(name, 'new')) },
          segments: new Map(),
          ...ratioWindow(),
          sums: { total: 0, fresh: 0, expected: 0, variance: 0 },
          share: 0,
          regions: new Map()
        }
        autoRollbacks.labels(name).inc(0)
        rollouts.set(name, r)
      }
      return r
    },
    request (route, backend, method, status, seconds, error) {
      const b = route.backends[backend]
      const methodLabel = KNOWN_METHODS.has(method) ? method : 'OTHER'
      let byCode = b.requests.get(methodLabel)
      if (byCode === undefined) { byCode = new Map(); b.requests.set(methodLabel, byCode) }
      let c = byCode.get(status)
      if (c === undefined) { c = tally(requestTallies, requests.labels(route.name, backend, methodLabel, String(status))); byCode.set(status, c) }
      c.inc()
      b.duration.observe(seconds)
      if (error !== undefined) b.errors[error].inc()
    },
    decision (r, d) {
      const { backend, reason, segment, threshold } = d
      r.decisions[reason][backend].inc()
      if (segment !== undefined) segmentOf(r, segment)[backend].inc()
      // only a percentage can drift by chance: force, fixed-backend segments, affinity, rollback stay out
      if (threshold < 0) return
      const p = threshold / BUCKETS
      if (reason === 'region') {
        // only configured regions decide with reason region: the label set is the state's
        const region = d.region
        if (region === undefined) return
        let w = r.regions.get(region)
        if (w === undefined) { w = ratioWindow(); r.regions.set(region, w) }
        countRatio(w, backend, p, Date.now())
        return
      }
      // percent, a percent segment, and unkeyed (a client that sends no key, or a broken cookie, shows as drift)
      r.ratio[backend].inc()
      const s = r.sums
      s.total++
      if (backend === 'new') s.fresh++
      s.expected += p
      s.variance += p * (1 - p)
      countRatio(r, backend, p, Date.now())
    },
    state (live, v) {
      for (const [name, s] of Object.entries(live)) {
        const series = metrics.rollout(name)
        series.share = s.percent / 100
        percent.labels(name).set(s.percent)
        rollback.labels(name).set(s.rollback ? 1 : 0)
        if (s.plan !== undefined) planStep.labels(name).set(s.plan === null ? 0 : s.plan.step + 1)
      }
      version.set(v)
    },
    ratioSums (name) { return rollouts.get(name)?.sums },
    segments (rollout, names) {
      const r = metrics.rollout(rollout)
      for (const n of names) segmentOf(r, n)
    },
    storeUp (kind, up) { probe = { kind, up } },
    reload (ok) { reloads.labels(ok ? 'success' : 'failure').inc() },
    shadow: {
      total: shadowTotal,
      fields: shadowFields,
      duration: shadowDuration,
      tally (metric, route, label, zero) {
        return metric === 'total' ? tally(shadowTotalTallies, shadowTotal.labels(route, label), zero) : tally(shadowFieldTallies, shadowFields.labels(route, label), zero)
      },
      timing (route, backend) {
        const t = new Timing(LATENCY_BUCKETS, { route, backend })
        shadowTimings.push(t)
        return t
      }
    },
    autoRollbacks,
    guard (rollout, verdict, pValues) {
      for (const v of ['healthy', 'breach', 'inconclusive'] as const) guardVerdict.labels(rollout, v).set(v === verdict ? 1 : 0)
      for (const [check, p] of Object.entries(pValues)) if (p !== undefined && Number.isFinite(p)) guardP.labels(rollout, check).set(p)
    },
    affinity,
    affinityPending,
    affinityDropped,
    rollbackOwned,
    text: () => registry.metrics()
  }
  return metrics
}
