// load config, build, listen, and shut down gracefully (DESIGN.md §7)
import cluster from 'node:cluster'
import { isatty } from 'node:tty'
import type { Logger } from 'pino'
import { runPrimary, workerCount, workerIndex } from './cluster/index.js'
import type { AddressInfo } from 'node:net'
import { loadConfigFile, type Config } from './config/index.js'
import { buildApp, type Dualtrack } from './app.js'
import { createLogger } from './logger.js'

export { createLogger } from './logger.js'

export interface StartOptions {
  readonly configPath: string
  readonly pretty?: boolean
  readonly env?: NodeJS.ProcessEnv
  /** override listen ports (the demo passes 0s) */
  readonly overrides?: (cfg: Config) => Config
  /** install SIGTERM/SIGINT/SIGHUP handling (the CLI does; tests do not) */
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

/** how often a process started on a terminal checks that the terminal is still there */
export const TERMINAL_POLL_MS = 1000

export interface SignalOptions {
  readonly logger: Pick<Logger, 'info' | 'error' | 'flush'>
  /** exit with 1 if stop() takes longer than this */
  readonly delayMs: number
  stop (): Promise<void>
  /** SIGHUP: re-read the config (dualtrack start); without it, SIGHUP stops (the demo) */
  reload? (): Promise<unknown>
}

/**
 * signals as nginx and Prometheus take them (DESIGN.md §7): SIGTERM and SIGINT drain and exit, a
 * second one exits at once; SIGHUP reloads (or stops a process without reload()). A process started
 * on a terminal exits when that terminal goes away, SIGHUP or not. Fatal signals (SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT) are never trapped: a JS handler after a native crash spins forever
 * (close-with-grace trapped them), while the default action ends the process for its supervisor.
 */
export function handleSignals (o: SignalOptions): void {
  let stopping = false
  const exit = (code: number) => {
    o.logger.flush()
    process.exit(code)
  }
  const stop = (why: Record<string, unknown>, code = 0) => {
    if (stopping) {
      o.logger.error(why, 'second signal: exiting now')
      return exit(1)
    }
    stopping = true
    if (why.err !== undefined) o.logger.error(why, 'shutting down after an error')
    else o.logger.info(why, 'shutting down')
    setTimeout(() => {
      o.logger.error({ delayMs: o.delayMs }, 'shutdown took too long: exiting')
      exit(1)
    }, o.delayMs).unref()
    o.stop().then(() => exit(code), (err: unknown) => {
      o.logger.error({ err }, 'shutdown failed')
      exit(1)
    })
  }
  process.on('SIGTERM', () => stop({ signal: 'SIGTERM' }))
  process.on('SIGINT', () => stop({ signal: 'SIGINT' }))
  // the descriptors that were a terminal at start: one that no longer is means the terminal hung up
  const ttys = [0, 1, 2].filter((fd) => isatty(fd))
  const hungUp = () => ttys.some((fd) => !isatty(fd))
  process.on('SIGHUP', () => {
    const gone = hungUp()
    if (gone || o.reload === undefined) return stop({ signal: 'SIGHUP', ...(gone ? { reason: 'the terminal went away' } : {}) })
    if (stopping) return
    o.logger.info({ signal: 'SIGHUP' }, 'reloading the config')
    o.reload().catch((err: unknown) => o.logger.error({ err }, 'reload failed'))
  })
  // SIGHUP reaches the session leader and the foreground group only (`npm run demo`'s node is neither)
  if (ttys.length > 0) {
    setInterval(() => { if (!stopping && hungUp()) stop({ reason: 'the terminal went away' }) }, TERMINAL_POLL_MS).unref()
  }
  process.on('uncaughtException', (err) => stop({ err }, 1))
  process.on('unhandledRejection', (err) => stop({ err }, 1))
}

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
      handleSignals({
        logger,
        delayMs: config.server.drainDelayMs + DEFAULT_SHUTDOWN_GRACE_MS + 2000,
        stop,
        // each worker re-reads the file and answers for its own reload (and counts it)
        reload: async () => primary.reload()
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
      const kind = (m as { dualtrack?: string } | null)?.dualtrack
      if (kind === 'stop') void stop().then(() => process.exit(0))
      // SIGHUP to the primary
      else if (kind === 'reload') void app.reload()
    })
    process.on('disconnect', () => { void stop().then(() => process.exit(0)) })
  }
  if (o.signals) {
    handleSignals({ logger, delayMs: config.server.drainDelayMs + DEFAULT_SHUTDOWN_GRACE_MS, stop, reload: async () => app.reload() })
  }
  return { app, gatewayUrl, adminUrl, stop }
}

function hostOf (a: AddressInfo): string {
  if (a.address === '0.0.0.0' || a.address === '::') return '127.0.0.1'
  return a.family === 'IPv6' ? `[${a.address}]` : a.address
}
