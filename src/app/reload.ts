// hot reload: re-read the YAML, validate, build everything new, then swap it in at once (a request
// sees the old config or the new one, never half); a bad file is refused, counted, and the last good
// config stays. The state store's changes land in the router through publish()
import { isDeepStrictEqual } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import { loadConfigFile, type Config } from '../config/index.js'
import { Router } from '../routing/index.js'
import { createUpstreams, closeUpstreams, type DataPlane } from '../proxy/index.js'
import { syncYaml, yamlViews, type StateManager } from '../state/index.js'
import { createAuth, watchTokenFiles, type Auth, type TokenWatch } from '../admin/index.js'
import type { Metrics } from '../metrics/index.js'
import { composeHooks, type RequestParts } from './hooks.js'

/** what a reload swaps: the config in force and the tokens it names (re-read from their files) */
export interface Live {
  config: Config
  auth: Auth
  tokenWatch: TokenWatch
}

/** watch the token files of the config in force: a rotated Secret swaps the tokens in place */
export function watchTokens (live: Live, log: FastifyBaseLogger): void {
  live.tokenWatch.stop()
  live.tokenWatch = watchTokenFiles(live.config.admin.tokens, (tokens) => { live.auth = createAuth(tokens) }, log)
}

export type ReloadResult = { ok: true } | { ok: false, error: string }

export interface ReloadParts extends RequestParts {
  readonly live: Live
  readonly dataPlane: DataPlane
  readonly state: StateManager
  readonly log: FastifyBaseLogger
  readonly env: NodeJS.ProcessEnv
  readonly publish: () => void
}

// keys read once at start: a change is logged, not applied
const RESTART_ONLY = ['server', 'state'] as const

/** every state change (local, remote, reload) lands in the router the request path reads, and in the gauges */
export function createPublisher (live: Live, state: StateManager, dataPlane: DataPlane, metrics: Metrics): () => void {
  return () => {
    dataPlane.router.applyState(state.live())
    const shown: Record<string, { percent: number, rollback: unknown, plan?: { step: number } | null, regions?: Record<string, number> }> = {}
    for (const name of Object.keys(live.config.rollouts)) {
      const r = state.doc.rollouts[name]
      // a plan's step is shown only for rollouts that have a plan
      if (r !== undefined) shown[name] = live.config.rollouts[name]?.plan ? r : { percent: r.percent, rollback: r.rollback, regions: r.regions }
    }
    metrics.state(shown, state.doc.version)
    for (const [name, r] of Object.entries(live.config.rollouts)) if (r.segments !== undefined) metrics.segments(name, r.segments.map((x) => x.name))
  }
}

export function createReload (p: ReloadParts): () => Promise<ReloadResult> {
  const { live, dataPlane, state, metrics, log } = p
  return async () => {
    const current = live.config
    let next: Config
    try {
      next = loadConfigFile(current.file, p.env)
    } catch (err) {
      metrics.reload(false)
      log.error({ file: current.file, error: (err as Error).message }, 'config refused: the last good config stays')
      return { ok: false, error: (err as Error).message }
    }
    const restartOnly = RESTART_ONLY.filter((k) => !isDeepStrictEqual(next[k], current[k]))
    if (restartOnly.length > 0) log.warn({ keys: restartOnly }, 'these keys change on restart only')
    const router = new Router(next, state.live())
    const oldUpstreams = dataPlane.upstreams
    const backendsChanged = !isDeepStrictEqual(next.backends, current.backends)
    if (backendsChanged) dataPlane.upstreams = createUpstreams(next.backends)
    dataPlane.router = router
    p.shadower.configure(next)
    p.affinity.configure(next)
    p.guardian.configure(next)
    dataPlane.hooks = composeHooks(next, p)
    live.config = next
    if (!isDeepStrictEqual(next.admin.tokens, current.admin.tokens)) {
      live.auth = createAuth(next.admin.tokens)
      watchTokens(live, log)
    }
    await state.change(syncYaml(yamlViews(next)))
    p.publish()
    metrics.reload(true)
    if (backendsChanged) void closeUpstreams(oldUpstreams)
    log.info({ file: next.file, version: state.doc.version }, 'config reloaded')
    return { ok: true }
  }
}
