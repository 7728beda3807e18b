// a bounded map of order id -> owner with expiry: the per-replica owner cache and the file store's
// owner table (least recently used out first)
import type { BackendName } from '../config/index.js'

/** a bounded map of order id -> owner with expiry, least recently used out first */
export class AffinityLru<V = BackendName> {
  readonly #max: number
  // at: when the owner was learned (ms; 0 when unknown), for the ownership ledger
  readonly #map = new Map<string, { owner: V, expires: number, at: number }>()
  constructor (max: number) { this.#max = max }
  get (key: string, now: number): V | undefined {
    const e = this.#map.get(key)
    if (e === undefined) return undefined
    if (e.expires <= now) { this.#map.delete(key); return undefined }
    // refresh recency: Map keeps insertion order
    this.#map.delete(key)
    this.#map.set(key, e)
    return e.owner
  }
  /** the whole entry, without touching its recency */
  peek (key: string, now: number): { owner: V, expires: number, at: number } | undefined {
    const e = this.#map.get(key)
    return e === undefined || e.expires <= now ? undefined : e
  }
  set (key: string, owner: V, expires: number, at = 0): void {
    this.#map.delete(key)
    this.#map.set(key, { owner, expires, at })
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string)
  }
  get size (): number { return this.#map.size }
  keys (): IterableIterator<string> { return this.#map.keys() }
  entries (): IterableIterator<[string, { owner: V, expires: number, at: number }]> { return this.#map.entries() }
}


/**
 * keys remembered for a fixed time (ids the store did not know). All live equally long, so
 * insertion order is expiry order: expired keys leave from the front as new ones come, and a
 * lookup is one Map read (no recency to refresh, no object per key)
 */
export class ExpiringKeys {
  readonly #ttlMs: number
  readonly #max: number
  readonly #map = new Map<string, number>()
  constructor (ttlMs: number, max: number) { this.#ttlMs = ttlMs; this.#max = max }
  has (key: string, now: number): boolean {
    const until = this.#map.get(key)
    return until !== undefined && until > now
  }

  /** remember key until (since + ttl) */
  add (key: string, since: number): void {
    this.#map.delete(key)
    this.#map.set(key, since + this.#ttlMs)
    for (const [k, until] of this.#map) {
      if (until > since) break
      this.#map.delete(k)
    }
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string)
  }

  delete (key: string): void { this.#map.delete(key) }
  get size (): number { return this.#map.size }
}
