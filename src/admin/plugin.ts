// the admin Fastify instance: its own listener, a 64 KiB body limit, strict schema validation, the
// principal on every request, and the routes of DESIGN.md §3
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { registerAdminRoutes, ADMIN_BODY_LIMIT, type AdminDeps } from './routes.js'

export function createAdmin (log: FastifyBaseLogger, deps: AdminDeps): FastifyInstance {
  const admin = Fastify({
    loggerInstance: log.child({ listener: 'admin' }),
    bodyLimit: ADMIN_BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    // no coercion, no silent removal: a bad body is refused naming the field; verbose gives the
    // error formatter the schema (the allowed keys of an unknown one)
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, multipleOfPrecision: 9, allErrors: false, verbose: true } }
  }) as unknown as FastifyInstance
  // set by the auth hook before any handler runs; declared up front so every request has one shape
  admin.decorateRequest('principal', undefined)
  registerAdminRoutes(admin, deps)
  return admin
}
