// load config, build, listen, and shut down gracefully (DESIGN.md §7)
import closeWithGrace from 'close-with-grace'
import cluster from 'node:cluster'
import { runPrimary, workerCount, workerIndex } from './cluster/index.js'
import type { AddressInfo } from 'node:net'
import { loadConfigFile, type Config } from './config/index.js'
import { buildApp, type Dualtrack } from './app.js'
import { createLogger } from './logger.js'

export interface StartOptions {
  readonly configPath: string
  readonly pretty?: boolean
  readonly env?: NodeJS.ProcessEnv
  /** override listen ports (the demo passes 0s) */
  readonly overrides?: (cfg: Config) => Config
  /** install SIGTERM/SIGINT handling (the CLI does; tests do not) */
  readonly signals?: boolean
  /** reload when the config file changes */
  readonly watch?: boolean
}

export interface Running {
  /** undefined in the primary process of server.workers (the workers hold the apps) */
  readonly app: Dualtrack | undefined
  readonly gatewayUrl: string
  readonly adminUrl: string
  stop(): Promise<void>
}

/** exit within the drain delay plus this long after a signal */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000

export async function startGateway (o: StartOptions): Promise<Running> {
  let config = loadConfigFile(o.configPath, o.env ?? process.env)
  if (o.overrides) config = o.overrides(config)
  const logger = createLogger(o.pretty)
  const workers = workerCount(config.server.workers)
  if (workers > 1 && cluster.isPrimary) {
    const primary = runPrimary(config, workers, logger)
    let stopped: Promise<void> | undefined
    const stop = () => (stopped ??= primary.stop())
    if (o.signals) {
      closeWithGrace({ delay: config.server.drainDelayMs + DEFAULT_SHUTDOWN_GRACE_MS + 2000, logger }, async ({ signal, err }) => {
        if (err) logger.error({ err }, 'primary shutting down after an error')
        else logger.info({ signal }, 'primary shutting down: draining workers')
        await stop()
      })
    }
    return { app: undefined, gatewayUrl: `http://${config.server.host}:${config.server.port}`, adminUrl: `http://${config.admin.host}:${config.admin.port}`, stop }
  }
  const app = await buildApp(config, { logger, watch: o.watch ?? false, env: o.env ?? process.env })
  await app.gateway.listen({ host: config.server.host, port: config.server.port })
  // with server.workers, the first worker alone serves the admin API (state changes reach the
  // others through the store; /metrics there aggregates every worker)
  const index = workerIndex()
  if (index === undefined || index === 0) await app.admin.listen({ host: config.admin.host, port: config.admin.port })
  const ga = app.gateway.server.address() as AddressInfo
  const aa = app.admin.server.address() as AddressInfo | null
  const gatewayUrl = `http://${hostOf(ga)}:${ga.port}`
  const adminUrl = aa === null ? '' : `http://${hostOf(aa)}:${aa.port}`
  if (aa !== null) logger.info({ gateway: gatewayUrl, admin: adminUrl, config: config.file, ...(index !== undefined ? { worker: index } : {}) }, 'dualtrack listening')
  else logger.info({ gateway: gatewayUrl, worker: index }, 'dualtrack worker listening')
  // whoever waits for this line (a person, a supervisor, a test) sees it now
  logger.flush()
  let stopping: Promise<void> | undefined
  const stop = () => (stopping ??= app.shutdown())
  if (index !== undefined) {
    // the primary asks a worker to drain by message, not by signal: a Ctrl-C already signalled
    // the whole process group, and a second signal means "exit now"
    process.on('message', (m: unknown) => {
      if ((m as { dualtrack?: string } | null)?.dualtrack === 'stop') void stop().then(() => process.exit(0))
    })
    process.on('disconnect', () => { void stop().then(() => process.exit(0)) })
  }
  if (o.signals) {
    closeWithGrace({ delay: config.server.drainDelayMs + DEFAULT_SHUTDOWN_GRACE_MS, logger }, async ({ signal, err }) => {
      if (err) logger.error({ err }, 'shutting down after an error')
      else logger.info({ signal, drainDelayMs: config.server.drainDelayMs }, 'shutting down')
      await stop()
    })
  }
  return { app, gatewayUrl, adminUrl, stop }
}

function hostOf (a: AddressInfo): string {
  if (a.address === '0.0.0.0' || a.address === '::') return '127.0.0.1'
  return a.family === 'IPv6' ? `[${a.address}]` : a.address
}
