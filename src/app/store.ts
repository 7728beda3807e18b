// which state store this process uses, and how this process reports metrics: a worker of
// server.workers reaches the one file store and the aggregated /metrics through the primary
// (injected here, so state/ never depends on cluster/)
import type { FastifyBaseLogger } from 'fastify'
import { AggregatorRegistry } from 'prom-client'
import type { Config } from '../config/index.js'
import { createStateStore, type StateStore } from '../state/index.js'
import { IpcStore, callPrimary, workerIndex } from '../cluster/index.js'
import type { Metrics } from '../metrics/index.js'

export const inCluster = (): boolean => workerIndex() !== undefined

export async function createStore (config: Config, log: FastifyBaseLogger): Promise<StateStore> {
  if (config.state.store === 'file' && inCluster()) return new IpcStore()
  return await createStateStore(config, log)
}

/** the text of GET /metrics: this process's registry, or every worker's aggregated by the primary */
export function metricsText (metrics: Metrics): () => Promise<string> {
  if (!inCluster()) return () => metrics.text()
  // constructing one installs prom-client's worker-side listener that answers the primary
  void new AggregatorRegistry()
  AggregatorRegistry.setRegistries([metrics.registry])
  return () => callPrimary<string>('metrics')
}
