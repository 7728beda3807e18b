// the composition root: builds the data-plane and admin apps from a validated config by creating each
// part in order; the parts hold the logic (app/ for the wiring, each folder behind its index.ts).
// It does not listen: main.ts does, and tests call buildApp directly
import type { FastifyInstance, FastifyBaseLogger } from 'fastify'
import { watchConfig, type Config } from './config/index.js'
import { createGatewayServer, createDataPlane, registerProxy, createAccessLog, type DataPlane } from './proxy/index.js'
import { StateManager, Affinity, yamlViews, planPause, planResume } from './state/index.js'
import { Guardian } from './guard/index.js'
import { createAuth, createAdmin } from './admin/index.js'
import { createMetrics, LATENCY_BUCKETS, type Metrics } from './metrics/index.js'
import { createStats } from './stats/index.js'
import { registerConsole } from './console/index.js'
import { Shadower } from './shadow/index.js'
import { loggerOptions } from './logger.js'
import { composeHooks } from './app/hooks.js'
import { createPublisher, createReload, watchTokens, type Live, type ReloadResult } from './app/reload.js'
import { createLifecycle } from './app/lifecycle.js'
import { createStore, metricsText } from './app/store.js'

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
  reload(): Promise<ReloadResult>
  /** stop accepting, finish in-flight requests, close pools and stores */
  close(): Promise<void>
  /** SIGTERM: not ready at once, keep serving for server.drainDelayMs, then close */
  shutdown(): Promise<void>
  /** true from the start of a shutdown */
  draining(): boolean
}

export async function buildApp (config: Config, opts: BuildOptions = {}): Promise<Dualtrack> {
  const env = opts.env ?? process.env
  const gateway = createGatewayServer(config, opts.logger, loggerOptions())
  const log = gateway.log
  const store = await createStore(config, log)
  const state = new StateManager(store, log)
  const metrics = createMetrics()
  metrics.storeUp(store.kind, () => store.up())
  const dataPlane = createDataPlane(config)
  const live: Live = { config, auth: createAuth(config.admin.tokens), tokenWatch: { stop: () => undefined } }
  watchTokens(live, log)
  const parts = {
    metrics,
    shadower: new Shadower(config, metrics, log),
    affinity: new Affinity(config, store, metrics, log),
    guardian: new Guardian(config, state, metrics, log),
    accessLog: createAccessLog(log),
    recordRequests: env.DUALTRACK_METRICS !== 'off'
  }
  dataPlane.hooks = composeHooks(config, parts)
  const publish = createPublisher(live, state, dataPlane, metrics)
  state.onChange(publish)
  await state.init(yamlViews(config))
  registerProxy(gateway, dataPlane)

  if (live.auth.generated !== undefined) {
    // the contract's one exception to "tokens are never logged": there is no other way to learn it
    log.warn(`admin token: no admin.tokens configured, so this run made an operator token: ${live.auth.generated}`)
  }
  const reload = createReload({ ...parts, live, dataPlane, state, log, env, publish })
  const admin = createAdmin(log, {
    state,
    config: () => live.config,
    router: () => dataPlane.router,
    auth: () => live.auth,
    reload,
    draining: () => dataPlane.draining,
    metrics: { contentType: metrics.contentType, text: metricsText(metrics) },
    planControl: async (rollout, action, who) => {
      const actor = { name: who.name, source: 'admin' as const }
      await state.change(action === 'pause' ? planPause(rollout, actor) : planResume(rollout, actor))
    },
    shadow: parts.shadower,
    affinity: parts.affinity,
    // the ownership ledger's export: every owner a store holds, a batch at a time
    ownerExport: (filter) => store.owners(filter),
    guard: parts.guardian
  })

  // the console at / and its 5 s series, read off the counters above (DESIGN.md §10)
  // with the Redis store, each replica adds its slots to the guard's shared counters: any console shows the fleet
  const fleet = store.counters === undefined ? undefined : { counters: store.counters, up: () => store.up() }
  const stats = createStats(metrics.registry, LATENCY_BUCKETS, { rollouts: () => Object.keys(live.config.rollouts), ratio: (name) => metrics.ratioSums(name), ...(fleet ? { fleet } : {}) })
  registerConsole(admin, { auth: () => live.auth, stats })

  parts.guardian.start()
  stats.start()
  const watcher = opts.watch ? watchConfig(config.file, () => { void reload() }) : undefined
  const lifecycle = createLifecycle({
    gateway,
    admin,
    dataPlane,
    timers: [{ stop: () => watcher?.close() }, { stop: () => live.tokenWatch.stop() }, parts.guardian, stats],
    after: [parts.shadower, parts.affinity, store],
    drainDelayMs: () => live.config.server.drainDelayMs
  })
  return {
    gateway,
    admin,
    dataPlane,
    state,
    metrics,
    guardian: parts.guardian,
    config: () => live.config,
    reload,
    ...lifecycle
  }
}
