// the data-plane Fastify instance: server options from config, no body parsers (bodies stream to the
// backend untouched), one catch-all route, pools closed with the server
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { HTTP_METHODS, type Config } from '../config/index.js'
import { Router } from '../routing/index.js'
import { createProxyHandler, NOOP_HOOKS, type DataPlane } from './handler.js'
import { createUpstreams, closeUpstreams } from './upstream-pool.js'
import { compileTrustedProxies } from './headers.js'

/** how often node looks for clients past their deadlines (its default, 30 s, let slow clients stay) */
export const CONNECTIONS_CHECK_MS = 500

export function createGatewayServer (config: Config, logger: FastifyBaseLogger | undefined, defaultLogger: object): FastifyInstance {
  const s = config.server
  const gateway = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: defaultLogger }),
    // one access line per request is written by the proxy itself (cheaper than onResponse hooks)
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    bodyLimit: s.bodyLimit,
    requestTimeout: s.requestTimeoutMs,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    // a slow client is cut within its deadline plus a check; node refuses a head deadline longer
    // than the whole request's
    http: { headersTimeout: Math.min(s.headersTimeoutMs, s.requestTimeoutMs), requestTimeout: s.requestTimeoutMs, connectionsCheckingInterval: CONNECTIONS_CHECK_MS },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 2048 }
  }) as unknown as FastifyInstance
  // past it, node closes a new connection at once: descriptors never run out (DESIGN.md §7)
  gateway.server.maxConnections = s.maxConnections
  return gateway
}

/** what the request path reads, built from a config; hooks start as no-ops */
export function createDataPlane (config: Config): DataPlane {
  return {
    router: new Router(config),
    upstreams: createUpstreams(config.backends),
    trusted: compileTrustedProxies(config.server.trustedProxies),
    bodyLimit: config.server.bodyLimit,
    hooks: NOOP_HOOKS,
    draining: false
  }
}

export function registerProxy (gateway: FastifyInstance, dataPlane: DataPlane): void {
  gateway.removeAllContentTypeParsers()
  gateway.addContentTypeParser('*', (_req, _payload, done) => done(null))
  gateway.route({ method: [...HTTP_METHODS], url: '/*', handler: createProxyHandler(dataPlane) })
  gateway.addHook('onClose', async () => { await closeUpstreams(dataPlane.upstreams) })
}
