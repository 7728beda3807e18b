// the file store as a worker sees it: every call goes to the primary process over IPC, where the
// one FileStore lives; the primary sends every changed doc to all workers, so a rollback taken by
// one worker is in force in the others within an IPC round trip
import type { BackendName } from '../config/index.js'
import type { AuditEntry, Op, OwnerRecord, StateDoc, StoredOwner, StateStore } from '../state/index.js'
import { DUALTRACK_ERR_IPC } from '../errors.js'

export const IPC_TIMEOUT_MS = 5000

export interface IpcRequest { readonly dualtrack: 'req', readonly id: number, readonly call: string, readonly args: unknown[] }
export interface IpcReply { readonly dualtrack: 'res', readonly id: number, readonly ok: boolean, readonly value?: unknown, readonly error?: string }
export interface IpcDoc { readonly dualtrack: 'doc', readonly doc: StateDoc }

type Pending = { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

// one channel per worker process: requests to the primary and the docs it broadcasts
let seq = 0
const pending = new Map<number, Pending>()
const docListeners = new Set<(doc: StateDoc) => void>()
let listening = false

function listen (): void {
  if (listening) return
  listening = true
  process.on('message', (m: unknown) => {
    const msg = m as IpcReply | IpcDoc
    if (msg?.dualtrack === 'doc') for (const fn of docListeners) fn(msg.doc)
    else if (msg?.dualtrack === 'res') {
      const p = pending.get(msg.id)
      if (p === undefined) return
      pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.value)
      else p.reject(new DUALTRACK_ERR_IPC(msg.error ?? 'primary refused'))
    }
  })
}

/** ask the primary process (file store calls, aggregated metrics) */
export function callPrimary<T> (call: string, ...args: unknown[]): Promise<T> {
  if (process.send === undefined) return Promise.reject(new DUALTRACK_ERR_IPC('not a worker: no IPC channel'))
  listen()
  const id = ++seq
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id)
      reject(new DUALTRACK_ERR_IPC(`the primary did not answer ${call} in ${IPC_TIMEOUT_MS} ms`))
    }, IPC_TIMEOUT_MS)
    timer.unref()
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
    process.send?.({ dualtrack: 'req', id, call, args } satisfies IpcRequest)
  })
}

export class IpcStore implements StateStore {
  readonly kind = 'file' as const
  #remote: ((doc: StateDoc) => void) | undefined
  readonly #onDoc = (doc: StateDoc) => this.#remote?.(doc)

  constructor () {
    listen()
    docListeners.add(this.#onDoc)
  }

  #call<T> (call: string, ...args: unknown[]): Promise<T> {
    return callPrimary<T>(call, ...args)
  }

  load (): Promise<StateDoc | null> { return this.#call('load') }

  async commit (op: Op, now: number, seed: StateDoc | null): Promise<{ doc: StateDoc, audit: AuditEntry[] } | null> {
    if (op.desc === undefined) throw new TypeError('an op without a description cannot cross to the primary')
    try {
      return await this.#call('commit', op.desc, now, seed)
    } catch {
      return null
    }
  }

  audit (limit: number): Promise<AuditEntry[]> { return this.#call('audit', limit) }
  getOwner (rollout: string, orderId: string): Promise<StoredOwner | undefined> { return this.#call('getOwner', rollout, orderId) }
  setOwner (rollout: string, orderId: string, owner: BackendName, ttlMs: number, learnedAt?: number): Promise<void | 'unreplicated'> { return this.#call('setOwner', rollout, orderId, owner, ttlMs, learnedAt) }
  ownerRecord (rollout: string, orderId: string): Promise<OwnerRecord | undefined> { return this.#call('ownerRecord', rollout, orderId) }
  // the export runs in the primary, where the owners are; a batch crosses at a time
  async * owners (filter: { backend?: BackendName, rollout?: string }): AsyncIterable<OwnerRecord[]> {
    const id = await this.#call<number>('ownersOpen', filter)
    for (;;) {
      const batch = await this.#call<OwnerRecord[] | null>('ownersNext', id)
      if (batch === null) return
      yield batch
    }
  }
  lease (): Promise<boolean> { return Promise.resolve(true) }
  onRemoteChange (cb: (doc: StateDoc) => void): void { this.#remote = cb }
  onReconnect (): void { /* the primary is always there while this worker lives */ }
  up (): boolean { return process.connected === true }

  async close (): Promise<void> {
    docListeners.delete(this.#onDoc)
  }
}
