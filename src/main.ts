// load config, build, listen, and shut down gracefully (DESIGN.md §7)
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import type { AddressInfo } from 'node:net'
import { loadConfigFile, type Config } from './config/index.js'
import { buildApp, loggerOptions, type Dualtrack } from './app.js'

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
  readonly app: Dualtrack
  readonly gatewayUrl: string
  readonly adminUrl: string
  stop(): Promise<void>
}

/** exit within the drain delay plus this long after a signal */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000

export function createLogger (pretty = false) {
  const opts = loggerOptions()
  return pretty
    ? pino({ ...opts, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } })
    : pino(opts)
}

export async function startGateway (o: StartOptions): Promise<Running> {
  let config = loadConfigFile(o.configPath, o.env ?? process.env)
  if (o.overrides) config = o.overrides(config)
  const logger = createLogger(o.pretty)
  const app = await buildApp(config, { logger, watch: o.watch ?? false, env: o.env ?? process.env })
  await app.gateway.listen({ host: config.server.host, port: config.server.port })
  await app.admin.listen({ host: config.admin.host, port: config.admin.port })
  const ga = app.gateway.server.address() as AddressInfo
  const aa = app.admin.server.address() as AddressInfo
  const gatewayUrl = `http://${hostOf(ga)}:${ga.port}`
  const adminUrl = `http://${hostOf(aa)}:${aa.port}`
  logger.info({ gateway: gatewayUrl, admin: adminUrl, config: config.file }, 'dualtrack listening')
  let stopping: Promise<void> | undefined
  const stop = () => (stopping ??= app.shutdown())
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
