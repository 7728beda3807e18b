// the state as this replica sees it: a change applies here at once (the router is updated before
// the admin answer goes back), then goes to the store; with the store down it waits in a queue,
// is reported as not yet propagated, and is sent when the store is back
import type { FastifyBaseLogger } from 'fastify'
import type { RolloutLive } from '../routing/index.js'
import { applyOp, cloneDoc, emptyDoc, noop, syncYaml } from './ops.js'
import type { AuditEntry, Op, StateDoc, StateStore, YamlView } from './types.js'

export interface ChangeResult {
  readonly doc: StateDoc
  readonly audit: AuditEntry[]
  /** false when the store could not be reached: applied here only, for now */
  readonly propagated: boolean
}

interface Pending { op: Op, at: number }

export const LOCAL_AUDIT_ENTRIES = 200

export class StateManager {
  readonly store: StateStore
  readonly #log: FastifyBaseLogger
  readonly #listeners: ((doc: StateDoc) => void)[] = []
  #doc: StateDoc = emptyDoc()
  // the last doc the store gave (without this replica's unsent changes): the seed for a store that lost its copy
  #base: StateDoc | null = null
  #pending: Pending[] = []
  // the store's commits run one at a time (Redis WATCH is per connection)
  #queue: Promise<unknown> = Promise.resolve()
  // what this replica changed recently, for the audit view while the store is down
  #localAudit: AuditEntry[] = []
  // the flush under way: a second trigger joins it instead of sending the same change twice
  #flushing: Promise<boolean> | undefined

  constructor (store: StateStore, log: FastifyBaseLogger) {
    this.store = store
    this.#log = log
    store.onRemoteChange((doc) => this.#adopt(doc))
    store.onReconnect(() => { void this.flush() })
  }

  /** start: the stored state (or the local copy), then the YAML's edits on top */
  async init (views: Readonly<Record<string, YamlView>>): Promise<ChangeResult> {
    const stored = await this.store.load()
    if (stored !== null) {
      this.#doc = stored
      this.#base = cloneDoc(stored)
    }
    const res = await this.change(syncYaml(views))
    // listeners hear the loaded state even when the YAML changed nothing
    this.#notify()
    return res
  }

  get doc (): StateDoc { return this.#doc }
  get pending (): number { return this.#pending.length }

  /** called with the doc after every change, local or remote */
  onChange (fn: (doc: StateDoc) => void): void { this.#listeners.push(fn) }

  /** the run-time values the router needs */
  live (): Record<string, RolloutLive> {
    const out: Record<string, RolloutLive> = {}
    for (const [name, r] of Object.entries(this.#doc.rollouts)) out[name] = { percent: r.percent, regions: r.regions, rollback: r.rollback?.mode ?? null, segments: r.segments ?? {} }
    return out
  }

  async change (op: Op): Promise<ChangeResult> {
    const now = Date.now()
    const audit = applyOp(this.#doc, op, now)
    if (audit.length === 0) return { doc: this.#doc, audit, propagated: this.#pending.length === 0 }
    for (const e of audit) this.#log.info({ audit: e }, 'state change')
    this.#localAudit = [...audit.slice().reverse(), ...this.#localAudit].slice(0, LOCAL_AUDIT_ENTRIES)
    this.#notify()
    const stored = await this.#enqueue(op, now)
    if (stored === null) {
      this.#pending.push({ op, at: now })
      this.#markUnsent(audit)
      this.#notify()
      return { doc: this.#doc, audit, propagated: false }
    }
    this.#adopt(stored.doc)
    return { doc: this.#doc, audit, propagated: true }
  }

  /** send what waited for the store; called when it is back */
  flush (): Promise<boolean> {
    this.#flushing ??= this.#flush().finally(() => { this.#flushing = undefined })
    return this.#flushing
  }

  async #flush (): Promise<boolean> {
    // an empty change: restores the shared copy from this replica's if the store lost it
    if (this.#pending.length === 0) {
      const r = await this.#enqueue(noop(), Date.now())
      if (r !== null && r.doc.version > this.#doc.version) this.#adopt(r.doc)
    }
    while (this.#pending.length > 0) {
      const p = this.#pending[0] as Pending
      const stored = await this.#enqueue(p.op, p.at)
      if (stored === null) return false
      this.#pending.shift()
      if (this.#pending.length === 0) this.#adopt(stored.doc)
    }
    return true
  }

  async audit (limit: number): Promise<AuditEntry[]> {
    try {
      if (this.store.up()) return await this.store.audit(limit)
    } catch { /* fall back to what this replica saw */ }
    return this.#localAudit.slice(0, limit)
  }

  #enqueue (op: Op, at: number) {
    const run = this.#queue.then(() => this.store.commit(op, at, this.#base))
    this.#queue = run.catch(() => undefined)
    return run.catch(() => null)
  }

  // a newer doc from the store: take it, with this replica's unsent changes re-applied on top
  #adopt (doc: StateDoc): void {
    this.#base = cloneDoc(doc)
    const next = cloneDoc(doc)
    const unsent: AuditEntry[] = []
    for (const p of this.#pending) unsent.push(...applyOp(next, p.op, p.at))
    this.#doc = next
    this.#markUnsent(unsent)
    this.#notify()
  }

  // a rollback that has reached this replica only says so
  #markUnsent (audit: readonly AuditEntry[]): void {
    for (const e of audit) {
      const r = e.rollout === null ? undefined : this.#doc.rollouts[e.rollout]
      if (e.action === 'rollback' && r?.rollback) r.rollback.propagated = false
    }
  }

  #notify (): void {
    for (const fn of this.#listeners) {
      try { fn(this.#doc) } catch (err) { this.#log.error({ err }, 'state listener failed') }
    }
  }
}
