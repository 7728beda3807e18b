// the request path's hooks, chosen once per config (and again on reload): a feature no route or
// rollout uses is the no-op, so it costs nothing per request (fastify compiles unused hooks to null,
// reply-from picks `rewriteRequestHeaders || requestHeadersNoOp` the same way)
import { WRITE_METHODS, type Config } from '../config/index.js'
import { pathOf } from '../routing/index.js'
import { NOOP_HOOKS, NO_PLAN, type AccessLog, type DataPlaneHooks, type RequestPlan, type RequestReport } from '../proxy/index.js'
import type { Affinity, CompiledAffinity } from '../state/index.js'
import type { Guardian } from '../guard/index.js'
import type { Metrics } from '../metrics/index.js'
import type { Shadower } from '../shadow/index.js'

/** the parts that plug into the request path */
export interface RequestParts {
  readonly metrics: Metrics
  readonly shadower: Shadower
  readonly affinity: Affinity
  readonly guardian: Guardian
  readonly accessLog: AccessLog
  /** DUALTRACK_METRICS=off leaves request metrics out: bench/ measures what they cost */
  readonly recordRequests: boolean
}

type DoneStep = (r: RequestReport, request: Parameters<DataPlaneHooks['done']>[1], body: Buffer | undefined, seconds: number) => void

export function composeHooks (config: Config, parts: RequestParts): DataPlaneHooks {
  const shadowed = config.routes.some((r) => r.shadow !== undefined)
  const affine = Object.values(config.rollouts).some((r) => r.affinity !== undefined && (r.affinity.lookup.length > 0 || r.affinity.learn.length > 0))
  const learning = Object.values(config.rollouts).some((r) => (r.affinity?.learn.length ?? 0) > 0)
  const guarded = Object.values(config.rollouts).some((r) => r.guard !== undefined)
  return {
    plan: shadowed || affine ? createPlan(parts) : NOOP_HOOKS.plan,
    lookupOwner: affine ? createLookup(config, parts.affinity) : NOOP_HOOKS.lookupOwner,
    learn: learning ? createLearn(parts.affinity) : NOOP_HOOKS.learn,
    done: createDone(doneSteps(parts, { shadowed, guarded }))
  }
}

function doneSteps (parts: RequestParts, on: { shadowed: boolean, guarded: boolean }): DoneStep[] {
  const { metrics, guardian, shadower } = parts
  const steps: DoneStep[] = []
  if (parts.recordRequests) {
    const unrouted = metrics.rollout('none')
    steps.push((r, _request, _body, seconds) => {
      metrics.request(metrics.route(r.route?.name ?? 'unmatched'), r.decision.backend, r.method, r.result.status, seconds, r.result.errorKind)
      metrics.decision(r.route === undefined ? unrouted : metrics.rollout(r.route.rollout.name), r.decision)
    })
  }
  if (on.guarded) {
    steps.push((r, _request, _body, seconds) => {
      // a failure that is not the backend's (the client's, the gateway's own) never feeds the guard
      if (r.route === undefined || (r.result.error !== undefined && r.result.errorKind === undefined && !r.result.aborted)) return
      guardian.record(r.route.rollout.name, r.decision.backend, seconds * 1000, r.result.status, r.result.errorKind !== undefined)
    })
  }
  steps.push((r, request, _body, seconds) => parts.accessLog(r, request, seconds))
  if (on.shadowed) {
    steps.push((r, request, body) => {
      if (!r.plan.shadow || r.route === undefined || r.result.aborted || r.result.error !== undefined) return
      if (r.result.body === undefined) return shadower.drop(r.route.name, 'answer over maxBodyBytes')
      shadower.fire(r.route.name, r.decision.backend, { method: r.method, url: request.raw.url ?? '/', id: request.id, headers: r.upstreamHeaders, body: body ?? null },
        { status: r.result.status, headers: r.result.headers ?? {}, body: r.result.body })
    })
  }
  return steps
}

function createDone (steps: DoneStep[]): DataPlaneHooks['done'] {
  // unrolled for the usual counts: no loop, no array read per request
  const [a, b, c, d] = steps
  if (steps.length === 1 && a) return (r, q, body) => a(r, q, body, (performance.now() - r.startedAt) / 1000)
  if (steps.length === 2 && a && b) {
    return (r, q, body) => { const s = (performance.now() - r.startedAt) / 1000; a(r, q, body, s); b(r, q, body, s) }
  }
  if (steps.length === 3 && a && b && c) {
    return (r, q, body) => { const s = (performance.now() - r.startedAt) / 1000; a(r, q, body, s); b(r, q, body, s); c(r, q, body, s) }
  }
  if (steps.length === 4 && a && b && c && d) {
    return (r, q, body) => { const s = (performance.now() - r.startedAt) / 1000; a(r, q, body, s); b(r, q, body, s); c(r, q, body, s); d(r, q, body, s) }
  }
  return (r, q, body) => { const s = (performance.now() - r.startedAt) / 1000; for (const step of steps) step(r, q, body, s) }
}

function createPlan ({ shadower, affinity }: RequestParts): DataPlaneHooks['plan'] {
  return (route, method, requestId, contentLength, chunked): RequestPlan => {
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
      if (aff.lookup.needsBody && hasBody && !chunked && WRITE_METHODS.has(method) && (contentLength as number) <= aff.maxBodyBytes) bufferBody = true
      if (learn) captureBytes = Math.max(captureBytes, aff.maxBodyBytes)
    }
    if (!bufferBody && captureBytes === 0 && !copy) return NO_PLAN
    return { bufferBody, captureBytes, learn, shadow: copy }
  }
}

function createLookup (config: Config, affinity: Affinity): DataPlaneHooks['lookupOwner'] {
  // per route, once: the sources a request there can carry; a route that can carry no order id
  // (its prefix contradicts every path: pattern, and nothing else applies) is not in the map
  const byRoute = new Map<string, CompiledAffinity>()
  for (const r of config.routes) {
    const aff = affinity.onRoute(r.rollout, r.match)
    if (aff !== undefined) byRoute.set(r.name, aff)
  }
  if (byRoute.size === 0) return NOOP_HOOKS.lookupOwner
  return (route, req, body) => {
    const aff = byRoute.get(route.name)
    if (aff === undefined) return undefined
    const r = route.rollout
    // the rollback mode decides what the owner is for (hard: counted only, everything to legacy)
    return affinity.route(r.name, r.rollback, aff, req, pathOf(req.url), body)
  }
}

function createLearn (affinity: Affinity): DataPlaneHooks['learn'] {
  return (route, backend, status, headers, body) => {
    const aff = affinity.of(route.rollout.name)
    return aff === undefined ? undefined : affinity.learn(route.rollout.name, aff, backend, status, headers, body)
  }
}
