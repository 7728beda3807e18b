// the file store: one replica, no dependencies. The state is one JSON file written atomically
// (write to a temp file, then rename over); order owners go to an append-only journal so that
// recording one costs an append, not a rewrite, and survive a restart up to maxEntries (LRU)
import { mkdirSync, readFileSync, renameSync, writeFileSync, appendFileSync, existsSync } from 'node:fs'
import { dirname } from 'node:path'
import type { BackendName } from '../config/index.js'
import { applyOp, emptyDoc } from './ops.js'
import { AffinityLru } from './lru.js'
import { readStateFile, writeStateFile, type FileShape } from './state-file.js'
import { MAX_AUDIT_ENTRIES, type AuditEntry, type Op, type OwnerRecord, type StoredOwner, type StateDoc, type StateStore } from './types.js'

export const DEFAULT_AFFINITY_MAX_ENTRIES = 1_000_000
/** owners per batch of a ledger export */
export const OWNER_BATCH = 1000

export class FileStore implements StateStore {
  readonly kind = 'file' as const
  readonly #file: string
  readonly #journal: string
  #shape: FileShape
  readonly #lru: AffinityLru
  #journalLines = 0

  constructor (file: string, opts: { affinityMaxEntries?: number } = {}) {
    this.#file = file
    this.#journal = `${file}.affinity.log`
    this.#shape = readStateFile(file) ?? { doc: emptyDoc(), audit: [] }
    this.#lru = new AffinityLru(opts.affinityMaxEntries ?? DEFAULT_AFFINITY_MAX_ENTRIES)
    this.#replayJournal()
  }

  async load (): Promise<StateDoc | null> {
    return this.#shape.doc.version === 0 && Object.keys(this.#shape.doc.rollouts).length === 0 ? null : structuredClone(this.#shape.doc)
  }

  async commit (op: Op, now: number, _seed: StateDoc | null = null): Promise<{ doc: StateDoc, audit: AuditEntry[] }> {
    const doc = structuredClone(this.#shape.doc)
    const audit = applyOp(doc, op, now)
    if (audit.length > 0) {
      const next = { doc, audit: [...audit.slice().reverse(), ...this.#shape.audit].slice(0, MAX_AUDIT_ENTRIES) }
      writeStateFile(this.#file, next)
      this.#shape = next
    }
    return { doc: structuredClone(doc), audit }
  }

  async audit (limit: number): Promise<AuditEntry[]> {
    return this.#shape.audit.slice(0, limit)
  }

  onRemoteChange (): void { /* one replica: nothing changes elsewhere */ }
  onReconnect (): void { /* a file is always there */ }
  up (): boolean { return true }
  // one replica by definition: it always leads
  async lease (): Promise<boolean> { return true }

  async getOwner (rollout: string, orderId: string): Promise<StoredOwner | undefined> {
    const key = `${rollout}\t${orderId}`
    const now = Date.now()
    const owner = this.#lru.get(key, now)
    if (owner === undefined) return undefined
    const at = this.#lru.peek(key, now)?.at ?? 0
    return { owner, at: at > 0 ? at : null }
  }

  /** synchronous inside: the owner is on disk (page cache) before the answer goes back */
  async setOwner (rollout: string, orderId: string, owner: BackendName, ttlMs: number, learnedAt?: number): Promise<void> {
    const key = `${rollout}\t${orderId}`
    const now = Date.now()
    // an order's owner is whoever created it; a later 2xx that names it does not move it
    if (this.#lru.get(key, now) !== undefined) return
    const expires = now + ttlMs
    this.#lru.set(key, owner, expires, learnedAt ?? now)
    mkdirSync(dirname(this.#journal), { recursive: true })
    appendFileSync(this.#journal, `${key}\t${owner}\t${expires}\t${learnedAt ?? now}\n`)
    // the journal is rewritten from the LRU when it has grown well past what the LRU keeps
    if (++this.#journalLines > Math.max(1000, this.#lru.size * 2)) this.#compact()
  }

  get affinitySize (): number { return this.#lru.size }

  async ownerRecord (rollout: string, orderId: string): Promise<OwnerRecord | undefined> {
    const e = this.#lru.peek(`${rollout}\t${orderId}`, Date.now())
    return e === undefined ? undefined : { rollout, orderId, owner: e.owner, learnedAt: e.at > 0 ? new Date(e.at).toISOString() : null }
  }

  /** the owners in memory, a batch at a time; a batch is yielded before the next is read */
  async * owners (filter: { backend?: BackendName, rollout?: string }): AsyncIterable<OwnerRecord[]> {
    const now = Date.now()
    let batch: OwnerRecord[] = []
    // a snapshot of the keys (a pointer each; the entries themselves are in memory anyway): a lookup
    // meanwhile moves its entry to the end of the map, and a live iterator would meet it twice
    for (const key of [...this.#lru.keys()]) {
      const e = this.#lru.peek(key, now)
      if (e === undefined || (filter.backend !== undefined && e.owner !== filter.backend)) continue
      const tab = key.indexOf('\t')
      const rollout = key.slice(0, tab)
      if (filter.rollout !== undefined && rollout !== filter.rollout) continue
      batch.push({ rollout, orderId: key.slice(tab + 1), owner: e.owner, learnedAt: e.at > 0 ? new Date(e.at).toISOString() : null })
      if (batch.length >= OWNER_BATCH) {
        yield batch
        batch = []
      }
    }
    if (batch.length > 0) yield batch
  }

  #replayJournal (): void {
    if (!existsSync(this.#journal)) return
    const now = Date.now()
    let lines = 0
    for (const line of readFileSync(this.#journal, 'utf8').split('\n')) {
      const [rollout, orderId, owner, expires, at] = line.split('\t')
      if (rollout === undefined || orderId === undefined || (owner !== 'legacy' && owner !== 'new')) continue
      lines++
      const exp = Number(expires)
      if (exp > now) this.#lru.set(`${rollout}\t${orderId}`, owner, exp, Number(at ?? 0) || 0)
    }
    this.#journalLines = lines
    if (lines > this.#lru.size * 2) this.#compact()
  }

  #compact (): void {
    const now = Date.now()
    const out: string[] = []
    for (const [k, e] of this.#lru.entries()) if (e.expires > now) out.push(`${k}\t${e.owner}\t${e.expires}\t${e.at}\n`)
    const tmp = `${this.#journal}.${process.pid}.tmp`
    writeFileSync(tmp, out.join(''))
    renameSync(tmp, this.#journal)
    this.#journalLines = out.length
  }

  async close (): Promise<void> { /* every write is already on disk */ }
}
