// the composition root: builds the data-plane and admin Fastify apps from a validated config and
// wires config, routing, proxy, state, admin and metrics together; it does not listen
import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import Fastify, { LogController, type FastifyInstance, type FastifyBaseLogger } from 'fastify'
import { loadConfigFile, watchConfig, type Config, type ConfigWatcher } from './config/index.js'
import { Router } from './routing/index.js'
import { createUpstreams, closeUpstreams, compileTrustedProxies, createProxyHandler, NOOP_HOOKS, NO_PLAN, type DataPlane, type DataPlaneHooks, type RequestReport, type RequestPlan } from './proxy/index.js'
import { StateManager, Affinity, createStateStore, yamlViews, syncYaml, planPause, planResume, type StateStore } from './state/index.js'
import { Guardian } from './guard/index.js'
import { createAuth, registerAdminRoutes, ADMIN_BODY_LIMIT, type Auth } from './admin/index.js'
import { createMetrics, type Metrics } from './metrics/index.js'
import { Shadower } from './shadow/index.js'
import { AggregatorRegistry } from 'prom-client'
import { callPrimary, workerIndex } from './cluster/index.js'

export interface BuildOptions {
  /** a pino logger (tests pass a capturing one) */
  readonly logger?: FastifyBaseLogger
  /** watch the config file and reload on change (the CLI does) */
  readonly watch?: boolean
  readonly env?: NodeJS.ProcessEnv
}

export interface Dualtrack {
  readonly gateway: FastifyInstance
  readonly admin: FastifyInstance
  readonly dataPlane: DataPlane
  readonly state: StateManager
  readonly metrics: Metrics
  readonly guardian: Guardian
  /** the config in force */
  config(): Config
  /** re-read the config file; a bad one is refused and the last good one stays */
  reload(): Promise<{ ok: true } | { ok: false, error: string }>
  /** stop accepting, finish in-flight requests, close pools and stores */
  close(): Promise<void>
  /** SIGTERM: not ready at once, keep serving for server.drainDelayMs, then close */
  shutdown(): Promise<void>
  /** true from the start of a shutdown */
  draining(): boolean
}

export const LOG_REDACT = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'token', '*.token', 'authorization'
]

export function loggerOptions (level = process.env.LOG_LEVEL ?? 'info') {
  return { level, redact: { paths: LOG_REDACT, censor: '[redacted]' } }
}

export async function buildApp (config: Config, opts: BuildOptions = {}): Promise<Dualtrack> {
  let current = config
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
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 2048 }
  })
  const log = gateway.log

  const store: StateStore = await createStateStore(config, log)
  const state = new StateManager(store, log)

  const dataPlane: DataPlane = {
    router: new Router(config),
    upstreams: createUpstreams(config.backends),
    trusted: compileTrustedProxies(config.server.trustedProxies),
    bodyLimit: config.server.bodyLimit,
    hooks: NOOP_HOOKS,
    draining: false
  }
  const metrics = createMetrics()
  const inCluster = workerIndex() !== undefined
  if (inCluster) {
    // constructing one installs prom-client's worker-side listener that answers the primary
    void new AggregatorRegistry()
    AggregatorRegistry.setRegistries([metrics.registry])
  }
  metrics.storeUp(store.kind, () => store.up())
  const log1 = accessLog(log)
  // DUALTRACK_METRICS=off leaves request recording out: bench/ measures what metrics cost with it
  const recordRequests = (opts.env ?? process.env).DUALTRACK_METRICS !== 'off'
  const none = metrics.rollout('none')
  const shadower = new Shadower(config, metrics, log)
  const affinity = new Affinity(config, store, metrics, log)
  const guardian = new Guardian(config, state, metrics, log)
  const WRITES = new Set(['POST', 'PUT', 'PATCH'])
  dataPlane.hooks = {
    ...NOOP_HOOKS,
    plan (route, method, requestId, contentLength, chunked): RequestPlan {
      const name = route.name
      const aff = affinity.of(route.rollout.name)
      const shadow = shadower.has(name) && shadower.sampled(name, method, requestId)
      if (aff === undefined && !shadow) return NO_PLAN
      const hasBody = chunked || (contentLength !== undefined && contentLength > 0)
      let bufferBody = false
      let captureBytes = 0
      let copy = shadow
      if (copy) {
        const max = shadower.maxBodyBytes(name)
        if (hasBody && (chunked || (contentLength as number) > max)) {
          // the body is read once and shared only when it is small and its size known
          shadower.drop(name, chunked ? 'chunked request body' : 'request body over maxBodyBytes')
          copy = false
        } else {
          bufferBody = hasBody
          captureBytes = max
        }
      }
      // affinity: lookups in bodies need the body (bounded); learning needs a POST's answer, held
      // until the owner is recorded
      const learn = aff !== undefined && aff.learn !== undefined && method === 'POST'
      if (aff !== undefined) {
        if (aff.lookup.needsBody && hasBody && !chunked && WRITES.has(method) && (contentLength as number) <= aff.maxBodyBytes) bufferBody = true
        if (learn) captureBytes = Math.max(captureBytes, aff.maxBodyBytes)
      }
      if (!bufferBody && captureBytes === 0 && !copy) return NO_PLAN
      return { bufferBody, captureBytes, learn, shadow: copy }
    },
    lookupOwner (route, req, body) {
      const r = route.rollout
      // a hard rollback sends everything to legacy: no lookup to make
      if (r.rollback === 'hard') return undefined
      const aff = affinity.of(r.name)
      if (aff === undefined) return undefined
      const url = req.url
      const q = url.indexOf('?')
      return affinity.lookup(r.name, aff, req, q === -1 ? url : url.slice(0, q), body)
    },
    learn (route, backend, status, headers, body) {
      const aff = affinity.of(route.rollout.name)
      return aff === undefined ? undefined : affinity.learn(route.rollout.name, aff, backend, status, headers, body)
    },
    done (r, request, body) {
      const seconds = (performance.now() - r.startedAt) / 1000
      if (recordRequests) {
        metrics.request(metrics.route(r.route?.name ?? 'unmatched'), r.decision.backend, r.method, r.result.status, seconds, r.result.errorKind)
        metrics.decision(r.route === undefined ? none : metrics.rollout(r.route.rollout.name), r.decision.backend, r.decision.reason)
      }
      if (r.route !== undefined) guardian.record(r.route.rollout.name, r.decision.backend, seconds * 1000, r.result.status, r.result.errorKind !== undefined)
      log1(r, request, seconds)
      if (r.plan.shadow && r.route !== undefined && !r.result.aborted && r.result.errorKind === undefined) {
        if (r.result.body === undefined) shadower.drop(r.route.name, 'answer over maxBodyBytes')
        else {
          shadower.fire(r.route.name, r.decision.backend, { method: r.method, url: request.raw.url ?? '/', id: request.id, headers: r.upstreamHeaders, body: body ?? null },
            { status: r.result.status, headers: r.result.headers ?? {}, body: r.result.body })
        }
      }
    }
  } satisfies DataPlaneHooks

  // every state change (local, remote, reload) lands in the router the request path reads
  const publish = () => {
    dataPlane.router.applyState(state.live())
    const shown: Record<string, { percent: number, rollback: unknown }> = {}
    for (const name of Object.keys(current.rollouts)) {
      const r = state.doc.rollouts[name]
      if (r !== undefined) shown[name] = r
    }
    metrics.state(shown, state.doc.version)
  }
  state.onChange(publish)
  await state.init(yamlViews(config))

  // bodies are not parsed: they stream to the backend untouched
  gateway.removeAllContentTypeParsers()
  gateway.addContentTypeParser('*', (_req, _payload, done) => done(null))
  const handler = createProxyHandler(dataPlane)
  gateway.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/*', handler })
  gateway.addHook('onClose', async () => { await closeUpstreams(dataPlane.upstreams) })

  let auth: Auth = createAuth(config.admin.tokens)
  if (auth.generated !== undefined) {
    // the contract's one exception to "tokens are never logged": there is no other way to learn it
    log.warn(`admin token: no admin.tokens configured, so this run made an operator token: ${auth.generated}`)
  }

  const reload = async (): Promise<{ ok: true } | { ok: false, error: string }> => {
    let next: Config
    try {
      next = loadConfigFile(current.file, opts.env ?? process.env)
    } catch (err) {
      metrics.reload(false)
      log.error({ file: current.file, error: (err as Error).message }, 'config refused: the last good config stays')
      return { ok: false, error: (err as Error).message }
    }
    const restartOnly = (['server', 'admin', 'state'] as const).filter((k) => k !== 'admin' && !isDeepStrictEqual(next[k], current[k]))
    if (restartOnly.length > 0) log.warn({ keys: restartOnly }, 'these keys change on restart only')
    // build everything first, then swap: a request sees the old config or the new one, never half
    const router = new Router(next, state.live())
    const oldUpstreams = dataPlane.upstreams
    const backendsChanged = !isDeepStrictEqual(next.backends, current.backends)
    if (backendsChanged) dataPlane.upstreams = createUpstreams(next.backends)
    dataPlane.router = router
    shadower.configure(next)
    affinity.configure(next)
    guardian.configure(next)
    if (!isDeepStrictEqual(next.admin.tokens, current.admin.tokens)) auth = createAuth(next.admin.tokens)
    current = next
    await state.change(syncYaml(yamlViews(next)))
    publish()
    metrics.reload(true)
    if (backendsChanged) void closeUpstreams(oldUpstreams)
    log.info({ file: next.file, version: state.doc.version }, 'config reloaded')
    return { ok: true }
  }

  let draining = false
  const admin = Fastify({
    loggerInstance: log.child({ listener: 'admin' }),
    bodyLimit: ADMIN_BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, multipleOfPrecision: 9, allErrors: false } }
  })
  registerAdminRoutes(admin, {
    state,
    config: () => current,
    router: () => dataPlane.router,
    auth: () => auth,
    reload,
    draining: () => draining,
    metrics: {
      contentType: metrics.contentType,
      // a worker of server.workers answers for all of them: the primary aggregates
      text: () => inCluster ? callPrimary<string>('metrics') : metrics.text()
    },
    planControl: async (rollout, action, who) => {
      const actor = { name: who.name, source: 'admin' as const }
      await state.change(action === 'pause' ? planPause(rollout, actor) : planResume(rollout, actor))
    },
    views: {
      '/admin/shadow/mismatches': (q) => ({ samples: shadower.mismatches(q.route, Math.min(Math.max(Number(q.limit ?? 50) || 50, 1), 500)) }),
      '/admin/shadow/summary': () => shadower.summary()
    }
  })

  guardian.start()
  let watcher: ConfigWatcher | undefined
  if (opts.watch) watcher = watchConfig(config.file, () => { void reload() })

  const closeAll = async () => {
    watcher?.close()
    guardian.stop()
    dataPlane.draining = true
    // a keep-alive connection busy when close() began turns idle later: close those as they do
    const sweep = setInterval(() => gateway.server.closeIdleConnections(), 100)
    try {
      await gateway.close()
    } finally {
      clearInterval(sweep)
    }
    await admin.close()
    await shadower.close()
    await store.close()
  }
  return {
    gateway,
    admin,
    dataPlane,
    state,
    metrics,
    guardian,
    config: () => current,
    reload,
    draining: () => draining,
    async close () {
      draining = true
      await closeAll()
    },
    async shutdown () {
      draining = true
      // clients reconnect elsewhere after their next answer
      dataPlane.draining = true
      // load balancers see /readyz fail and stop sending before the listener closes
      if (current.server.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, current.server.drainDelayMs))
      await closeAll()
    }
  }
}

function accessLog (log: FastifyBaseLogger) {
  const enabled = () => (log as unknown as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled?.('info') ?? true
  return (r: RequestReport, request: { id: string, raw: { url?: string | undefined } }, seconds: number): void => {
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
      durationMs: Math.round(seconds * 1e6) / 1e3,
      ...(r.result.errorKind ? { upstreamError: r.result.errorKind } : {}),
      ...(r.result.attempts > 1 ? { attempts: r.result.attempts } : {})
    }, 'request')
  }
}

function pathOnly (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
