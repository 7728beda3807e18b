// affinity: which system owns an order. Learned from the answer that created it (recorded in the
// store before that answer reaches the client, so the payment that follows at once, through any
// replica, finds it); looked up for every later request of the rollout that names an order. The
// lookup is the one store read on the request path: owners are cached here (an order never
// changes owner), unknown ids briefly, and a store that fails never fails the request.
// On a bad day (issue 10), in this order: an id whose form names its owner (idPatterns) needs no
// store at all; an owner this replica knows (learned, cached, or waiting to be written) answers for
// itself; a record the store refused waits in a bounded queue and is written when it answers again;
// a lookup the store cannot answer asks the other replicas (state.peers) before falling through
import type { FastifyBaseLogger } from 'fastify'
import { compileIdPatterns, WRITE_METHODS, type BackendName, type Config, type IdOwner } from '../config/index.js'
import { compileLearn, compileLookup, lookupSourcesOn, type CompiledLookup, type LearnReader, type RequestView } from '../routing/index.js'
import type { AffinityResult, Metrics, Tally } from '../metrics/index.js'
import { AffinityLru, ExpiringKeys } from './lru.js'
import { createPeers, type Peers } from './peers.js'
import type { AffinityStore, OwnerLedger, RollbackMode, StoredOwner } from './types.js'

/** owners cached per replica */
export const DEFAULT_CACHE_ENTRIES = 100_000
/** an id the store does not know is asked again after this long */
export const NEGATIVE_CACHE_MS = 1000
/** owner records kept while the store is down; past it the oldest is dropped (and counted) */
export const DEFAULT_MAX_PENDING = 100_000
/** while records wait, the store is tried this often */
export const FLUSH_INTERVAL_MS = 200
const FLUSH_BATCH = 500
/**
 * for this long after the store failed (or came back), its "unknown" is not trusted: a record
 * another replica could not write during the outage may still be on its way, so peers are asked.
 * Past it, until every peer has said "unknown, nothing pending" once since the store came back
 * (a replica that reconnects late, or flushes slowly on a loaded machine, still holds records), but
 * never longer than UNCERTAIN_MAX_MS: a peer that never answers must not cost every miss forever
 */
export const RECOVERY_MS = 2_000
export const UNCERTAIN_MAX_MS = 30_000

export interface CompiledAffinity {
  readonly lookup: CompiledLookup
  /** the lookup sources it was compiled from */
  readonly lookupSpecs: readonly string[]
  readonly learn: LearnReader | undefined
  readonly ttlMs: number
  readonly maxBodyBytes: number
  /** the owner from the id's form alone (affinity.idPatterns), when set */
  readonly idOwner: IdOwner | undefined
  /** dualtrack_affinity_total of this rollout, by result: prepared once, counted in plain numbers */
  readonly count: Readonly<Record<AffinityResult, Tally>>
}

export interface KnownOwner { readonly orderId: string, readonly owner: BackendName, readonly learnedAt: string | null }

type Entry = StoredOwner
/** what one store read found, and what each lookup that waited on it counts */
interface Outcome { readonly owner: BackendName | undefined, readonly counted: readonly AffinityResult[] }
const FOUND: Readonly<Record<BackendName, Outcome>> = { legacy: { owner: 'legacy', counted: ['hit'] }, new: { owner: 'new', counted: ['hit'] } }
const UNKNOWN: Outcome = { owner: undefined, counted: ['miss'] }
const ERRORED: Outcome = { owner: undefined, counted: ['error'] }
interface Pending { readonly rollout: string, readonly id: string, readonly owner: BackendName, readonly ttlMs: number, readonly at: number }

const RESULTS: readonly AffinityResult[] = ['hit', 'miss', 'error', 'learned', 'record_error', 'wait_timeout', 'pattern', 'peer_hit', 'peer_miss', 'peer_timeout', 'flushed']

export interface AffinityOptions {
  readonly maxPending?: number
  /** the admin port this replica listens on: its own address is left out of a DNS peer list */
  readonly selfAdminPort?: number
}

export class Affinity {
  readonly #store: AffinityStore
  readonly #metrics: Metrics
  readonly #log: FastifyBaseLogger
  readonly #maxPending: number
  readonly #peers: Peers | undefined
  #rollouts = new Map<string, CompiledAffinity>()
  // owner, and when this replica learned it
  readonly #cache = new AffinityLru<Entry>(DEFAULT_CACHE_ENTRIES)
  // ids the store did not know, for NEGATIVE_CACHE_MS: kept apart, so that a burst of unknown ids
  // never pushes known owners out, and a hit costs one Map read
  readonly #unknown = new ExpiringKeys(NEGATIVE_CACHE_MS, DEFAULT_CACHE_ENTRIES)
  // store reads under way, by key: concurrent lookups of one id share one read
  readonly #inflight = new Map<string, Promise<Outcome>>()
  // owner records the store refused, oldest first
  readonly #pending = new Map<string, Pending>()
  #flushTimer: NodeJS.Timeout | undefined
  #flushing = false
  // when every peer last said it holds nothing the store has not seen
  #peersClearAt = -Infinity
  // when the store last failed us; with the store's own recovery time, what makes a miss uncertain
  #storeFailedAt = -Infinity

  constructor (config: Config, store: AffinityStore, metrics: Metrics, log: FastifyBaseLogger, opts: AffinityOptions = {}) {
    this.#store = store
    this.#metrics = metrics
    this.#log = log
    this.#maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING
    const p = config.state.peers
    // peers only help where replicas share a store that can be down
    this.#peers = p !== undefined && config.state.store === 'redis' ? createPeers(p, opts.selfAdminPort ?? config.admin.port, log) : undefined
    metrics.affinityPending.set(0)
    this.configure(config)
  }

  configure (config: Config): void {
    const next = new Map<string, CompiledAffinity>()
    for (const [name, r] of Object.entries(config.rollouts)) {
      const a = r.affinity
      if (a === undefined || (a.lookup.length === 0 && a.learn.length === 0)) continue
      // every series exists at 0 from the start
      const count = Object.fromEntries(RESULTS.map((result) => [result, this.#metrics.affinity.labels(name, result)])) as Record<AffinityResult, Tally>
      next.set(name, {
        lookup: compileLookup(a.lookup),
        lookupSpecs: a.lookup,
        learn: a.learn.length > 0 ? compileLearn(a.learn) : undefined,
        ttlMs: a.ttlMs,
        maxBodyBytes: a.maxBodyBytes,
        idOwner: compileIdPatterns(a.idPatterns),
        count
      })
      for (const b of ['legacy', 'new']) this.#metrics.rollbackOwned.labels(name, b).inc(0)
    }
    this.#rollouts = next
  }

  of (rollout: string): CompiledAffinity | undefined {
    return this.#rollouts.get(rollout)
  }

  /**
   * the rollout's affinity as requests on one route can use it, decided once per route: only the
   * sources such a request can carry; undefined when it can carry none (no lookup there at all)
   */
  onRoute (rollout: string, match: { readonly prefix: string, readonly methods?: readonly string[] | undefined }): CompiledAffinity | undefined {
    const a = this.#rollouts.get(rollout)
    if (a === undefined) return undefined
    const sources = lookupSourcesOn(a.lookupSpecs, match, WRITE_METHODS)
    if (sources.length === 0) return undefined
    return sources.length === a.lookupSpecs.length ? a : { ...a, lookup: compileLookup(sources), lookupSpecs: sources }
  }

  /** the rollouts with affinity */
  rollouts (): string[] { return [...this.#rollouts.keys()] }

  /** the peer client, when state.peers is set (tests and the bench read its counters) */
  get peers (): Peers | undefined { return this.#peers }

  /** records waiting for the store */
  get pending (): number { return this.#pending.size }
  /** peers that said, at their last poll, that they hold owner records the store has not seen */
  get peersPending (): number { return this.#peers?.pendingPeers() ?? 0 }

  /**
   * the request path: the owner to route by, under the rollout's rollback mode. No rollback or
   * drain: the owner (drain counts each request for an owned order). Hard: no owner (everything
   * goes to legacy), but what that does to owned orders is counted from what is known without waiting
   */
  route (rollout: string, rollback: RollbackMode | null, a: CompiledAffinity, req: RequestView, path: string, body: Buffer | undefined): BackendName | undefined | Promise<BackendName | undefined> {
    if (rollback === null) return this.lookup(rollout, a, req, path, body)
    const owned = this.#metrics.rollbackOwned
    if (rollback === 'drain') {
      const o = this.lookup(rollout, a, req, path, body)
      if (o === undefined) return o
      if (typeof o === 'string') {
        owned.labels(rollout, o).inc()
        return o
      }
      return o.then((v) => {
        if (v !== undefined) owned.labels(rollout, v).inc()
        return v
      })
    }
    const id = this.#readId(a, req, path, body)
    if (id !== undefined) {
      const known = a.idOwner?.(id) ?? this.#memory(`${rollout}\t${id}`)?.owner
      if (known !== undefined) owned.labels(rollout, known).inc()
      else {
        // counted in the background: the request does not wait, and peers are never asked for it
        this.#store.getOwner(rollout, id).then((v) => { if (v !== undefined) owned.labels(rollout, v.owner).inc() }, () => { /* store down: not counted */ })
      }
    }
    return undefined
  }

  /** the owner of the order this request names; sync when nothing is named or the owner is known here */
  lookup (rollout: string, a: CompiledAffinity, req: RequestView, path: string, body: Buffer | undefined): BackendName | undefined | Promise<BackendName | undefined> {
    const id = this.#readId(a, req, path, body)
    if (id === undefined) return undefined
    if (a.idOwner !== undefined) {
      const owner = a.idOwner(id)
      if (owner !== undefined) {
        a.count.pattern.inc()
        return owner
      }
    }
    return this.ownerOf(rollout, a, id)
  }

  /** the owner of one order id: memory, then the store, then (store down) the peers */
  ownerOf (rollout: string, a: CompiledAffinity, id: string): BackendName | undefined | Promise<BackendName | undefined> {
    const key = `${rollout}\t${id}`
    const now = Date.now()
    const cached = this.#cache.get(key, now)
    if (cached !== undefined) {
      a.count.hit.inc()
      return cached.owner
    }
    const waiting = this.#pending.get(key)
    if (waiting !== undefined) {
      a.count.hit.inc()
      return waiting.owner
    }
    if (this.#unknown.has(key, now)) {
      a.count.miss.inc()
      return undefined
    }
    let read = this.#inflight.get(key)
    if (read === undefined) {
      read = this.#read(rollout, a, key, id, now)
      this.#inflight.set(key, read)
    }
    // each lookup counts what it got, as if it had read alone
    return read.then((o) => {
      const c = o.counted
      for (let i = 0; i < c.length; i++) a.count[c[i] as AffinityResult].inc()
      return o.owner
    })
  }

  // one store read (then the peers when the store cannot be trusted); its result is cached before
  // the read is no longer shared, so that no lookup falls between the two
  #read (rollout: string, a: CompiledAffinity, key: string, id: string, now: number): Promise<Outcome> {
    return this.#store.getOwner(rollout, id).then((found): Outcome | Promise<Outcome> => {
      if (found === undefined && this.#peers !== undefined && this.#uncertain(Date.now())) return this.#askPeers(rollout, a, key, id, [])
      // unknown for a second from the store's answer (a read held up by a slow store still counts a full second)
      if (found === undefined) this.#unknown.add(key, Date.now())
      // kept with when it was recorded: this replica answers its peers and the ledger with it
      else this.#cache.set(key, found, now + a.ttlMs)
      return found === undefined ? UNKNOWN : FOUND[found.owner]
    }, (err: Error): Outcome | Promise<Outcome> => {
      // the store is down or slow: the peers, then the rules below affinity
      this.#storeFailedAt = Date.now()
      if (this.#peers !== undefined) return this.#askPeers(rollout, a, key, id, ['error'])
      this.#log.warn({ rollout, err: { message: err.message } }, 'affinity lookup failed: routing by cohort')
      return ERRORED
    }).finally(() => { this.#inflight.delete(key) })
  }

  /** what this replica knows of an order without its store: the peers' answer (GET /admin/affinity/:orderId) */
  known (rollout: string | undefined, orderId: string): KnownOwner | undefined {
    const names = rollout !== undefined ? [rollout] : [...this.#rollouts.keys()]
    for (const name of names) {
      const e = this.#memory(`${name}\t${orderId}`)
      if (e !== undefined) return { orderId, owner: e.owner, learnedAt: e.at === null ? null : new Date(e.at).toISOString() }
    }
    return undefined
  }

  /** the same from the store (when it answers), for an id this replica does not hold */
  async stored (rollout: string | undefined, orderId: string): Promise<KnownOwner | undefined> {
    const names = rollout !== undefined ? [rollout] : [...this.#rollouts.keys()]
    // a store that keeps the ledger says when the owner was learned too
    const ledger = (this.#store as Partial<OwnerLedger>).ownerRecord?.bind(this.#store)
    for (const name of names) {
      if (ledger !== undefined) {
        const rec = await ledger(name, orderId)
        if (rec !== undefined) return { orderId, owner: rec.owner, learnedAt: rec.learnedAt }
        continue
      }
      const found = await this.#store.getOwner(name, orderId)
      if (found !== undefined) return { orderId, owner: found.owner, learnedAt: found.at === null ? null : new Date(found.at).toISOString() }
    }
    return undefined
  }

  /** a complete answer to a POST: record the owner of the order it names, before the client hears */
  async learn (rollout: string, a: CompiledAffinity, backend: BackendName, status: number, headers: Record<string, string | string[] | undefined>, body: Buffer | undefined): Promise<void> {
    if (status < 200 || status >= 300 || a.learn === undefined) return
    const id = a.learn(headers, body)
    if (id === undefined) return
    if (a.idOwner !== undefined) {
      const named = a.idOwner(id)
      // the id's form says it all: nothing to store
      if (named === backend) return
      if (named !== undefined) this.#log.warn({ rollout, backend, named }, 'affinity: an order id matches the other system\'s idPatterns; its lookups follow the pattern')
    }
    const key = `${rollout}\t${id}`
    const now = Date.now()
    const known = this.#cache.get(key, now)
    if (known !== undefined && known.owner === backend) return
    // an id asked for before it was created is no longer unknown
    this.#unknown.delete(key)
    if (known === undefined) this.#cache.set(key, { owner: backend, at: now }, now + a.ttlMs)
    try {
      // the time memory keeps is the time stored: one owner, one learnedAt wherever it is read
      const r = await this.#store.setOwner(rollout, id, backend, a.ttlMs, now)
      a.count.learned.inc()
      // Sentinel: stored on the master, but no replica confirmed it in time (a failover now loses it)
      if (r === 'unreplicated') a.count.wait_timeout.inc()
    } catch (err) {
      // the order still succeeds: the record waits here and is written when the store is back
      this.#storeFailedAt = Date.now()
      a.count.record_error.inc()
      this.#log.warn({ rollout, backend, err: { message: (err as Error).message } }, 'affinity record failed: queued until the store answers')
      this.#enqueue({ rollout, id, owner: backend, ttlMs: a.ttlMs, at: now })
    }
  }

  async close (): Promise<void> {
    clearInterval(this.#flushTimer)
    this.#flushTimer = undefined
    await this.#peers?.close()
  }

  #readId (a: CompiledAffinity, req: RequestView, path: string, body: Buffer | undefined): string | undefined {
    const ct = req.headers['content-type']
    return a.lookup.read(req, path, body, typeof ct === 'string' ? ct : undefined)
  }

  #memory (key: string): Entry | undefined {
    const e = this.#cache.get(key, Date.now())
    if (e !== undefined) return e
    const p = this.#pending.get(key)
    return p === undefined ? undefined : { owner: p.owner, at: p.at }
  }

  #uncertain (now: number): boolean {
    const since = Math.max(this.#storeFailedAt, this.#store.recoveredAt?.() ?? -Infinity)
    const age = now - since
    if (age < RECOVERY_MS || (age < UNCERTAIN_MAX_MS && this.#peersClearAt <= since)) return true
    // a peer cut off from the store alone (this replica never saw an outage) said at the last poll
    // that it holds records
    return (this.#peers as Peers).pendingPeers() > 0
  }

  // before: what the lookup already counted (error: the store failed)
  #askPeers (rollout: string, a: CompiledAffinity, key: string, id: string, before: readonly AffinityResult[]): Promise<Outcome> {
    return (this.#peers as Peers).ask(rollout, id).then((answer): Outcome => {
      if (answer === 'clear' || answer === 'none' || answer === 'timeout') {
        if (answer === 'clear') this.#peersClearAt = Date.now()
        return { owner: undefined, counted: [...before, answer === 'timeout' ? 'peer_timeout' : 'peer_miss'] }
      }
      // what a peer knew is as good as learned (an order never changes owner), with the peer's time
      this.#cache.set(key, answer, Date.now() + a.ttlMs)
      return { owner: answer.owner, counted: [...before, 'peer_hit'] }
    })
  }

  #enqueue (p: Pending): void {
    const key = `${p.rollout}\t${p.id}`
    this.#pending.delete(key)
    this.#pending.set(key, p)
    if (this.#pending.size > this.#maxPending) {
      // the oldest goes: the newest orders are the ones whose payments are still to come
      this.#pending.delete(this.#pending.keys().next().value as string)
      this.#metrics.affinityDropped.inc()
    }
    this.#metrics.affinityPending.set(this.#pending.size)
    if (this.#flushTimer === undefined) {
      this.#flushTimer = setInterval(() => { void this.#flush() }, FLUSH_INTERVAL_MS)
      this.#flushTimer.unref()
    }
  }

  // one record probes the store; when it answers, the rest follow in pipelined batches
  async #flush (): Promise<void> {
    if (this.#flushing) return
    this.#flushing = true
    try {
      while (this.#pending.size > 0) {
        const batch = [...take(this.#pending, FLUSH_BATCH)]
        const now = Date.now()
        const results = await Promise.allSettled(batch.map(([key, p]) => {
          const left = p.at + p.ttlMs - now
          if (left <= 0) return Promise.resolve(key)
          return this.#store.setOwner(p.rollout, p.id, p.owner, left, p.at).then(() => {
            this.#metrics.affinity.labels(p.rollout, 'flushed').inc()
            return key
          })
        }))
        let failed = false
        for (const r of results) {
          if (r.status === 'fulfilled') this.#pending.delete(r.value)
          else failed = true
        }
        this.#metrics.affinityPending.set(this.#pending.size)
        if (failed) {
          this.#storeFailedAt = Date.now()
          return
        }
      }
      this.#log.info({ store: 'affinity' }, 'queued owner records written')
      clearInterval(this.#flushTimer)
      this.#flushTimer = undefined
    } finally {
      this.#flushing = false
    }
  }
}

function * take<K, V> (m: Map<K, V>, n: number): Generator<[K, V]> {
  let i = 0
  for (const e of m) {
    if (i++ >= n) return
    yield e
  }
}
