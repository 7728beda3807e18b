// the routing decision (DESIGN.md §1): rollback, affinity, force, region, percent, unkeyed, default
import type { BackendName, RolloutConfig } from '../config/index.js'
import { bucketOf, encodeSalt, thresholdOf, type SaltPrefix } from './bucket.js'
import { compileKeySource, compileKeySources, type KeyReader, type RequestView } from './cohort-key.js'

export type Reason = 'rollback' | 'affinity' | 'force' | 'region' | 'percent' | 'unkeyed' | 'default'
export const REASONS: readonly Reason[] = Object.freeze(['rollback', 'affinity', 'force', 'region', 'percent', 'unkeyed', 'default'])

export interface Decision {
  backend: BackendName
  reason: Reason
  /** the cohort bucket 0..9999, or -1 when none was computed */
  bucket: number
}

export type RollbackMode = 'hard' | 'drain'

/** the part of a rollout that changes at run time (admin API, reloads, guard, plan) */
export interface RolloutLive {
  readonly percent: number
  readonly regions: Readonly<Record<string, number>>
  readonly rollback: RollbackMode | null
}

/** a rollout compiled for the request path: readers, encoded salt, Sets, thresholds */
export interface CompiledRollout {
  readonly name: string
  readonly salt: SaltPrefix
  readonly key: KeyReader
  readonly region: KeyReader | undefined
  readonly forceNew: ReadonlySet<string>
  readonly forceLegacy: ReadonlySet<string>
  readonly unkeyed: BackendName
  threshold: number
  regionThresholds: Map<string, number>
  rollback: RollbackMode | null
}

export function compileRollout (name: string, cfg: RolloutConfig, live?: RolloutLive): CompiledRollout {
  const r: CompiledRollout = {
    name,
    salt: encodeSalt(cfg.salt),
    key: compileKeySources(cfg.cohortKey),
    region: cfg.regions ? compileKeySource(cfg.regions.key) : undefined,
    forceNew: new Set(cfg.force.new),
    forceLegacy: new Set(cfg.force.legacy),
    unkeyed: cfg.unkeyed,
    threshold: 0,
    regionThresholds: new Map(),
    rollback: null
  }
  applyLive(r, live ?? { percent: cfg.percent, regions: cfg.regions?.percent ?? {}, rollback: null })
  return r
}

/** swap in new run-time values; regions are matched case-insensitively */
export function applyLive (r: CompiledRollout, live: RolloutLive): void {
  const regions = new Map<string, number>()
  for (const [k, v] of Object.entries(live.regions)) regions.set(k.toLowerCase(), thresholdOf(v))
  r.threshold = thresholdOf(live.percent)
  r.regionThresholds = regions
  r.rollback = live.rollback
}

/**
 * decide for one request into `out` (no allocation on the request path);
 * `owner` is the affinity owner of the order the request names, when one is known
 */
export function decideInto (out: Decision, r: CompiledRollout, req: RequestView, owner: BackendName | undefined): Decision {
  out.bucket = -1
  if (r.rollback !== null) {
    // drain: orders new already owns keep going there; everything else goes back
    if (r.rollback === 'drain' && owner !== undefined) return set(out, owner, 'affinity')
    return set(out, 'legacy', 'rollback')
  }
  if (owner !== undefined) return set(out, owner, 'affinity')
  return decideKeyed(out, r, r.key(req), req)
}

/** the rules below affinity for a cohort key; `region` is the request (read lazily) or the region itself */
function decideKeyed (out: Decision, r: CompiledRollout, key: string | undefined, region: RequestView | string | undefined): Decision {
  if (key === undefined) return set(out, r.unkeyed, 'unkeyed')
  if (r.forceNew.size > 0 && r.forceNew.has(key)) return set(out, 'new', 'force')
  if (r.forceLegacy.size > 0 && r.forceLegacy.has(key)) return set(out, 'legacy', 'force')
  const bucket = bucketOf(r.salt, key)
  out.bucket = bucket
  if (r.regionThresholds.size > 0 && region !== undefined) {
    // the region is read only when some region has its own percentage
    const name = typeof region === 'string' ? region : r.region?.(region)
    const t = name === undefined ? undefined : r.regionThresholds.get(name.toLowerCase())
    if (t !== undefined) return set(out, bucket >= 0 && bucket < t ? 'new' : 'legacy', 'region')
  }
  // bucket -1 (unhashable) is below every threshold only by accident: guard it explicitly
  return set(out, bucket >= 0 && bucket < r.threshold ? 'new' : 'legacy', 'percent')
}

/** what a user with this key (and region) gets, as the admin API's explain shows it */
export function explainKey (r: CompiledRollout, key: string, region?: string): Decision {
  const out: Decision = { backend: 'legacy', reason: 'default', bucket: -1 }
  if (r.rollback !== null) return set(out, 'legacy', 'rollback')
  return decideKeyed(out, r, key.length > 0 ? key : undefined, region)
}

export function decide (r: CompiledRollout, req: RequestView, owner?: BackendName): Decision {
  return decideInto({ backend: 'legacy', reason: 'default', bucket: -1 }, r, req, owner)
}

function set (out: Decision, backend: BackendName, reason: Reason): Decision {
  out.backend = backend
  out.reason = reason
  return out
}
