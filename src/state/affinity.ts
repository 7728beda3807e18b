// affinity: which system owns an order. Learned from the answer that created it (recorded in the
// store before that answer reaches the client, so the payment that follows at once, through any
// replica, finds it); looked up for every later request of the rollout that names an order. The
// lookup is the one store read on the request path: owners are cached here (an order never
// changes owner), unknown ids briefly, and a store that fails never fails the request
import type { FastifyBaseLogger } from 'fastify'
import type { BackendName, Config } from '../config/index.js'
import { compileLearn, compileLookup, type CompiledLookup, type LearnReader, type RequestView } from '../routing/index.js'
import type { Metrics } from '../metrics/index.js'
import { AffinityLru } from './file-store.js'
import type { AffinityStore } from './types.js'

/** owners cached per replica */
export const DEFAULT_CACHE_ENTRIES = 100_000
/** an id the store does not know is asked again after this long */
export const NEGATIVE_CACHE_MS = 1000

export interface CompiledAffinity {
  readonly lookup: CompiledLookup
  readonly learn: LearnReader | undefined
  readonly ttlMs: number
  readonly maxBodyBytes: number
}

const NONE = 'none' as const

export class Affinity {
  readonly #store: AffinityStore
  readonly #metrics: Metrics
  readonly #log: FastifyBaseLogger
  #rollouts = new Map<string, CompiledAffinity>()
  // owner, or NONE for an id the store did not know (short expiry)
  readonly #cache = new AffinityLru<BackendName | typeof NONE>(DEFAULT_CACHE_ENTRIES)

  constructor (config: Config, store: AffinityStore, metrics: Metrics, log: FastifyBaseLogger) {
    this.#store = store
    this.#metrics = metrics
    this.#log = log
    this.configure(config)
  }

  configure (config: Config): void {
    const next = new Map<string, CompiledAffinity>()
    for (const [name, r] of Object.entries(config.rollouts)) {
      const a = r.affinity
      if (a === undefined || (a.lookup.length === 0 && a.learn.length === 0)) continue
      next.set(name, {
        lookup: compileLookup(a.lookup),
        learn: a.learn.length > 0 ? compileLearn(a.learn) : undefined,
        ttlMs: a.ttlMs,
        maxBodyBytes: a.maxBodyBytes
      })
      for (const result of ['hit', 'miss', 'error', 'learned', 'record_error']) this.#metrics.affinity.labels(name, result).inc(0)
    }
    this.#rollouts = next
  }

  of (rollout: string): CompiledAffinity | undefined {
    return this.#rollouts.get(rollout)
  }

  /** the owner of the order this request names; sync when nothing is named or the owner is cached */
  lookup (rollout: string, a: CompiledAffinity, req: RequestView, path: string, body: Buffer | undefined): BackendName | undefined | Promise<BackendName | undefined> {
    const ct = req.headers['content-type']
    const id = a.lookup.read(req, path, body, typeof ct === 'string' ? ct : undefined)
    if (id === undefined) return undefined
    const key = `${rollout}\t${id}`
    const now = Date.now()
    const cached = this.#cache.get(key, now)
    if (cached !== undefined) {
      this.#metrics.affinity.labels(rollout, cached === NONE ? 'miss' : 'hit').inc()
      return cached === NONE ? undefined : cached
    }
    return this.#store.getOwner(rollout, id).then((owner) => {
      this.#cache.set(key, owner ?? NONE, owner === undefined ? now + NEGATIVE_CACHE_MS : now + a.ttlMs)
      this.#metrics.affinity.labels(rollout, owner === undefined ? 'miss' : 'hit').inc()
      return owner
    }, (err: Error) => {
      // the store is down or slow: route by the rules below affinity
      this.#metrics.affinity.labels(rollout, 'error').inc()
      this.#log.warn({ rollout, err: { message: err.message } }, 'affinity lookup failed: routing by cohort')
      return undefined
    })
  }

  /** a complete answer to a POST: record the owner of the order it names, before the client hears */
  async learn (rollout: string, a: CompiledAffinity, backend: BackendName, status: number, headers: Record<string, string | string[] | undefined>, body: Buffer | undefined): Promise<void> {
    if (status < 200 || status >= 300 || a.learn === undefined) return
    const id = a.learn(headers, body)
    if (id === undefined) return
    const key = `${rollout}\t${id}`
    const known = this.#cache.get(key, Date.now())
    if (known === backend) return
    if (known === undefined || known === NONE) this.#cache.set(key, backend, Date.now() + a.ttlMs)
    try {
      await this.#store.setOwner(rollout, id, backend, a.ttlMs)
      this.#metrics.affinity.labels(rollout, 'learned').inc()
    } catch (err) {
      // the order still succeeds: the failed record is counted, lookups elsewhere fall through
      this.#metrics.affinity.labels(rollout, 'record_error').inc()
      this.#log.warn({ rollout, backend, err: { message: (err as Error).message } }, 'affinity record failed')
    }
  }
}
