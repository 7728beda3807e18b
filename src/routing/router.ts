// the compiled routing state of one config: route table, rollouts, default backend; rebuilt on a
// reload and swapped whole, updated in place (thresholds, rollbacks) when the run-time state changes
import type { BackendName, Config } from '../config/index.js'
import { parseCidr } from '../config/index.js'
import { compileRouteTable, type RouteTable } from './route-table.js'
import { applyLive, compileRollout, type CompiledRollout, type RolloutLive } from './decide.js'
import { compileCidrs } from './segments.js'

type RouteConfig = Config['routes'][number]

export interface CompiledRoute {
  readonly name: string
  readonly config: RouteConfig
  readonly rollout: CompiledRollout
  readonly match: RouteConfig['match']
}

export class Router {
  readonly table: RouteTable<CompiledRoute>
  readonly rollouts: ReadonlyMap<string, CompiledRollout>
  readonly routes: readonly CompiledRoute[]
  readonly defaultBackend: BackendName

  constructor (cfg: Config, live?: Readonly<Record<string, RolloutLive>>) {
    const rollouts = new Map<string, CompiledRollout>()
    // the client-ip attribute believes x-forwarded-for from these only
    const trusted = compileCidrs(cfg.server.trustedProxies.filter((c) => parseCidr(c) !== undefined))
    for (const [name, r] of Object.entries(cfg.rollouts)) rollouts.set(name, compileRollout(name, r, live?.[name], trusted))
    this.rollouts = rollouts
    this.routes = cfg.routes.map((r) => ({ name: r.name, config: r, match: r.match, rollout: rollouts.get(r.rollout) as CompiledRollout }))
    this.table = compileRouteTable(this.routes)
    this.defaultBackend = cfg.default
  }

  /** apply the run-time state of every rollout it names */
  applyState (live: Readonly<Record<string, RolloutLive>>): void {
    for (const [name, l] of Object.entries(live)) {
      const r = this.rollouts.get(name)
      if (r !== undefined) applyLive(r, l)
    }
  }
}
