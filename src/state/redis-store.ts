// the Redis store: many replicas share one doc. A change is a WATCH/MULTI compare-and-set of the
// doc, its version, the audit list and a PUBLISH; replicas learn of it by the message or, as a
// backstop, by polling the version every second. The request path never waits on any of this.
// ioredis runs with no offline queue and a short command timeout: a command to a Redis that is
// down fails at once instead of piling up (DESIGN.md §7)
import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { BackendName } from '../config/index.js'
import { applyOp, emptyDoc } from './ops.js'
import { readStateFile, writeStateFile } from './state-file.js'
import { DUALTRACK_ERR_STORE_CONFLICT } from '../errors.js'
import { createRedisClient, mastersOf, redisKeys, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_REPLICA_WAIT_MS, type RedisClient, type RedisConnection } from './redis-client.js'
import { MAX_AUDIT_ENTRIES, type AuditEntry, type Op, type OwnerRecord, type StoredOwner, type CounterWrite, type FleetCounters, type StateDoc, type StateStore } from './types.js'

export { DEFAULT_COMMAND_TIMEOUT_MS, MAX_RETRY_DELAY_MS } from './redis-client.js'
export const DEFAULT_POLL_MS = 1000
export const AFF_MAX_RETRY_DELAY_MS = 250
const MAX_CAS_TRIES = 8
/** keys per MGET of the lookups of one turn: a burst larger than this is read by several */
export const MGET_MAX_KEYS = 500
/** keys per SCAN step of a ledger export */
export const SCAN_COUNT = 1000
const EXPORT_COMMAND_TIMEOUT_MS = 10_000
// take the lease when free, renew it when ours; atomic, so two replicas never both hold it
const LEASE_SCRIPT = `
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`
// the compare-and-set of a change: written only when the version is still the one read, so two
// replicas changing at once never lose one of the changes (the loser reads again and re-applies).
// one script on one slot: works alike on one server, a Sentinel master and a Cluster
// KEYS: state, version, audit; ARGV: expected version ('' for none), doc, version, channel, last audit index, entries...
const CAS_SCRIPT = `
if (redis.call('get', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2])
redis.call('set', KEYS[2], ARGV[3])
for i = 6, #ARGV do redis.call('lpush', KEYS[3], ARGV[i]) end
redis.call('ltrim', KEYS[3], 0, tonumber(ARGV[5]))
redis.call('publish', ARGV[4], ARGV[3])
return 1`

export interface RedisStoreOptions {
  /** which Redis: one server (url), a Sentinel master, or a Cluster */
  readonly connection: RedisConnection
  readonly prefix: string
  /** the local copy read at start when Redis is down */
  readonly cacheFile: string
  readonly log: FastifyBaseLogger
  readonly pollMs?: number
  /** Sentinel: an owner write waits this long for one replica (0: no wait) */
  readonly replicaWaitMs?: number
}

// an owner is stored as "new 1764500000000" (owner, learned at, ms); records written before the
// ledger are the owner alone
function parseOwner (v: string | null): { owner: BackendName, at: number } | undefined {
  if (v === null) return undefined
  const sp = v.indexOf(' ')
  const owner = sp === -1 ? v : v.slice(0, sp)
  if (owner !== 'legacy' && owner !== 'new') return undefined
  return { owner, at: sp === -1 ? 0 : Number(v.slice(sp + 1)) }
}

// a value written before the ledger holds only the owner: it is still read, with no time
function storedOwner (v: string | null): StoredOwner | undefined {
  const p = parseOwner(v)
  return p === undefined ? undefined : { owner: p.owner, at: p.at > 0 ? p.at : null }
}

/** the lookups of one event-loop turn, answered by one MGET */
interface ReadTurn {
  readonly keys: string[]
  readonly resolve: ((v: StoredOwner | undefined) => void)[]
  readonly reject: ((err: Error) => void)[]
}

const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const
  readonly #o: RedisStoreOptions
  readonly #client: RedisClient
  readonly #sub: RedisClient
  // the request path's reads and writes (affinity) on their own connection: the lookups of one
  // event-loop turn go out as one MGET (getOwner), the owner writes auto-pipelined, and neither
  // queues behind a state change
  readonly #aff: RedisClient
  // Sentinel: owner writes and their WAIT on one more connection, so that a WAIT (which blocks its
  // connection) never holds up a lookup; the same connection as lookups elsewhere
  readonly #own: RedisClient
  readonly #waitMs: number
  #waiting: Promise<boolean> | undefined
  readonly #keys: ReturnType<typeof redisKeys>
  #known = 0
  #remote: ((doc: StateDoc) => void) | undefined
  #reconnect: (() => void) | undefined
  #wasDown = false
  // a state command failed while the connection stayed up: a Cluster keeps its connection through
  // the failover of one shard, so no reconnect says when the state's slot answers again
  #failedUp = false
  #poll: NodeJS.Timeout | undefined
  #closed = false
  #affDown = false
  #affBack = -Infinity
  // one MGET per event-loop turn for the lookups (not on a Cluster), and the turn's lookups so far
  readonly #batchReads: boolean
  #reads: ReadTurn | undefined
  /** the guard's fleet counters: hashes under PREFIXguard: */
  readonly counters: FleetCounters = { addAndRead: (w, r) => this.#addAndRead(w, r) }

  constructor (o: RedisStoreOptions) {
    this.#o = o
    this.#keys = redisKeys(o.prefix)
    const c = o.connection
    const sentinel = c.target.kind === 'sentinel'
    this.#waitMs = sentinel ? o.replicaWaitMs ?? DEFAULT_REPLICA_WAIT_MS : 0
    this.#client = createRedisClient(c)
    this.#sub = createRedisClient(c, { commandTimeoutMs: null })
    // owner records queued during an outage go out when this connection is back: it retries
    // faster than the others (a refused connect costs nothing), so they are in Redis within a second
    this.#batchReads = c.target.kind !== 'cluster'
    // the MGET of a turn's lookups is already its batch: it goes out at once, not a turn later
    this.#aff = createRedisClient(c, { autoPipeline: true, autoPipelineIgnore: ['mget'], retry: { stepMs: 50, maxMs: AFF_MAX_RETRY_DELAY_MS } })
    this.#aff.on('close', () => { this.#affDown = true })
    this.#aff.on('ready', () => {
      if (this.#affDown) this.#affBack = Date.now()
      this.#affDown = false
    })
    // the WAIT must be allowed to run its course before the command times out
    this.#own = this.#waitMs > 0 ? createRedisClient(c, { autoPipeline: true, commandTimeoutMs: this.#waitMs + (c.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS) }) : this.#aff
    for (const cl of this.#clients()) cl.on('error', () => { /* counted through up(); logged on state changes */ })
    // why the store cannot be reached (a refused certificate, a wrong password, a refused
    // connection), once per cause: every reconnect repeats the same error, and the other
    // connections fail for the same reason
    let cause: string | undefined
    this.#client.on('error', (err: Error & { code?: string }) => {
      if (this.#closed || err.message === cause) return
      cause = err.message
      o.log.warn({ store: 'redis', err: { message: err.message, code: err.code } }, 'state store connection failed')
    })
    this.#client.on('ready', () => {
      cause = undefined
      if (this.#wasDown) {
        this.#wasDown = false
        this.#failedUp = false
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
    // after a reconnect (a new master after +switch-master, a restarted server) subscribe again and
    // look at once: a change published while this replica was away is only seen by the version
    this.#sub.on('ready', () => {
      this.#sub.subscribe(this.#keys.channel).catch(() => { /* the poll covers it */ })
      void this.#check()
    })
  }

  #clients (): RedisClient[] {
    return [...new Set([this.#client, this.#sub, this.#aff, this.#own])]
  }

  async connect (): Promise<void> {
    await Promise.allSettled(this.#clients().map((c) => c.connect()))
    this.#poll = setInterval(() => { void this.#check() }, this.#o.pollMs ?? DEFAULT_POLL_MS)
    this.#poll.unref()
  }

  up (): boolean { return this.#client.status === 'ready' }

  async load (): Promise<StateDoc | null> {
    try {
      const raw = await this.#client.get(this.#keys.state) ?? await this.#migrate()
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

  // the state under the names of dualtrack 0.1 (no hash tag): copied once to the tagged names, by
  // the same compare-and-set as a change, so two replicas starting at once copy it once. The old
  // keys stay, for a rollback of the gateway itself
  async #migrate (): Promise<string | null> {
    const o = this.#keys.old
    if (o.state === this.#keys.state) return null
    const raw = await this.#client.get(o.state)
    if (raw === null) return null
    const doc = JSON.parse(raw) as StateDoc
    const audit = await this.#client.lrange(o.audit, 0, MAX_AUDIT_ENTRIES - 1)
    const k = this.#keys
    // lpush reverses: oldest first, so that the newest ends up first again
    await this.#client.eval(CAS_SCRIPT, 3, k.state, k.version, k.audit, '', raw, String(doc.version), k.channel, String(MAX_AUDIT_ENTRIES - 1), ...audit.reverse())
    this.#o.log.info({ store: 'redis', from: o.state, to: k.state, version: doc.version }, 'state moved to the hash-tagged keys')
    return await this.#client.get(k.state)
  }

  async commit (op: Op, now: number, seed: StateDoc | null): Promise<{ doc: StateDoc, audit: AuditEntry[] } | null> {
    if (!this.up()) return null
    const k = this.#keys
    try {
      for (let i = 0; i < MAX_CAS_TRIES; i++) {
        const [raw, version] = await this.#client.mget(k.state, k.version)
        const lost = (raw === null || raw === undefined) && seed !== null && Object.keys(seed.rollouts).length > 0
        if (lost && i === 0) this.#o.log.warn({ store: 'redis', version: seed.version }, 'state missing in Redis: restoring this replica\'s copy')
        const doc = typeof raw === 'string' ? JSON.parse(raw) as StateDoc : lost ? structuredClone(seed) : emptyDoc()
        const audit = applyOp(doc, op, now)
        if (audit.length === 0 && !lost) return { doc, audit }
        const entries = audit.map((e) => JSON.stringify(e))
        if (audit.length === 0) entries.push(JSON.stringify({ at: new Date(now).toISOString(), actor: 'dualtrack', source: 'admin', action: 'restore', rollout: null, before: null, after: { version: doc.version }, reason: 'state missing in Redis' }))
        const ok = await this.#client.eval(CAS_SCRIPT, 3, k.state, k.version, k.audit, version ?? '', JSON.stringify(doc), String(doc.version), k.channel, String(MAX_AUDIT_ENTRIES - 1), ...entries)
        if (ok === 1) {
          this.#known = Math.max(this.#known, doc.version)
          this.#cache(doc)
          return { doc, audit }
        }
        // another replica changed the doc between the read and the write: read again and re-apply
      }
      throw new DUALTRACK_ERR_STORE_CONFLICT(MAX_CAS_TRIES)
    } catch (err) {
      this.#failedUp = true
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
      const got = await this.#client.eval(LEASE_SCRIPT, 1, `${this.#keys.lease}${name}`, holder, String(ttlMs))
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

  // the request path. One server or a Sentinel master: the lookups of one event-loop turn are read
  // by one MGET, sent when the turn's I/O is done (where auto-pipelining would send their GETs):
  // ioredis spends ~8 µs of CPU on each command (its objects, its timeout timer, its promise), and
  // an MGET of the bench's ~8 keys costs about what one GET does (bench/micro/redis-lookup.js).
  // A Cluster spreads owner keys over its slots, where an MGET cannot go: a GET each there
  getOwner (rollout: string, orderId: string): Promise<StoredOwner | undefined> {
    const key = `${this.#keys.aff}${rollout}:${orderId}`
    if (!this.#batchReads) {
      try {
        return this.#aff.get(key).then(storedOwner)
      } catch (err) {
        return Promise.reject(err as Error)
      }
    }
    let b = this.#reads
    if (b === undefined || b.keys.length >= MGET_MAX_KEYS) {
      b = this.#reads = { keys: [], resolve: [], reject: [] }
      setImmediate(this.#readTurn, b)
    }
    const batch = b
    batch.keys.push(key)
    return new Promise((resolve, reject) => {
      batch.resolve.push(resolve)
      batch.reject.push(reject)
    })
  }

  // every lookup of the turn gets its own key's answer, or the MGET's error (as each GET would have)
  readonly #readTurn = (b: ReadTurn): void => {
    if (this.#reads === b) this.#reads = undefined
    let read: Promise<(string | null)[]>
    try {
      read = (this.#aff as Redis).mget(b.keys)
    } catch (err) {
      read = Promise.reject(err as Error)
    }
    read.then((values) => {
      for (let i = 0; i < b.resolve.length; i++) (b.resolve[i] as ReadTurn['resolve'][number])(storedOwner(values[i] ?? null))
    }, (err: Error) => {
      for (let i = 0; i < b.reject.length; i++) (b.reject[i] as ReadTurn['reject'][number])(err)
    })
  }

  async setOwner (rollout: string, orderId: string, owner: BackendName, ttlMs: number, learnedAt = Date.now()): Promise<void | 'unreplicated'> {
    // NX: an order's owner is whoever created it; a later 2xx that names it does not move it
    const set = this.#own.set(`${this.#keys.aff}${rollout}:${orderId}`, `${owner} ${learnedAt}`, 'PX', ttlMs, 'NX')
    if (this.#waitMs === 0) {
      await set
      return
    }
    const replicated = this.#replicated()
    await set
    return await replicated ? undefined : 'unreplicated'
  }

  // one WAIT covers every write sent before it on its connection: the owner writes of one event-loop
  // turn share one (a WAIT blocks the connection, so one per write would queue them all)
  #replicated (): Promise<boolean> {
    let w = this.#waiting
    if (w === undefined) {
      w = new Promise<boolean>((resolve) => {
        process.nextTick(() => {
          this.#waiting = undefined
          this.#own.wait(1, this.#waitMs).then((n) => resolve(n >= 1), () => resolve(false))
        })
      })
      this.#waiting = w
    }
    return w
  }

  async ownerRecord (rollout: string, orderId: string): Promise<OwnerRecord | undefined> {
    const p = parseOwner(await this.#aff.get(`${this.#keys.aff}${rollout}:${orderId}`))
    return p === undefined ? undefined : { rollout, orderId, owner: p.owner, learnedAt: p.at > 0 ? new Date(p.at).toISOString() : null }
  }

  /** SCAN (never KEYS) every master, a batch of at most SCAN_COUNT keys in memory at a time */
  async * owners (filter: { backend?: BackendName, rollout?: string }): AsyncIterable<OwnerRecord[]> {
    const match = `${globEscape(this.#keys.aff)}${filter.rollout === undefined ? '*' : `${globEscape(filter.rollout)}:*`}`
    // a connection of its own, with a patient timeout: an export of millions never delays a state
    // change, and a slow batch is not mistaken for a dead store
    const client = createRedisClient(this.#o.connection, { commandTimeoutMs: EXPORT_COMMAND_TIMEOUT_MS })
    client.on('error', () => { /* the commands below fail and end the export */ })
    try {
      await client.connect()
      for (const node of mastersOf(client)) yield * this.#scanNode(node, match, filter.backend)
    } finally {
      client.disconnect()
    }
  }

  async * #scanNode (node: Redis, match: string, backend: BackendName | undefined): AsyncIterable<OwnerRecord[]> {
    const base = this.#keys.aff
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT)
      cursor = next
      if (keys.length === 0) continue
      // GETs, not MGET: a Cluster node refuses a multi-key command across slots
      const p = node.pipeline()
      for (const key of keys) p.get(key)
      const values = await p.exec() ?? []
      const batch: OwnerRecord[] = []
      keys.forEach((key, i) => {
        const [err, value] = values[i] ?? [new Error('no answer'), null]
        // a key that failed to read fails the export: a ledger that silently drops owners is worse
        if (err) throw err
        const rec = parseOwner((value as string | null | undefined) ?? null)
        if (rec === undefined || (backend !== undefined && rec.owner !== backend)) return
        const rest = key.slice(base.length)
        const c = rest.indexOf(':')
        batch.push({ rollout: rest.slice(0, c), orderId: rest.slice(c + 1), owner: rec.owner, learnedAt: rec.at > 0 ? new Date(rec.at).toISOString() : null })
      })
      if (batch.length > 0) yield batch
    } while (cursor !== '0')
  }

  recoveredAt (): number { return this.#affBack }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#poll)
    for (const c of this.#clients()) c.disconnect()
  }

  // the version poll and the message both land here: fetch the doc when it is newer than ours
  async #check (): Promise<void> {
    if (!this.up()) return
    try {
      const v = Number(await this.#client.get(this.#keys.version) ?? 0)
      // the state's slot answers again after a change failed (a Cluster shard failed over): send
      // what waited, as a reconnect does; without it that change stayed on this replica for good
      if (this.#failedUp) {
        this.#failedUp = false
        this.#o.log.info({ store: 'redis' }, 'state store answers again')
        this.#reconnect?.()
      }
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
