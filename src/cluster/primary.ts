// server.workers: N worker processes behind one port (node:cluster). The primary forks them,
// restarts one that dies, owns the file store for all of them (workers reach it over IPC),
// aggregates their metrics for /metrics, and on SIGTERM lets each worker drain before it exits.
// With the Redis store the workers are simply replicas that share Redis.
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { AggregatorRegistry } from 'prom-client'
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import { createFileStore, opFromDesc, type OpDesc, type OwnerRecord, type StateDoc } from '../state/index.js'
import { DUALTRACK_ERR_IPC } from '../errors.js'
import type { IpcReply, IpcRequest } from './ipc-store.js'

export const WORKER_INDEX_ENV = 'DUALTRACK_WORKER_INDEX'
export const RESTART_DELAY_MS = 1000

/** how many workers `server.workers` asks for on this machine */
export function workerCount (setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting
}

/** the index of this worker (0 serves the admin API), or undefined outside a cluster */
export function workerIndex (): number | undefined {
  const v = process.env[WORKER_INDEX_ENV]
  return cluster.isWorker && v !== undefined ? Number(v) : undefined
}

export interface Primary {
  readonly workers: () => number
  /** SIGHUP: every worker re-reads the config file */
  reload (): void
  stop (): Promise<void>
}

export function runPrimary (config: Config, count: number, log: Logger): Primary {
  const store = config.state.store === 'file' ? createFileStore(config) : undefined
  const aggregator = new AggregatorRegistry()
  const byIndex = new Map<number, Worker>()
  let stopping = false

  // ledger exports in progress for the workers, a batch per call (an abandoned one is one iterator)
  const exports = new Map<number, AsyncIterator<OwnerRecord[]>>()
  let exportSeq = 0
  const broadcast = (doc: StateDoc) => {
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send({ dualtrack: 'doc', doc })
  }

  const handle = async (req: IpcRequest): Promise<unknown> => {
    const a = req.args
    if (req.call === 'metrics') return await aggregator.clusterMetrics()
    if (store === undefined) throw new DUALTRACK_ERR_IPC(`${req.call}: the primary holds no store (state.store is redis)`)
    switch (req.call) {
      case 'load': return await store.load()
      case 'commit': {
        const res = await store.commit(opFromDesc(a[0] as OpDesc), a[1] as number, a[2] as StateDoc | null)
        if (res.audit.length > 0) broadcast(res.doc)
        return res
      }
      case 'audit': return await store.audit(a[0] as number)
      case 'getOwner': return await store.getOwner(a[0] as string, a[1] as string)
      case 'setOwner': return await store.setOwner(a[0] as string, a[1] as string, a[2] as 'legacy' | 'new', a[3] as number, a[4] as number | undefined)
      case 'ownerRecord': return await store.ownerRecord(a[0] as string, a[1] as string)
      case 'ownersOpen': {
        const id = ++exportSeq
        // an export a client abandoned is dropped once 16 newer ones started
        if (exports.size >= 16) exports.delete(exports.keys().next().value as number)
        exports.set(id, store.owners(a[0] as { backend?: 'legacy' | 'new', rollout?: string })[Symbol.asyncIterator]())
        return id
      }
      case 'ownersNext': {
        const it = exports.get(a[0] as number)
        const next = it === undefined ? undefined : await it.next()
        if (next === undefined || next.done === true) { exports.delete(a[0] as number); return null }
        return next.value
      }
      default: throw new DUALTRACK_ERR_IPC(`unknown call ${req.call}`)
    }
  }

  const fork = (index: number) => {
    const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index) })
    byIndex.set(index, w)
    w.on('message', (m: unknown) => {
      const req = m as IpcRequest
      if (req?.dualtrack !== 'req') return
      handle(req).then(
        (value) => { if (w.isConnected()) w.send({ dualtrack: 'res', id: req.id, ok: true, value } satisfies IpcReply) },
        (err: Error) => { if (w.isConnected()) w.send({ dualtrack: 'res', id: req.id, ok: false, error: err.message } satisfies IpcReply) }
      )
    })
    w.on('exit', (code, signal) => {
      if (byIndex.get(index) === w) byIndex.delete(index)
      if (stopping) return
      log.error({ worker: index, code, signal }, 'worker died: starting another')
      setTimeout(() => { if (!stopping) fork(index) }, RESTART_DELAY_MS).unref()
    })
  }
  for (let i = 0; i < count; i++) fork(i)
  log.info({ workers: count, store: config.state.store }, 'dualtrack primary started')

  return {
    workers: () => byIndex.size,
    reload () {
      for (const w of byIndex.values()) if (w.isConnected()) w.send({ dualtrack: 'reload' })
    },
    async stop () {
      stopping = true
      const exits = [...byIndex.values()].map((w) => new Promise<void>((resolve) => {
        if (w.isDead()) return resolve()
        w.once('exit', () => resolve())
        // each worker drains (not ready, drain delay, finish in-flight) and exits on its own
        if (w.isConnected()) w.send({ dualtrack: 'stop' })
        else w.process.kill('SIGTERM')
      }))
      await Promise.all(exits)
      await store?.close()
    }
  }
}
