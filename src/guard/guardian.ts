// guardrails and ramp plans: each replica judges its own traffic of each guarded rollout; a
// breach rolls the rollout back (guard.rollbackMode, drain by default) for every replica through the state store; a plan advances
// a step after each hold while the rollout is healthy and has had enough traffic, led by one
// replica at a time (a lease), and its steps are compare-and-set ops so none is applied twice
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { BackendName, Config, GuardConfig, PlanConfig } from '../config/index.js'
import type { Metrics } from '../metrics/index.js'
import { planAdvance, planStart, planWait, rollback, type StateManager } from '../state/index.js'
import { SlidingWindow } from './window.js'
import { judge, type Verdict } from './judge.js'

export const DEFAULT_TICK_MS = 1000

interface Guarded {
  readonly name: string
  readonly guard: GuardConfig
  readonly plan: PlanConfig | undefined
  readonly window: SlidingWindow
  // traffic since the plan's current step began: the hold's evidence, judged like the window
  step: { since: string | null, window: SlidingWindow }
}

const GUARD_ACTOR = { name: 'guard', source: 'guard' as const }

// a window as long as any hold: everything since the step began lands in one slot
const STEP_WINDOW_MS = 1e15
const freshStep = (since: string | null) => ({ since, window: new SlidingWindow(STEP_WINDOW_MS) })

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
      next.set(name, {
        name,
        guard: r.guard,
        plan: r.plan,
        window: old !== undefined && old.window.windowMs === r.guard.windowMs ? old.window : new SlidingWindow(r.guard.windowMs),
        step: old?.step ?? freshStep(null)
      })
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
    g.window.record(backend, ms, error)
    if (g.plan !== undefined) g.step.window.record(backend, ms, error)
  }

  start (): void {
    this.stop()
    if (this.#rollouts.size === 0) return
    let tick = DEFAULT_TICK_MS
    for (const g of this.#rollouts.values()) tick = Math.min(tick, Math.max(50, g.guard.windowMs / 10), g.plan ? Math.max(50, g.plan.holdMs / 10) : tick)
    this.#timer = setInterval(() => { void this.tick() }, tick)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** judge every guarded rollout once; exported for tests and the timer */
  async tick (now = Date.now()): Promise<void> {
    if (this.#ticking) return
    this.#ticking = true
    try {
      for (const g of this.#rollouts.values()) await this.#judgeOne(g, now)
    } catch (err) {
      this.#log.error({ err }, 'guard tick failed')
    } finally {
      this.#ticking = false
    }
  }

  verdict (rollout: string, now = Date.now()): Verdict | undefined {
    const g = this.#rollouts.get(rollout)
    return g && judge(g.guard, g.window.stats('legacy', now), g.window.stats('new', now))
  }

  async #judgeOne (g: Guarded, now: number): Promise<void> {
    const r = this.#state.doc.rollouts[g.name]
    if (r === undefined) return
    if (r.rollback !== null) {
      // judged again from a clean window after a resume
      g.window.reset()
      return
    }
    const v = judge(g.guard, g.window.stats('legacy', now), g.window.stats('new', now))
    if (v.kind === 'breach') {
      this.#log.error({ rollout: g.name, ...v.numbers }, v.why)
      const res = await this.#state.change(rollback([g.name], g.guard.rollbackMode, v.why, GUARD_ACTOR, v.numbers))
      if (res.audit.length > 0) this.#metrics.autoRollbacks.labels(g.name).inc()
      g.window.reset()
      return
    }
    if (g.plan !== undefined) await this.#plan(g, g.plan, now)
  }

  async #plan (g: Guarded, plan: PlanConfig, now: number): Promise<void> {
    // one replica leads a plan at a time; the lease outlives a few missed ticks
    if (!(await this.#state.store.lease(`plan:${g.name}`, this.#replica, Math.max(3000, plan.holdMs)))) return
    const r = this.#state.doc.rollouts[g.name]
    if (r === undefined || r.rollback !== null) return
    const p = r.plan
    if (p === null) {
      await this.#state.change(planStart(g.name, plan.steps))
      g.step = freshStep(this.#state.doc.rollouts[g.name]?.plan?.since ?? null)
      return
    }
    if (p.since !== g.step.since) g.step = freshStep(p.since)
    if (p.paused || p.state === 'done' || p.state === 'stopped') return
    if (now - Date.parse(p.since) < plan.holdMs) return
    // the whole hold is judged, not only the last window: a step whose new side was too quiet for
    // the window to judge must still be healthy over the hold before the next step
    const v = judge(g.guard, g.step.window.stats('legacy', now), g.step.window.stats('new', now))
    if (v.kind === 'inconclusive') {
      if (p.state === 'running') await this.#state.change(planWait(g.name, p.step, `step ${p.step + 1}: ${v.why}`))
      return
    }
    if (v.kind === 'breach') {
      this.#log.error({ rollout: g.name, ...v.numbers }, v.why)
      const res = await this.#state.change(rollback([g.name], g.guard.rollbackMode, `plan step ${p.step + 1}: ${v.why}`, GUARD_ACTOR, v.numbers))
      if (res.audit.length > 0) this.#metrics.autoRollbacks.labels(g.name).inc()
      return
    }
    const evidence = `held ${Math.round((now - Date.parse(p.since)) / 1000)} s, ${v.evidence}`
    await this.#state.change(planAdvance(g.name, p.step, plan.steps, evidence))
  }
}
