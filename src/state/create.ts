import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config/index.js'
import { FileStore } from './file-store.js'
import { RedisStore } from './redis-store.js'
import { redisConnectionOf } from './redis-client.js'
import type { StateStore, YamlView } from './types.js'

/** the file store of a config: one replica (or the primary of server.workers), no dependencies */
export function createFileStore (cfg: Config): FileStore {
  // the affinity table keeps as many owners as the largest rollout allows
  const affinityMaxEntries = Math.max(1, ...Object.values(cfg.rollouts).map((r) => r.affinity?.maxEntries ?? 1))
  return new FileStore(cfg.state.file, { affinityMaxEntries })
}

/** the store state.store names; a worker of server.workers gets its IPC store from the composition root */
export async function createStateStore (cfg: Config, log: FastifyBaseLogger): Promise<StateStore> {
  if (cfg.state.store === 'file') return createFileStore(cfg)
  const r = cfg.state.redis
  const s = new RedisStore({ connection: redisConnectionOf(r), prefix: r.prefix, cacheFile: cfg.state.file, log, ...(r.replicaWaitMs !== undefined ? { replicaWaitMs: r.replicaWaitMs } : {}) })
  await s.connect()
  return s
}

/** the YAML-owned fields of every rollout */
export function yamlViews (cfg: Config): Record<string, YamlView> {
  const out: Record<string, YamlView> = {}
  for (const [name, r] of Object.entries(cfg.rollouts)) {
    const segments: Record<string, number> = {}
    for (const s of r.segments ?? []) if (s.percent !== undefined) segments[s.name] = s.percent
    out[name] = { percent: r.percent, regions: { ...(r.regions?.percent ?? {}) }, segments }
  }
  return out
}
