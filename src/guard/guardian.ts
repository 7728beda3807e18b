// guardrails and ramp plans. Each guarded rollout's traffic is counted into the samples samples.ts
// names; once a tick (at least every second) the counts are judged (judge.ts): with scope fleet,
// after adding this replica's new counts to the shared ones and reading the sum back in one store
// round trip, so that every replica judges the same numbers. A breach rolls the rollout back (guard.rollbackMode, drain by
// default) for every replica through the state store; a plan advances a step after a hold judged healthy,
// waits while it is inconclusive, led by one replica at a time (a lease), and its steps are
// compare-and-set ops so none is applied twice
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { BackendName, Config, GuardConfig, PlanConfig } from '../config/index.js'
import type { Metrics } from '../metrics/index.js'
import { planAdvance, planStart, planWait, rollback, type StateManager, type CounterWrite } from '../state/index.js'
import { Counts } from './counts.js'
import { judge, type Judgment, type VerdictKind } from './judge.js'
import { judgeSamples, samplesAt, type SampleSpec } from './samples.js'

export const DEFAULT_TICK_MS = 1000
const GUARD_ACTOR = { name: 'guard', source: 'guard' as const }

export type GuardScope = 'fleet' | 'replica' | 'replica (store down)'

interface Sample {
  readonly spec: SampleSpec
  readonly local: Counts
  /** what of `local` the store has (fleet scope) */
  pushed: Counts | undefined
}

interface Guarded {
  readonly name: string
  readonly guard: GuardConfig
  readonly plan: PlanConfig | undefined
  samples: Map<string, Sample>
  /** the samples the request path records into */
  open: Sample[]
  last: GuardView | undefined
}

/** what GET /admin/guard shows of one rollout */
export interface GuardView {
  readonly verdict: VerdictKind
  readonly scope: GuardScope
  readonly confidence: number
  readonly window: { readonly kind: 'window' | 'hold', readonly since: string, readonly ms: number }
  readonly backends: Judgment['backends']
  /** requests this replica counted itself in the same sample (fleet scope: its part of backends) */
  readonly replica: { readonly legacy: number, readonly new: number }
  readonly errorRate: Judgment['errorRate']
  readonly latency: Judgment['latency']
  readonly maxErrorRate?: Judgment['maxErrorRate']
  readonly maxP99Ms?: Judgment['maxP99Ms']
  readonly pValues: Judgment['pValues']
  readonly reasons: readonly string[]
  readonly at: string
}

/**
 * a sample's hash in the store (under PREFIXguard:). Every guard hash carries one hash tag, so on a
 * Redis Cluster they sit on one shard and a tick's single pipeline (every write and read) is allowed
 */
const fleetKey = (rollout: string, sample: string): string => `{~guard}:${rollout}:${sample}`

export class Guardian {
  readonly #state: StateManager
  readonly #metrics: Metrics
  readonly #log: FastifyBaseLogger
  readonly #replica = randomUUID()
  #rollouts = new Map<string, Guarded>()
  #timer: NodeJS.Timeout | undefined
  #ticking = false

  constructor (config: Config, state: StateManager, metrics: Metrics, log: FastifyBaseLogger) {
    this.#state = state
    this.#metrics = metrics
    this.#log = log
    this.configure(config)
  }

  configure (config: Config): void {
    const next = new Map<string, Guarded>()
    for (const [name, r] of Object.entries(config.rollouts)) {
      if (r.guard === undefined) continue
      const old = this.#rollouts.get(name)
      // a changed guard starts its counts afresh (sample ids carry the window, so the fleet's do too)
      const same = old !== undefined && old.guard.windowMs === r.guard.windowMs
      next.set(name, { name, guard: r.guard, plan: r.plan, samples: same ? old.samples : new Map(), open: same ? old.open : [], last: undefined })
    }
    this.#rollouts = next
    if (this.#timer !== undefined) this.start()
  }

  /** the request path: one finished request of a rollout (a Map lookup when unguarded) */
  record (rollout: string, backend: BackendName, ms: number, status: number, failed: boolean): void {
    const g = this.#rollouts.get(rollout)
    if (g === undefined || status === 499) return
    // 5xx and upstream failures count; 4xx are the client's
    const error = failed || status >= 500
    const open = g.open
    for (let i = 0; i < open.length; i++) (open[i] as Sample).local.side(backend).record(ms, error)
  }

  start (): void {
    this.stop()
    if (this.#rollouts.size === 0) return
    let tick = DEFAULT_TICK_MS
    for (const g of this.#rollouts.values()) tick = Math.min(tick, Math.max(50, g.guard.windowMs / 10), g.plan ? Math.max(50, g.plan.holdMs / 10) : tick)
    // the first samples open at once: requests before the first tick count too
    this.#openSamples(Date.now())
    this.#timer = setInterval(() => { void this.tick() }, tick)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** the last judgment of a rollout */
  verdict (rollout: string): GuardView | undefined {
    return this.#rollouts.get(rollout)?.last
  }

  /** GET /admin/guard */
  view (): { rollouts: Record<string, GuardView | { verdict: 'inconclusive', reasons: string[] }> } {
    const rollouts: Record<string, GuardView | { verdict: 'inconclusive', reasons: string[] }> = {}
    for (const g of this.#rollouts.values()) rollouts[g.name] = g.last ?? { verdict: 'inconclusive', reasons: ['not judged yet'] }
    return { rollouts }
  }

  /** count, share, judge and act on every guarded rollout once; exported for tests and the timer */
  async tick (now = Date.now()): Promise<void> {
    if (this.#ticking) return
    this.#ticking = true
    try {
      const closed = this.#openSamples(now)
      const counts = await this.#share(now, closed)
      for (const g of this.#rollouts.values()) await this.#judgeOne(g, now, counts)
    } catch (err) {
      this.#log.error({ err }, 'guard tick failed')
    } finally {
      this.#ticking = false
    }
  }

  // which samples each rollout records into now; returns the ones that just closed (a last push)
  #openSamples (now: number): Map<Guarded, Sample[]> {
    const closed = new Map<Guarded, Sample[]>()
    for (const g of this.#rollouts.values()) {
      const r = this.#state.doc.rollouts[g.name]
      if (r === undefined || r.rollback !== null) {
        // nothing is judged while rolled back: a resume starts afresh
        if (g.samples.size > 0) closed.set(g, [...g.samples.values()])
        g.samples = new Map()
        g.open = []
        continue
      }
      const plan = r.plan
      const stepSince = g.plan !== undefined && plan !== null && (plan.state === 'running' || plan.state === 'waiting') ? Date.parse(plan.since) : undefined
      const s = samplesAt(now, g.guard.windowMs, 1 - g.guard.confidence, r.stamps.rollback, stepSince, g.plan?.holdMs)
      const next = new Map<string, Sample>()
      for (const spec of s.open) next.set(spec.id, g.samples.get(spec.id) ?? { spec, local: new Counts(), pushed: undefined })
      const gone = [...g.samples.values()].filter((x) => !next.has(x.spec.id))
      if (gone.length > 0) closed.set(g, gone)
      g.samples = next
      g.open = [...next.values()]
    }
    return closed
  }

  // fleet scope: this replica's new counts go to the store and the sums come back, in one call
  async #share (now: number, closed: Map<Guarded, Sample[]>): Promise<{ fleet: Map<string, Counts> | undefined, down: boolean }> {
    const counters = this.#state.store.counters
    const fleet = [...this.#rollouts.values()].filter((g) => g.guard.scope === 'fleet')
    if (counters === undefined || fleet.length === 0) return { fleet: undefined, down: false }
    const writes: CounterWrite[] = []
    const reads: string[] = []
    const snaps: { s: Sample, snap: Counts }[] = []
    for (const g of fleet) {
      for (const s of [...g.samples.values(), ...(closed.get(g) ?? [])]) {
        const snap = s.local.copy()
        const incr = snap.deltaFields(s.pushed) ?? {}
        // every live sample's key is touched, so a quiet one does not expire under a long hold
        const ttlMs = (Number.isFinite(s.spec.end) ? s.spec.end - now : (g.plan?.holdMs ?? 0) * 4) + g.guard.windowMs * 2 + 60_000
        writes.push({ key: fleetKey(g.name, s.spec.id), incr, ttlMs })
        snaps.push({ s, snap })
        if (g.samples.has(s.spec.id)) reads.push(fleetKey(g.name, s.spec.id))
      }
    }
    if (!this.#state.store.up()) return { fleet: undefined, down: true }
    const res = await counters.addAndRead(writes, reads)
    if (res === null) return { fleet: undefined, down: true }
    for (const { s, snap } of snaps) s.pushed = snap
    const out = new Map<string, Counts>()
    for (const [k, h] of Object.entries(res)) out.set(k, Counts.fromFields(h))
    return { fleet: out, down: false }
  }

  async #judgeOne (g: Guarded, now: number, shared: { fleet: Map<string, Counts> | undefined, down: boolean }): Promise<void> {
    const r = this.#state.doc.rollouts[g.name]
    if (r === undefined) return
    const alpha = 1 - g.guard.confidence
    const scope: GuardScope = g.guard.scope === 'replica' || this.#state.store.counters === undefined
      ? 'replica'
      : shared.down || shared.fleet === undefined ? 'replica (store down)' : 'fleet'
    const countsOf = (s: Sample) => (scope === 'fleet' ? shared.fleet?.get(fleetKey(g.name, s.spec.id)) : undefined) ?? s.local
    const at = new Date(now).toISOString()
    if (r.rollback !== null) {
      // nothing is judged while rolled back; a guard rollback stays a breach (on every replica, with
      // the numbers this one saw, if it saw them) until someone resumes
      const breached = r.rollback.by === GUARD_ACTOR.name
      if (breached && g.last?.verdict === 'breach') return
      g.last = this.#show(g, { verdict: breached ? 'breach' : 'inconclusive', scope, confidence: g.guard.confidence, window: { kind: 'window', since: r.rollback.at, ms: g.guard.windowMs }, backends: { legacy: EMPTY, new: EMPTY }, replica: { legacy: 0, new: 0 }, errorRate: null, latency: null, pValues: {}, reasons: [`rolled back: ${r.rollback.reason}`], at })
      return
    }
    const plan = r.plan
    const stepSince = g.plan !== undefined && plan !== null && (plan.state === 'running' || plan.state === 'waiting') ? Date.parse(plan.since) : undefined
    const specs = samplesAt(now, g.guard.windowMs, alpha, r.stamps.rollback, stepSince, g.plan?.holdMs)
    // the samples of this moment were opened by #openSamples with the same doc; a change in between waits a tick
    if (!specs.open.every((spec) => g.samples.has(spec.id))) return
    const { hold: jh, breach, shown } = judgeSamples(specs, alpha, (spec, a, adjust) => judge(g.guard, countsOf(g.samples.get(spec.id) as Sample), { alpha: a, adjust }))
    g.last = this.#show(g, {
      verdict: shown.j.verdict,
      scope,
      confidence: g.guard.confidence,
      window: { kind: shown.spec.kind, since: new Date(shown.spec.start).toISOString(), ms: g.guard.windowMs },
      backends: shown.j.backends,
      replica: ((own) => ({ legacy: own?.local.legacy.requests ?? 0, new: own?.local.new.requests ?? 0 }))(g.samples.get(shown.spec.id)),
      errorRate: shown.j.errorRate,
      latency: shown.j.latency,
      ...(shown.j.maxErrorRate !== null ? { maxErrorRate: shown.j.maxErrorRate } : {}),
      ...(shown.j.maxP99Ms !== null ? { maxP99Ms: shown.j.maxP99Ms } : {}),
      pValues: shown.j.pValues,
      reasons: shown.j.reasons,
      at
    })
    if (breach !== undefined) {
      const where = `${scope} ${breach.spec.kind} since ${new Date(breach.spec.start).toISOString()}`
      const why = `guard: ${breach.j.reasons.join('; ')} (${where}, ${breach.j.backends.new.requests} new / ${breach.j.backends.legacy.requests} legacy requests, confidence ${g.guard.confidence})`
      this.#log.error({ rollout: g.name, scope, ...breach.j.numbers }, why)
      await this.#rollback(g, why, { scope, sample: breach.spec.kind, since: new Date(breach.spec.start).toISOString(), ...breach.j.numbers })
      return
    }
    if (g.plan !== undefined) await this.#plan(g, g.plan, now, jh)
  }

  #show (g: Guarded, v: GuardView): GuardView {
    this.#metrics.guard(g.name, v.verdict, v.pValues)
    return v
  }

  // the one call site that rolls back, in guard.rollbackMode
  async #rollback (g: Guarded, why: string, numbers: Record<string, unknown>): Promise<void> {
    const res = await this.#state.change(rollback([g.name], g.guard.rollbackMode, why, GUARD_ACTOR, numbers))
    if (res.audit.length > 0) this.#metrics.autoRollbacks.labels(g.name).inc()
  }

  async #plan (g: Guarded, plan: PlanConfig, now: number, hold: Judgment | undefined): Promise<void> {
    // one replica leads a plan at a time; the lease outlives a few missed ticks
    if (!(await this.#state.store.lease(`plan:${g.name}`, this.#replica, Math.max(3000, plan.holdMs)))) return
    const r = this.#state.doc.rollouts[g.name]
    if (r === undefined || r.rollback !== null) return
    const p = r.plan
    if (p === null) {
      await this.#state.change(planStart(g.name, plan.steps))
      return
    }
    if (p.paused || p.state === 'done' || p.state === 'stopped' || hold === undefined) return
    if (now - Date.parse(p.since) < plan.holdMs) return
    // the whole hold is judged, not only the last window: inconclusive never advances a plan
    if (hold.verdict === 'inconclusive') {
      if (p.state === 'running') await this.#state.change(planWait(g.name, p.step, `waiting: ${hold.reasons[0] ?? 'inconclusive'} (step ${p.step + 1})`))
      return
    }
    if (hold.verdict !== 'healthy') return
    const evidence = `held ${Math.round((now - Date.parse(p.since)) / 1000)} s, ${hold.reasons[0] ?? 'healthy'}`
    await this.#state.change(planAdvance(g.name, p.step, plan.steps, evidence))
  }
}

const EMPTY = { requests: 0, errors: 0, errorRate: 0, p99Ms: 0 }
