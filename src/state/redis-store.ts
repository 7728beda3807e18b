// the Redis store: many replicas share one doc. A change is a WATCH/MULTI compare-and-set of the
// doc, its version, the audit list and a PUBLISH; replicas learn of it by the message or, as a
// backstop, by polling the version every second. The request path never waits on any of this.
// ioredis runs with no offline queue and a short command timeout: a command to a Redis that is
// down fails at once instead of piling up (DESIGN.md §7)
import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { BackendName } from '../config/index.js'
import { applyOp, emptyDoc } from './ops.js'
import { readStateFile, writeStateFile } from './file-store.js'
import { DUALTRACK_ERR_STORE_CONFLICT } from '../errors.js'
import { MAX_AUDIT_ENTRIES, type AuditEntry, type CounterWrite, type FleetCounters, type Op, type StateDoc, type StateStore } from './types.js'

export const DEFAULT_COMMAND_TIMEOUT_MS = 500
export const DEFAULT_POLL_MS = 1000
export const MAX_RETRY_DELAY_MS = 2000
export const AFF_MAX_RETRY_DELAY_MS = 250
const MAX_CAS_TRIES = 8
// take the lease when free, renew it when ours; atomic, so two replicas never both hold it
const LEASE_SCRIPT = `
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`

export interface RedisStoreOptions {
  readonly url: string
  readonly prefix: string
  /** the local copy read at start when Redis is down */
  readonly cacheFile: string
  readonly log: FastifyBaseLogger
  readonly pollMs?: number
  readonly commandTimeoutMs?: number
}

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const
  readonly #o: RedisStoreOptions
  readonly #client: Redis
  readonly #sub: Redis
  // the request path's reads and writes (affinity) on their own connection, auto-pipelined: the
  // lookups of one event-loop turn go out as one write, and never queue behind a state change
  readonly #aff: Redis
  readonly #keys: { state: string, version: string, audit: string, channel: string, aff: string }
  #known = 0
  #remote: ((doc: StateDoc) => void) | undefined
  #reconnect: (() => void) | undefined
  #wasDown = false
  #poll: NodeJS.Timeout | undefined
  #closed = false
  #affDown = false
  #affBack = -Infinity
  /** the guard's fleet counters: hashes under PREFIXguard: */
  readonly counters: FleetCounters = { addAndRead: (w, r) => this.#addAndRead(w, r) }

  constructor (o: RedisStoreOptions) {
    this.#o = o
    const p = o.prefix
    this.#keys = { state: `${p}state`, version: `${p}version`, audit: `${p}audit`, channel: `${p}changes`, aff: `${p}aff:` }
    const opts: RedisOptions = {
      enableOfflineQueue: false,
      commandTimeout: o.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      connectTimeout: 1000,
      maxRetriesPerRequest: 0,
      // reconnect forever, but never faster than every 100 ms nor slower than every 2 s
      retryStrategy: (times) => Math.min(times * 100, MAX_RETRY_DELAY_MS),
      lazyConnect: true
    }
    this.#client = new Redis(o.url, opts)
    this.#sub = new Redis(o.url, { ...opts, commandTimeout: undefined })
    // owner records queued during an outage go out when this connection is back: it retries
    // faster than the others (a refused connect costs nothing), so they are in Redis within a second
    this.#aff = new Redis(o.url, { ...opts, enableAutoPipelining: true, retryStrategy: (times) => Math.min(times * 50, AFF_MAX_RETRY_DELAY_MS) })
    this.#aff.on('close', () => { this.#affDown = true })
    this.#aff.on('ready', () => {
      if (this.#affDown) this.#affBack = Date.now()
      this.#affDown = false
    })
    for (const c of [this.#client, this.#sub, this.#aff]) c.on('error', () => { /* counted through up(); logged on state changes */ })
    this.#client.on('ready', () => {
      if (this.#wasDown) {
        this.#wasDown = false
        o.log.info({ store: 'redis' }, 'state store is back')
        this.#reconnect?.()
      }
      void this.#check()
    })
    this.#client.on('close', () => {
      if (!this.#wasDown && !this.#closed) o.log.warn({ store: 'redis' }, 'state store unreachable: serving the last known state')
      this.#wasDown = true
    })
    this.#sub.on('message', (_channel: string, message: string) => {
      if (Number(message) > this.#known) void this.#check()
    })
    this.#sub.on('ready', () => { this.#sub.subscribe(this.#keys.channel).catch(() => { /* the poll covers it */ }) })
  }

  async connect (): Promise<void> {
    await Promise.allSettled([this.#client.connect(), this.#sub.connect(), this.#aff.connect()])
    this.#poll = setInterval(() => { void this.#check() }, this.#o.pollMs ?? DEFAULT_POLL_MS)
    this.#poll.unref()
  }

  up (): boolean { return this.#client.status === 'ready' }

  async load (): Promise<StateDoc | null> {
    try {
      const raw = await this.#client.get(this.#keys.state)
      if (raw !== null) {
        const doc = JSON.parse(raw) as StateDoc
        this.#known = doc.version
        this.#cache(doc)
        return doc
      }
      return null
    } catch {
      // Redis down at start: the last state this replica saw, else the YAML
      this.#wasDown = true
      return readStateFile(this.#o.cacheFile)?.doc ?? null
    }
  }

  async commit (op: Op, now: number, seed: StateDoc | null): Promise<{ doc: StateDoc, audit: AuditEntry[] } | null> {
    if (!this.up()) return null
    const k = this.#keys
    try {
      for (let i = 0; i < MAX_CAS_TRIES; i++) {
        await this.#client.watch(k.state)
        const raw = await this.#client.get(k.state)
        const lost = raw === null && seed !== null && Object.keys(seed.rollouts).length > 0
        if (lost && i === 0) this.#o.log.warn({ store: 'redis', version: seed.version }, 'state missing in Redis: restoring this replica\'s copy')
        const doc = raw !== null ? JSON.parse(raw) as StateDoc : lost ? structuredClone(seed) : emptyDoc()
        const audit = applyOp(doc, op, now)
        if (audit.length === 0 && !lost) {
          await this.#client.unwatch()
          return { doc, audit }
        }
        const tx = this.#client.multi()
          .set(k.state, JSON.stringify(doc))
          .set(k.version, String(doc.version))
        for (const e of audit) tx.lpush(k.audit, JSON.stringify(e))
        if (audit.length === 0) tx.lpush(k.audit, JSON.stringify({ at: new Date(now).toISOString(), actor: 'dualtrack', source: 'admin', action: 'restore', rollout: null, before: null, after: { version: doc.version }, reason: 'state missing in Redis' }))
        tx.ltrim(k.audit, 0, MAX_AUDIT_ENTRIES - 1).publish(k.channel, String(doc.version))
        const res = await tx.exec()
        if (res !== null) {
          this.#known = Math.max(this.#known, doc.version)
          this.#cache(doc)
          return { doc, audit }
        }
        // another replica changed the doc between WATCH and EXEC: read again and re-apply
      }
      throw new DUALTRACK_ERR_STORE_CONFLICT(MAX_CAS_TRIES)
    } catch (err) {
      this.#o.log.warn({ err, store: 'redis' }, 'state change not stored')
      return null
    }
  }

  async audit (limit: number): Promise<AuditEntry[]> {
    const rows = await this.#client.lrange(this.#keys.audit, 0, Math.max(0, limit - 1))
    return rows.map((r) => JSON.parse(r) as AuditEntry)
  }

  async lease (name: string, holder: string, ttlMs: number): Promise<boolean> {
    if (!this.up()) return false
    try {
      const got = await this.#client.eval(LEASE_SCRIPT, 1, `${this.#o.prefix}lease:${name}`, holder, String(ttlMs))
      return got === 1
    } catch {
      return false
    }
  }

  // one pipeline a tick, whatever the number of rollouts: HINCRBY per changed field, PEXPIRE, HGETALL
  async #addAndRead (writes: readonly CounterWrite[], reads: readonly string[]): Promise<Record<string, Record<string, string>> | null> {
    if (!this.up()) return null
    const p = `${this.#o.prefix}guard:`
    const pipe = this.#client.pipeline()
    for (const w of writes) {
      for (const [f, v] of Object.entries(w.incr)) pipe.hincrby(p + w.key, f, v)
      pipe.pexpire(p + w.key, Math.max(1000, Math.ceil(w.ttlMs)))
    }
    for (const k of reads) pipe.hgetall(p + k)
    try {
      const res = await pipe.exec()
      if (res === null) return null
      const out: Record<string, Record<string, string>> = {}
      const first = res.length - reads.length
      for (let i = 0; i < res.length; i++) {
        const [err, v] = res[i] as [Error | null, unknown]
        if (err !== null) return null
        if (i >= first) out[reads[i - first] as string] = (v ?? {}) as Record<string, string>
      }
      return out
    } catch {
      return null
    }
  }

  onRemoteChange (cb: (doc: StateDoc) => void): void { this.#remote = cb }
  onReconnect (cb: () => void): void { this.#reconnect = cb }

  async getOwner (rollout: string, orderId: string): Promise<BackendName | undefined> {
    const v = await this.#aff.get(`${this.#keys.aff}${rollout}:${orderId}`)
    return v === 'legacy' || v === 'new' ? v : undefined
  }

  async setOwner (rollout: string, orderId: string, owner: BackendName, ttlMs: number): Promise<void> {
    // NX: an order's owner is whoever created it; a later 2xx that names it does not move it
    await this.#aff.set(`${this.#keys.aff}${rollout}:${orderId}`, owner, 'PX', ttlMs, 'NX')
  }

  recoveredAt (): number { return this.#affBack }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#poll)
    this.#client.disconnect()
    this.#sub.disconnect()
    this.#aff.disconnect()
  }

  // the version poll and the message both land here: fetch the doc when it is newer than ours
  async #check (): Promise<void> {
    if (!this.up()) return
    try {
      const v = Number(await this.#client.get(this.#keys.version) ?? 0)
      if (v <= this.#known) return
      const raw = await this.#client.get(this.#keys.state)
      if (raw === null) return
      const doc = JSON.parse(raw) as StateDoc
      if (doc.version <= this.#known) return
      this.#known = doc.version
      this.#cache(doc)
      this.#remote?.(doc)
    } catch { /* down: up() says so, the next poll tries again */ }
  }

  #cache (doc: StateDoc): void {
    try {
      writeStateFile(this.#o.cacheFile, { doc, audit: [] })
    } catch (err) {
      this.#o.log.warn({ err, file: this.#o.cacheFile }, 'cannot write the local state copy')
    }
  }
}
