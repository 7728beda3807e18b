// the admin Fastify instance: its own listener, a 64 KiB body limit, strict schema validation, the
// principal on every request, and the routes of DESIGN.md §3
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { registerAdminRoutes, ADMIN_BODY_LIMIT, type AdminDeps } from './routes.js'

// the admin listener's own deadlines, checked as often as the data plane's (node's default is 30 s)
const ADMIN_HEADERS_TIMEOUT_MS = 10_000
const ADMIN_REQUEST_TIMEOUT_MS = 30_000
const CONNECTIONS_CHECK_MS = 500

export function createAdmin (log: FastifyBaseLogger, deps: AdminDeps): FastifyInstance {
  const admin = Fastify({
    loggerInstance: log.child({ listener: 'admin' }),
    bodyLimit: ADMIN_BODY_LIMIT,
    requestTimeout: ADMIN_REQUEST_TIMEOUT_MS,
    http: { headersTimeout: ADMIN_HEADERS_TIMEOUT_MS, requestTimeout: ADMIN_REQUEST_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECK_MS },
    logController: new LogController({ disableRequestLogging: true }),
    // no coercion, no silent removal: a bad body is refused naming the field; verbose gives the
    // error formatter the schema (the allowed keys of an unknown one)
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, multipleOfPrecision: 9, allErrors: false, verbose: true } }
  }) as unknown as FastifyInstance
  // set by the auth hook before any handler runs; declared up front so every request has one shape
  admin.server.maxConnections = deps.config().admin.maxConnections
  admin.decorateRequest('principal', undefined)
  registerAdminRoutes(admin, deps)
  return admin
}
