// the data plane's one Fastify handler: match the route, decide, forward, report
import { Transform, type TransformCallback, type Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { BackendName } from '../config/index.js'
import { decideInto, pathOf, type Decision, type Router, type CompiledRoute, type RequestView } from '../routing/index.js'
import type { Upstreams } from './upstream-pool.js'
import { upstreamRequestHeaders, type TrustedProxies } from './headers.js'
import { forward, type ExchangeResult } from './forward.js'
import { DUALTRACK_ERR_BODY_TOO_LARGE, DUALTRACK_ERR_FOREIGN_TARGET } from '../errors.js'
import { originForm } from './target.js'

/** what a finished request reports (metrics, access log, guard, affinity learning, shadow) */
export interface RequestReport {
  readonly route: CompiledRoute | undefined
  readonly method: string
  readonly decision: Decision
  readonly result: ExchangeResult
  /** performance.now() when the handler began (routing, affinity lookup and body read included) */
  readonly startedAt: number
  readonly plan: RequestPlan
  /** the headers sent upstream (hop-by-hop stripped): a shadow copy sends the same */
  readonly upstreamHeaders: Record<string, string | string[]>
}

/** what the features need of one request, decided before it is forwarded */
export interface RequestPlan {
  /** read the request body into memory first (affinity lookups in bodies, shadowed writes) */
  readonly bufferBody: boolean
  /** keep up to this many bytes of the answer (0: none) */
  readonly captureBytes: number
  /** hold the answer until learn() ran (affinity: the owner is recorded before the client hears) */
  readonly learn: boolean
  /** a shadow copy follows the answer */
  readonly shadow: boolean
}

/** the plan of a request no feature looks at: shared, so the common case allocates nothing */
export const NO_PLAN: RequestPlan = Object.freeze({ bufferBody: false, captureBytes: 0, learn: false, shadow: false })

/** hooks that later features plug in; each defaults to a no-op, so a disabled feature costs nothing */
export interface DataPlaneHooks {
  /** what this request needs; NO_PLAN for most */
  plan (route: CompiledRoute, method: string, requestId: string, contentLength: number | undefined, chunked: boolean): RequestPlan
  /** the affinity owner of the order this request names, if the route's rollout knows it */
  lookupOwner (route: CompiledRoute, req: RequestView, body: Buffer | undefined): BackendName | undefined | Promise<BackendName | undefined>
  /** an answer was complete (captured body when asked for); runs before the client gets it */
  learn (route: CompiledRoute, backend: BackendName, status: number, headers: Record<string, string | string[] | undefined>, body: Buffer | undefined): void | Promise<void>
  /** after the exchange: metrics, logs, guard, shadow copies */
  done (report: RequestReport, request: FastifyRequest, body: Buffer | undefined): void
}

export interface DataPlane {
  router: Router
  upstreams: Upstreams
  readonly trusted: TrustedProxies
  readonly bodyLimit: number
  hooks: DataPlaneHooks
  /** shutting down: answers close their connection so that close() is not held by keep-alive */
  draining: boolean
}

export const NOOP_HOOKS: DataPlaneHooks = {
  plan: () => NO_PLAN,
  lookupOwner: () => undefined,
  learn: () => undefined,
  done: () => undefined
}

// a chunked upload is counted as it streams; past the limit the upload is cut (and answered 413)
class BodyLimit extends Transform {
  readonly #limit: number
  #left: number
  constructor (limit: number) { super(); this.#limit = this.#left = limit }
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#left -= chunk.length
    if (this.#left < 0) cb(new DUALTRACK_ERR_BODY_TOO_LARGE(this.#limit))
    else cb(null, chunk)
  }
}

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>

/**
 * the client's fault (body over bodyLimit, a foreign absolute-form target): answered 4xx with the
 * connection closed, reported as a client error (metrics, access log), never as a backend's error
 */
function refuse (plane: DataPlane, request: FastifyRequest, reply: FastifyReply, e: Error & { code: string, statusCode?: number },
  route: CompiledRoute | undefined, decision: Decision, startedAt: number): void {
  const status = e.statusCode ?? 400
  reply.code(status).header('x-dualtrack-backend', decision.backend).header('x-dualtrack-reason', decision.reason)
    .header('connection', 'close')
    .send({ error: e.code, message: e.message })
  plane.hooks.done({
    route,
    method: request.raw.method as string,
    decision,
    result: { status, errorKind: undefined, aborted: false, attempts: 0, headers: undefined, body: undefined, error: e },
    startedAt,
    plan: NO_PLAN,
    upstreamHeaders: NO_HEADERS
  }, request, undefined)
}

async function readBody (stream: Readable, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of stream) {
    n += (c as Buffer).length
    if (n > limit) return null
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks, n)
}

export function createProxyHandler (plane: DataPlane) {
  return async function proxyHandler (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // from here: the affinity lookup and the body read are part of the latency the client sees
    const startedAt = performance.now()
    const raw = request.raw
    const method = raw.method as string
    let url = raw.url as string
    const router = plane.router
    // the absolute form (RFC 9112 §3.2.2): routed on its path and forwarded in origin form when its
    // authority is the Host the client named; a foreign authority is refused, never passed on
    if (url.charCodeAt(0) !== 47 /* / */) {
      const origin = originForm(url, raw.headers.host)
      if (origin === undefined) {
        return refuse(plane, request, reply, new DUALTRACK_ERR_FOREIGN_TARGET(), undefined, { backend: router.defaultBackend, reason: 'default', bucket: -1, threshold: -1 }, startedAt)
      }
      raw.url = url = origin
    }
    const route = router.table.match(method, pathOf(url))
    const decision: Decision = { backend: router.defaultBackend, reason: 'default', bucket: -1, threshold: -1, segment: undefined }
    const te = raw.headers['transfer-encoding']
    const cl = raw.headers['content-length']
    const hasBody = te !== undefined || (cl !== undefined && cl !== '0')
    if (cl !== undefined && Number(cl) > plane.bodyLimit) return refuse(plane, request, reply, new DUALTRACK_ERR_BODY_TOO_LARGE(plane.bodyLimit), route, decision, startedAt)

    let body: Readable | Buffer | null = hasBody ? raw : null
    let buffered: Buffer | undefined
    let plan = NO_PLAN
    if (route !== undefined) {
      const view = raw as RequestView
      plan = plane.hooks.plan(route, method, request.id, cl === undefined ? undefined : Number(cl), te !== undefined)
      if (hasBody && plan.bufferBody) {
        // small, bounded read, only on routes that need it (affinity lookups in bodies, shadowed writes)
        const b = await readBody(raw, plane.bodyLimit)
        if (b === null) return refuse(plane, request, reply, new DUALTRACK_ERR_BODY_TOO_LARGE(plane.bodyLimit), route, decision, startedAt)
        body = buffered = b
      }
      const owner = plane.hooks.lookupOwner(route, view, buffered)
      decideInto(decision, route.rollout, view, (owner !== undefined && typeof owner !== 'string') ? await owner : owner)
    }
    if (body !== null && !Buffer.isBuffer(body) && te !== undefined) body = body.pipe(new BodyLimit(plane.bodyLimit))

    const backend = decision.backend
    const upstream = plane.upstreams[backend]
    reply.hijack()
    if (plane.draining) reply.raw.shouldKeepAlive = false
    const hooks = plane.hooks
    const upstreamHeaders = upstreamRequestHeaders(raw.headers, raw.socket.remoteAddress, plane.trusted, 'http')
    const p = plan // a const for the closures below
    forward({
      upstream,
      backend,
      method,
      path: upstream.basePath === '' ? url : upstream.basePath + url,
      headers: upstreamHeaders,
      body,
      res: reply.raw,
      addHeaders: { 'x-dualtrack-backend': backend, 'x-dualtrack-reason': decision.reason, 'x-request-id': request.id },
      captureBytes: p.captureBytes,
      beforeHead: p.learn && route !== undefined ? (status, headers, answer) => hooks.learn(route, backend, status, headers, answer) : undefined,
      onDone: (result) => hooks.done({ route, method, decision, result, startedAt, plan: p, upstreamHeaders }, request, buffered)
    })
  }
}
