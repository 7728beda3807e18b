// the composition root: builds the data-plane and admin Fastify apps from a validated config and
// wires config, routing, proxy, state, admin and metrics together; it does not listen
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyInstance, type FastifyBaseLogger } from 'fastify'
import type { Config } from './config/index.js'
import { Router } from './routing/index.js'
import { createUpstreams, closeUpstreams, compileTrustedProxies, createProxyHandler, NOOP_HOOKS, type DataPlane, type DataPlaneHooks, type RequestReport } from './proxy/index.js'

export interface BuildOptions {
  /** a pino logger (tests pass a silent or capturing one) */
  readonly logger?: FastifyBaseLogger
}

export interface Dualtrack {
  readonly gateway: FastifyInstance
  readonly admin: FastifyInstance
  readonly dataPlane: DataPlane
  /** the config in force */
  config(): Config
  /** stop accepting, finish in-flight requests, close pools and stores */
  close(): Promise<void>
  /** SIGTERM: not ready at once, keep serving for server.drainDelayMs, then close */
  shutdown(): Promise<void>
  /** true from the start of a shutdown */
  draining(): boolean
}

export const LOG_REDACT = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'token', '*.token'
]

export function loggerOptions (level = process.env.LOG_LEVEL ?? 'info') {
  return { level, redact: { paths: LOG_REDACT, censor: '[redacted]' } }
}

export async function buildApp (config: Config, opts: BuildOptions = {}): Promise<Dualtrack> {
  const current = config
  const gateway = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: loggerOptions() }),
    // one access line per request is written by the proxy itself (cheaper than onResponse hooks)
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    bodyLimit: config.server.bodyLimit,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // any method, any path: routing is dualtrack's own table
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 2048 }
  })
  const log = gateway.log

  const dataPlane: DataPlane = {
    router: new Router(config),
    upstreams: createUpstreams(config.backends),
    trusted: compileTrustedProxies(config.server.trustedProxies),
    bodyLimit: config.server.bodyLimit,
    hooks: NOOP_HOOKS
  }
  dataPlane.hooks = { ...NOOP_HOOKS, done: accessLog(log) } satisfies DataPlaneHooks

  // bodies are not parsed: they stream to the backend untouched
  gateway.removeAllContentTypeParsers()
  gateway.addContentTypeParser('*', (_req, _payload, done) => done(null))
  const handler = createProxyHandler(dataPlane)
  gateway.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/*', handler })
  gateway.addHook('onClose', async () => { await closeUpstreams(dataPlane.upstreams) })

  const admin = Fastify({ loggerInstance: log.child({ listener: 'admin' }), bodyLimit: 65_536, logController: new LogController({ disableRequestLogging: true }) })
  admin.get('/healthz', async () => ({ status: 'ok' }))
  let draining = false
  admin.get('/readyz', async (_req, reply) => draining
    ? reply.code(503).send({ status: 'draining' })
    : reply.send({ status: 'ready' }))

  return {
    gateway,
    admin,
    dataPlane,
    config: () => current,
    draining: () => draining,
    async close () {
      draining = true
      await gateway.close()
      await admin.close()
    },
    async shutdown () {
      draining = true
      // load balancers see /readyz fail and stop sending before the listener closes
      if (config.server.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.server.drainDelayMs))
      await gateway.close()
      await admin.close()
    }
  }
}

function accessLog (log: FastifyBaseLogger) {
  const enabled = () => (log as unknown as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled?.('info') ?? true
  return (r: RequestReport, request: { id: string, raw: { url?: string | undefined } }): void => {
    if (!enabled()) return
    log.info({
      reqId: request.id,
      route: r.route?.name ?? 'unmatched',
      method: r.method,
      // the path only: query strings can carry ids and tokens
      path: pathOnly(request.raw.url ?? ''),
      backend: r.decision.backend,
      reason: r.decision.reason,
      status: r.result.status,
      durationMs: Number(process.hrtime.bigint() - r.startedAt) / 1e6,
      ...(r.result.errorKind ? { upstreamError: r.result.errorKind } : {}),
      ...(r.result.attempts > 1 ? { attempts: r.result.attempts } : {})
    }, 'request')
  }
}

function pathOnly (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
