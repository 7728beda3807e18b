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
 * keys remembered for a fixed time (ids the store did not know). All live equally long, so the
 * order they were added in is expiry order: a queue of adds, expired keys leave from its front as
 * new ones come, and a lookup is one Map read. The Map holds each key's place in the queue (a key
 * added again, or deleted, leaves its old place behind, skipped when it comes up); it is never
 * walked: a Map emptied at the front keeps the holes until it rehashes, and walking from its start
 * crossed them all, ~1 µs per add with a second of lookups kept (issue 17's profile)
 */
export class ExpiringKeys {
  readonly #ttlMs: number
  readonly #max: number
  // key -> its place in the queue (a sequence number: #base is the place of #keys[0])
  readonly #map = new Map<string, number>()
  #keys: string[] = []
  #until: number[] = []
  #head = 0
  #base = 0
  constructor (ttlMs: number, max: number) { this.#ttlMs = ttlMs; this.#max = max }
  has (key: string, now: number): boolean {
    const at = this.#map.get(key)
    return at !== undefined && (this.#until[at - this.#base] as number) > now
  }

  /** remember key until (since + ttl) */
  add (key: string, since: number): void {
    this.#map.set(key, this.#base + this.#keys.length)
    this.#keys.push(key)
    this.#until.push(since + this.#ttlMs)
    // from the front: places left behind go; the oldest live key goes when expired or past max
    const keys = this.#keys
    while (this.#head < keys.length) {
      const k = keys[this.#head] as string
      if (this.#map.get(k) === this.#base + this.#head) {
        if ((this.#until[this.#head] as number) > since && this.#map.size <= this.#max) break
        this.#map.delete(k)
      }
      this.#head++
    }
    // the queue drops what it left behind once that is most of it
    if (this.#head >= 1024 && this.#head * 2 >= keys.length) {
      this.#keys = keys.slice(this.#head)
      this.#until = this.#until.slice(this.#head)
      this.#base += this.#head
      this.#head = 0
    }
  }

  delete (key: string): void { this.#map.delete(key) }
  get size (): number { return this.#map.size }
}
