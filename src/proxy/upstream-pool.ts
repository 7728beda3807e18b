// one undici Pool per backend, built at start with every timeout explicit, closed on shutdown
import { Pool } from 'undici'
import { backendTarget, type BackendName, type Config } from '../config/index.js'

export interface Upstream {
  readonly name: BackendName
  readonly origin: string
  /** path prefix of the backend URL ("" for none), prepended to every forwarded path */
  readonly basePath: string
  readonly pool: Pool
  /** overall deadline of one request */
  readonly timeoutMs: number
}

export type Upstreams = Readonly<Record<BackendName, Upstream>>

export function createUpstream (name: BackendName, cfg: Config['backends']['legacy']): Upstream {
  const { origin, basePath } = backendTarget(cfg.url)
  const pool = new Pool(origin, {
    connections: cfg.connections,
    connectTimeout: cfg.connectTimeoutMs,
    headersTimeout: cfg.timeoutMs,
    bodyTimeout: cfg.timeoutMs,
    // shorter than the backend's idle timeout, so the gateway never reuses a socket the backend is closing
    keepAliveTimeout: cfg.keepAliveTimeoutMs,
    keepAliveMaxTimeout: cfg.keepAliveTimeoutMs,
    pipelining: 1
  })
  return { name, origin, basePath, pool, timeoutMs: cfg.timeoutMs }
}

export function createUpstreams (cfg: Config['backends']): Upstreams {
  return Object.freeze({ legacy: createUpstream('legacy', cfg.legacy), new: createUpstream('new', cfg.new) })
}

export async function closeUpstreams (u: Upstreams): Promise<void> {
  await Promise.all([u.legacy.pool.close(), u.new.pool.close()])
}
