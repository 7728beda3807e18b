// the admin API (DESIGN.md §3): JSON in, JSON out, bearer tokens, a refused request changes nothing
import type { FastifyInstance, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { describeSchemaError, hasTwoDecimals, type Config } from '../config/index.js'
import type { ErrorObject } from 'ajv'
import { explainKey, explainRequest, type Router, type RequestView } from '../routing/index.js'
import { rollback, resume, setRollout, type RolloutPatch, type StateManager, type StateDoc } from '../state/index.js'
import type { Auth, Principal } from './auth.js'
import { registerAffinityRoute, type AffinityView } from './affinity-route.js'
import { registerOwnerExportRoute, type OwnerExport } from './owner-export-route.js'
import {
  DUALTRACK_ERR_ADMIN_BODY_TOO_LARGE, DUALTRACK_ERR_BAD_REQUEST, DUALTRACK_ERR_FORBIDDEN, DUALTRACK_ERR_INTERNAL, DUALTRACK_ERR_UNAUTHORIZED, DUALTRACK_ERR_UNKNOWN_ROLLOUT
} from '../errors.js'

export const ADMIN_BODY_LIMIT = 65_536

export interface AdminDeps {
  readonly state: StateManager
  config (): Config
  router (): Router
  auth (): Auth
  reload (): Promise<{ ok: true } | { ok: false, error: string }>
  draining (): boolean
  /** shadow comparisons: recent redacted mismatch samples and per-route counts */
  readonly shadow?: {
    mismatches (route: string | undefined, limit: number): unknown[]
    summary (): unknown
  }
  /** the guard's verdicts (GET /admin/guard) */
  readonly guard?: { view (): unknown }
  /** extra changes other features add (plan pause/resume) */
  readonly planControl?: (rollout: string, action: 'pause' | 'resume', who: Principal) => Promise<void>
  /** GET /admin/affinity/:orderId (what peers ask while their store is down) */
  readonly affinity?: AffinityView
  /** GET /admin/affinity?backend=new: every owner, streamed as NDJSON (the ownership ledger) */
  readonly ownerExport?: OwnerExport
  /** GET /metrics, when metrics are on */
  readonly metrics?: { readonly contentType: string, text (): Promise<string> }
}

declare module 'fastify' {
  interface FastifyRequest { principal?: Principal }
}

// percent: 0..100 with at most two decimals
const PERCENT = { type: 'number', minimum: 0, maximum: 100, multipleOf: 0.01 } as const

const putRollout = {
  params: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
  body: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      percent: PERCENT,
      regions: { type: 'object', minProperties: 1, additionalProperties: { ...PERCENT, nullable: true } },
      segments: { type: 'object', minProperties: 1, additionalProperties: PERCENT },
      reason: { type: 'string', maxLength: 500 }
    }
  }
} as const

const rollbackSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['reason'],
    properties: {
      reason: { type: 'string', minLength: 1, maxLength: 500 },
      rollout: { type: 'string', minLength: 1 },
      mode: { type: 'string', enum: ['hard', 'drain'] }
    }
  }
} as const

const resumeSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    properties: { rollout: { type: 'string', minLength: 1 }, reason: { type: 'string', maxLength: 500 } }
  }
} as const

const explainSchema = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    required: ['key'],
    properties: { key: { type: 'string', minLength: 1, maxLength: 512 }, rollout: { type: 'string' }, region: { type: 'string', maxLength: 128 } },
    // attr.NAME=value: a segment attribute's value as read
    patternProperties: { '^attr\\.[A-Za-z0-9_.-]+$': { type: 'string', maxLength: 512 } }
  }
} as const

const mismatchesSchema = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { route: { type: 'string', minLength: 1, maxLength: 200 }, limit: { type: 'string', pattern: '^[0-9]{1,3}$' } }
  }
} as const

// a request as it would arrive: headers, cookies, query, the peer's address
const STRINGS = { type: 'object', maxProperties: 100, additionalProperties: { type: 'string', maxLength: 8192 } } as const
const explainPostSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      rollout: { type: 'string', minLength: 1 },
      method: { type: 'string', pattern: '^[A-Z]+$' },
      path: { type: 'string', pattern: '^/', maxLength: 2048 },
      headers: STRINGS,
      cookies: STRINGS,
      query: STRINGS,
      clientIp: { type: 'string', maxLength: 64 }
    }
  }
} as const

export interface ExplainBody {
  rollout?: string
  method?: string
  path?: string
  headers?: Record<string, string>
  cookies?: Record<string, string>
  query?: Record<string, string>
  clientIp?: string
}

/** the request an explain body describes, as the data plane would see it */
export function explainView (b: ExplainBody): RequestView {
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(b.headers ?? {})) headers[k.toLowerCase()] = v
  const cookies = Object.entries(b.cookies ?? {}).map(([k, v]) => `${k}=${v}`)
  if (cookies.length > 0) headers.cookie = [headers.cookie, ...cookies].filter(Boolean).join('; ')
  const q = new URLSearchParams(b.query ?? {}).toString()
  const path = b.path ?? '/'
  return { method: b.method ?? 'GET', url: q === '' ? path : `${path}${path.includes('?') ? '&' : '?'}${q}`, headers, socket: { remoteAddress: b.clientIp } }
}

const auditSchema = {
  querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^[0-9]{1,4}$' } } }
} as const

/**
 * the first percent in a PUT body that is not exactly two decimals: the schema's multipleOf needs a
 * float tolerance that lets 5.000000000000001 through (config/percent.ts)
 */
function notTwoDecimals (body: Record<string, unknown>): string | undefined {
  for (const [k, v] of Object.entries(body)) {
    if (typeof v === 'number' && !hasTwoDecimals(v)) return k
    if (v !== null && typeof v === 'object') {
      for (const [name, p] of Object.entries(v as Record<string, unknown>)) if (typeof p === 'number' && !hasTwoDecimals(p)) return `${k}.${name}`
    }
  }
  return undefined
}

function fail (reply: FastifyReply, e: FastifyError & { statusCode?: number }, extra: Record<string, unknown> = {}) {
  return reply.code(e.statusCode ?? 500).send({ error: e.code, message: e.message, ...extra })
}

/** the state as the admin API shows it: the rollouts of the config in force */
export function stateView (doc: StateDoc, cfg: Config, extra: { store: string, up: boolean, pending: number }) {
  const rollouts: Record<string, unknown> = {}
  for (const name of Object.keys(cfg.rollouts)) {
    const r = doc.rollouts[name]
    if (r === undefined) continue
    const plan = cfg.rollouts[name]?.plan
    rollouts[name] = {
      percent: r.percent,
      regions: r.regions,
      rollback: r.rollback,
      updatedBy: r.updatedBy,
      updatedAt: r.updatedAt,
      source: r.source,
      ...(cfg.rollouts[name]?.segments?.some((x) => x.percent !== undefined) ? { segments: percentSegments(cfg, name, r.segments) } : {}),
      ...(plan ? { plan: r.plan === null ? null : { ...r.plan, steps: plan.steps, holdMs: plan.holdMs } } : {})
    }
  }
  return { version: doc.version, rollouts, store: extra }
}

// the percent segments of the config in force, with their run-time percentages
function percentSegments (cfg: Config, rollout: string, live: Readonly<Record<string, number>> | undefined): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of cfg.rollouts[rollout]?.segments ?? []) if (s.percent !== undefined) out[s.name] = live?.[s.name] ?? s.percent
  return out
}

export function registerAdminRoutes (admin: FastifyInstance, deps: AdminDeps): void {
  const view = () => stateView(deps.state.doc, deps.config(), { store: deps.state.store.kind, up: deps.state.store.up(), pending: deps.state.pending })

  admin.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.validation) {
      // the same wording as config errors (config/ajv-errors.ts): body.percent: must have at most two decimals
      const where = err.validationContext ?? 'body'
      const p = describeSchemaError(err.validation[0] as unknown as ErrorObject)
      const field = p.path.length > 0 ? p.field : where
      return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`${p.path.length > 0 ? `${where}.${p.field}` : where}: ${p.message}`), { field })
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fail(reply, new DUALTRACK_ERR_ADMIN_BODY_TOO_LARGE())
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return fail(reply, new DUALTRACK_ERR_BAD_REQUEST('body: is empty; send a JSON object'), { field: 'body' })
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return fail(reply, new DUALTRACK_ERR_BAD_REQUEST('content-type: send application/json'), { field: 'content-type' })
    if (err.statusCode === 400) return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`body: not valid JSON (${err.message})`), { field: 'body' })
    reply.log.error({ err }, 'admin request failed')
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500 && err.code) return fail(reply, err)
    return fail(reply, new DUALTRACK_ERR_INTERNAL())
  })

  // auth before the body is read: a refused request costs nothing and changes nothing
  const guard = (needs: 'viewer' | 'operator') => async (req: FastifyRequest, reply: FastifyReply) => {
    const p = deps.auth().check(req.headers.authorization)
    if (p === undefined) return fail(reply.header('www-authenticate', 'Bearer'), new DUALTRACK_ERR_UNAUTHORIZED())
    if (needs === 'operator' && p.role !== 'operator') return fail(reply, new DUALTRACK_ERR_FORBIDDEN(p.name))
    req.principal = p
  }
  const viewer = guard('viewer')
  const operator = guard('operator')
  const known = (reply: FastifyReply, name: string | undefined): boolean => {
    if (name === undefined || name in deps.config().rollouts) return true
    void fail(reply, new DUALTRACK_ERR_UNKNOWN_ROLLOUT(name))
    return false
  }
  const actor = (req: FastifyRequest) => ({ name: req.principal?.name ?? 'unknown', source: 'admin' as const })

  admin.get('/healthz', async () => ({ status: 'ok' }))
  admin.get('/readyz', async (_req, reply) => {
    const body = {
      status: deps.draining() ? 'draining' : 'ready',
      store: deps.state.store.kind,
      storeUp: deps.state.store.up(),
      version: deps.state.doc.version,
      // with a shared store: owner records waiting for it (peers poll this to know the store's
      // "unknown" may be wrong), and how many peers said they hold such records
      ...(deps.affinity !== undefined && deps.state.store.kind === 'redis' ? { affinityPending: deps.affinity.pending, peersPending: deps.affinity.peersPending } : {})
    }
    // a replica with its store down serves the last known state and stays ready (DESIGN.md §3)
    return reply.code(deps.draining() ? 503 : 200).send(body)
  })

  if (deps.metrics) {
    const metrics = deps.metrics
    admin.get('/metrics', { onRequest: deps.config().admin.metricsAuth ? viewer : [] }, async (_req, reply) => {
      return reply.header('content-type', metrics.contentType).send(await metrics.text())
    })
  }

  admin.get('/admin/state', { onRequest: viewer }, async () => view())

  admin.put<{ Params: { name: string }, Body: RolloutPatch & { reason?: string } }>('/admin/rollouts/:name', { onRequest: operator, schema: putRollout }, async (req, reply) => {
    const { name } = req.params
    const bad = notTwoDecimals(req.body as Record<string, unknown>)
    if (bad !== undefined) return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`body.${bad}: must have at most two decimals`), { field: bad })
    if (!known(reply, name)) return reply
    if (req.body.segments !== undefined) {
      // only a percent segment has a percentage to change; anything else is refused whole
      const percent = (deps.config().rollouts[name]?.segments ?? []).filter((x) => x.percent !== undefined).map((x) => x.name)
      const bad = Object.keys(req.body.segments).find((k) => !percent.includes(k))
      if (bad !== undefined) {
        const fixed = deps.config().rollouts[name]?.segments?.some((x) => x.name === bad) === true
        return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`body.segments.${bad}: ${fixed ? `segment ${bad} routes to a fixed backend and has no percent` : `rollout ${name} has no percent segment named ${bad}`} (percent segments: ${percent.join(', ') || 'none'})`), { field: `segments.${bad}` })
      }
    }
    const res = await deps.state.change(setRollout(name, { percent: req.body.percent, regions: req.body.regions, segments: req.body.segments }, actor(req), req.body.reason ?? null))
    return { ...view(), propagated: res.propagated }
  })

  admin.post<{ Body: { reason: string, rollout?: string, mode?: 'hard' | 'drain' } }>('/admin/rollback', { onRequest: operator, schema: rollbackSchema }, async (req, reply) => {
    const { rollout, reason, mode = 'hard' } = req.body
    if (!known(reply, rollout)) return reply
    const names = rollout === undefined ? Object.keys(deps.config().rollouts) : [rollout]
    const res = await deps.state.change(rollback(names, mode, reason, actor(req)))
    return { ...view(), propagated: res.propagated }
  })

  admin.post<{ Body: { rollout?: string, reason?: string } }>('/admin/resume', { onRequest: operator, schema: resumeSchema }, async (req, reply) => {
    const { rollout } = req.body
    if (!known(reply, rollout)) return reply
    const names = rollout === undefined ? Object.keys(deps.config().rollouts) : [rollout]
    const res = await deps.state.change(resume(names, actor(req), req.body.reason ?? null))
    return { ...view(), propagated: res.propagated }
  })

  // both explains are reads: a viewer may call them
  const rolloutFor = (reply: FastifyReply, asked: string | undefined, where: string) => {
    const rollouts = Object.keys(deps.config().rollouts)
    const name = asked ?? (rollouts.length === 1 ? rollouts[0] : undefined)
    if (name === undefined) {
      void fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`${where}.rollout: is required when there are several rollouts (${rollouts.join(', ')})`), { field: 'rollout' })
      return undefined
    }
    if (!known(reply, name)) return undefined
    const r = deps.router().rollouts.get(name)
    if (r === undefined) { void fail(reply, new DUALTRACK_ERR_UNKNOWN_ROLLOUT(name)); return undefined }
    return r
  }

  admin.get<{ Querystring: Record<string, string> & { key: string, rollout?: string, region?: string } }>('/admin/explain', { onRequest: viewer, schema: explainSchema }, async (req, reply) => {
    const r = rolloutFor(reply, req.query.rollout, 'query')
    if (r === undefined) return reply
    const attrs: Record<string, string> = {}
    for (const [k, v] of Object.entries(req.query)) if (k.startsWith('attr.')) attrs[k.slice(5)] = v
    const unknown = Object.keys(attrs).find((k) => !(r.segments?.attributes.includes(k) ?? false))
    if (unknown !== undefined) return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`query.attr.${unknown}: rollout ${r.name} has no attribute named ${unknown} (attributes: ${r.segments?.attributes.join(', ') || 'none'})`), { field: `attr.${unknown}` })
    return { rollout: r.name, key: req.query.key, region: req.query.region ?? null, ...explainKey(r, req.query.key, req.query.region, attrs) }
  })

  admin.post<{ Body: ExplainBody }>('/admin/explain', { onRequest: viewer, schema: explainPostSchema }, async (req, reply) => {
    const r = rolloutFor(reply, req.body.rollout, 'body')
    if (r === undefined) return reply
    const view = explainView(req.body)
    const key = r.key(view)
    const region = r.region?.(view)
    return { rollout: r.name, key: key ?? null, region: region ?? null, ...explainRequest(r, view) }
  })

  admin.get<{ Querystring: { limit?: string } }>('/admin/audit', { onRequest: viewer, schema: auditSchema }, async (req) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100), 1), 1000)
    return { entries: await deps.state.audit(limit) }
  })

  admin.post('/admin/reload', { onRequest: operator }, async (_req, reply) => {
    const r = await deps.reload()
    if (!r.ok) return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(r.error), { field: 'config' })
    return { reloaded: true, ...view() }
  })

  if (deps.planControl) {
    const control = deps.planControl
    admin.post<{ Params: { name: string, action: string } }>('/admin/rollouts/:name/plan/:action', { onRequest: operator }, async (req, reply) => {
      const { name, action } = req.params
      if (!known(reply, name)) return reply
      if (action !== 'pause' && action !== 'resume') return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`path: ${action} is not pause or resume`), { field: 'action' })
      if (!deps.config().rollouts[name]?.plan) return fail(reply, new DUALTRACK_ERR_BAD_REQUEST(`rollouts.${name}.plan: this rollout has no plan`), { field: 'plan' })
      await control(name, action, req.principal as Principal)
      return view()
    })
  }

  if (deps.shadow) {
    const shadow = deps.shadow
    admin.get<{ Querystring: { route?: string, limit?: string } }>('/admin/shadow/mismatches', { onRequest: viewer, schema: mismatchesSchema }, async (req) => {
      const limit = Math.min(Math.max(Number(req.query.limit ?? 50) || 50, 1), 500)
      return { samples: shadow.mismatches(req.query.route, limit) }
    })
    admin.get('/admin/shadow/summary', { onRequest: viewer }, async () => shadow.summary())
  }

  if (deps.affinity) registerAffinityRoute(admin, deps.affinity, viewer)
  if (deps.ownerExport) registerOwnerExportRoute(admin, deps.ownerExport, viewer)

  if (deps.guard) {
    const guard = deps.guard
    admin.get('/admin/guard', { onRequest: viewer }, async () => guard.view())
  }
}
