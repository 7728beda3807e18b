import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config/index.js'
import { FileStore } from './file-store.js'
import { RedisStore } from './redis-store.js'
import cluster from 'node:cluster'
import { IpcStore } from '../cluster/ipc-store.js'
import type { StateStore, YamlView } from './types.js'

export async function createStateStore (cfg: Config, log: FastifyBaseLogger): Promise<StateStore> {
  const maxEntries = Math.max(1, ...Object.values(cfg.rollouts).map((r) => r.affinity?.maxEntries ?? 1))
  // a worker of server.workers reaches the one file store through the primary
  if (cfg.state.store === 'file' && cluster.isWorker && process.env.DUALTRACK_WORKER_INDEX !== undefined) return new IpcStore()
  if (cfg.state.store === 'file') return new FileStore(cfg.state.file, { affinityMaxEntries: maxEntries })
  const s = new RedisStore({ url: cfg.state.redis.url, prefix: cfg.state.redis.prefix, cacheFile: cfg.state.file, log })
  await s.connect()
  return s
}

/** the YAML-owned fields of every rollout */
export function yamlViews (cfg: Config): Record<string, YamlView> {
  const out: Record<string, YamlView> = {}
  for (const [name, r] of Object.entries(cfg.rollouts)) out[name] = { percent: r.percent, regions: { ...(r.regions?.percent ?? {}) } }
  return out
}
