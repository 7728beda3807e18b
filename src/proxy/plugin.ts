// the data-plane Fastify instance: server options from config, no body parsers (bodies stream to the
// backend untouched), one catch-all route, pools closed with the server
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { HTTP_METHODS, type Config } from '../config/index.js'
import { Router } from '../routing/index.js'
import { createProxyHandler, NOOP_HOOKS, type DataPlane } from './handler.js'
import { createUpstreams, closeUpstreams } from './upstream-pool.js'
import { compileTrustedProxies } from './headers.js'

export function createGatewayServer (config: Config, logger: FastifyBaseLogger | undefined, defaultLogger: object): FastifyInstance {
  const s = config.server
  return Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: defaultLogger }),
    // one access line per request is written by the proxy itself (cheaper than onResponse hooks)
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    bodyLimit: s.bodyLimit,
    requestTimeout: s.requestTimeoutMs,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 2048 }
  }) as unknown as FastifyInstance
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
