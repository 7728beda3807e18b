// one draining flag for the whole process: the data plane closes keep-alive connections after their
// next answer, /readyz answers 503, and close() stops everything in order (DESIGN.md §7)
import type { FastifyInstance } from 'fastify'
import type { DataPlane } from '../proxy/index.js'

export interface Closeable { close (): unknown }

export interface LifecycleParts {
  readonly gateway: FastifyInstance
  readonly admin: FastifyInstance
  readonly dataPlane: DataPlane
  /** stopped before the listeners close: timers and watchers */
  readonly timers: readonly { stop (): void }[]
  /** closed after the listeners, in order: shadow pools, the store */
  readonly after: readonly Closeable[]
  /** server.drainDelayMs of the config in force */
  drainDelayMs (): number
}

export interface Lifecycle {
  draining (): boolean
  /** stop accepting, finish in-flight requests, close pools and stores */
  close (): Promise<void>
  /** SIGTERM: not ready at once, keep serving for server.drainDelayMs, then close */
  shutdown (): Promise<void>
}

/** how often idle keep-alive connections are swept while the gateway closes */
const SWEEP_MS = 100

export function createLifecycle (p: LifecycleParts): Lifecycle {
  const { gateway, admin, dataPlane } = p
  let closing: Promise<void> | undefined
  const closeAll = async () => {
    for (const t of p.timers) t.stop()
    // a keep-alive connection busy when close() began turns idle later: close those as they do
    const sweep = setInterval(() => gateway.server.closeIdleConnections(), SWEEP_MS)
    try {
      await gateway.close()
    } finally {
      clearInterval(sweep)
    }
    await admin.close()
    for (const c of p.after) await c.close()
  }
  return {
    draining: () => dataPlane.draining,
    close () {
      dataPlane.draining = true
      return (closing ??= closeAll())
    },
    async shutdown () {
      // clients reconnect elsewhere after their next answer; load balancers see /readyz fail and
      // stop sending before the listener closes
      dataPlane.draining = true
      const delay = p.drainDelayMs()
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      await (closing ??= closeAll())
    }
  }
}
