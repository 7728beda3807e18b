// the routing decision (DESIGN.md §1): rollback, affinity, force, segment, region, percent, unkeyed, default
import type { BackendName, RolloutConfig } from '../config/index.js'
import { bucketOf, encodeSalt, thresholdOf, type SaltPrefix } from './bucket.js'
import { compileKeySource, compileKeySources, type KeyReader, type RequestView } from './cohort-key.js'
import { applySegmentPercents, compileSegments, matchSegment, matchValues, readAttributes, traceSegments, type CompiledSegment, type CompiledSegments, type SegmentSpec, type SegmentTrace } from './segments.js'

export type Reason = 'rollback' | 'affinity' | 'force' | 'segment' | 'region' | 'percent' | 'unkeyed' | 'default'
export const REASONS: readonly Reason[] = Object.freeze(['rollback', 'affinity', 'force', 'segment', 'region', 'percent', 'unkeyed', 'default'])

export interface Decision {
  backend: BackendName
  reason: Reason
  /** the cohort bucket 0..9999, or -1 when none was computed */
  bucket: number
  /** the segment that decided (reason segment), for the access log and metrics */
  segment?: string | undefined
  /** with reason region: the region (lowercase), for the per-region sample-ratio check */
  region?: string | undefined
  /**
   * the bucket threshold the request was held to (new iff bucket < threshold), 0..10000: the
   * rollout's, its region's or its percent segment's (for unkeyed, the one a key would have met);
   * -1 when no percentage decided (rollback, affinity, force, a fixed-backend segment, default):
   * the sample-ratio check counts exactly the requests with one
   */
  threshold: number
}

export type RollbackMode = 'hard' | 'drain'

/** the part of a rollout that changes at run time (admin API, reloads, guard, plan) */
export interface RolloutLive {
  readonly percent: number
  readonly regions: Readonly<Record<string, number>>
  readonly rollback: RollbackMode | null
  /** percent segments' percentages by name (absent: the YAML's) */
  readonly segments?: Readonly<Record<string, number>> | undefined
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
  /** undefined when the rollout has no segments: one check on the request path */
  readonly segments: CompiledSegments | undefined
  readonly segmentSpecs: readonly SegmentSpec[]
  threshold: number
  regionThresholds: Map<string, number>
  rollback: RollbackMode | null
}

const NO_PROXIES = (): boolean => false

/** `trusted`: server.trustedProxies, for the client-ip attribute */
export function compileRollout (name: string, cfg: RolloutConfig, live?: RolloutLive, trusted: (ip: string) => boolean = NO_PROXIES): CompiledRollout {
  const r: CompiledRollout = {
    name,
    salt: encodeSalt(cfg.salt),
    key: compileKeySources(cfg.cohortKey),
    region: cfg.regions ? compileKeySource(cfg.regions.key) : undefined,
    forceNew: new Set(cfg.force.new),
    forceLegacy: new Set(cfg.force.legacy),
    unkeyed: cfg.unkeyed,
    segments: compileSegments(cfg.attributes, cfg.segments, trusted),
    segmentSpecs: cfg.segments ?? [],
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
  if (r.segments !== undefined) applySegmentPercents(r.segments, live.segments ?? {}, r.segmentSpecs)
}

/**
 * decide for one request into `out` (no allocation on the request path);
 * `owner` is the affinity owner of the order the request names, when one is known
 */
export function decideInto (out: Decision, r: CompiledRollout, req: RequestView, owner: BackendName | undefined): Decision {
  out.bucket = -1
  out.threshold = -1
  out.segment = undefined
  // a reused decision forgets its last region (checked, not written: most decisions never have one)
  if (out.region !== undefined) out.region = undefined
  if (r.rollback !== null) {
    // drain: orders new already owns keep going there; everything else goes back
    if (r.rollback === 'drain' && owner !== undefined) return set(out, owner, 'affinity')
    return set(out, 'legacy', 'rollback')
  }
  if (owner !== undefined) return set(out, owner, 'affinity')
  const key = r.key(req)
  if (r.segments === undefined) return decideKeyed(out, r, key, req, undefined)
  // force beats segment: a listed key is decided without reading any attribute
  if (key !== undefined && isForced(r, key)) return decideKeyed(out, r, key, req, undefined)
  return decideKeyed(out, r, key, req, matchSegment(r.segments, req))
}

function isForced (r: CompiledRollout, key: string): boolean {
  return (r.forceNew.size > 0 && r.forceNew.has(key)) || (r.forceLegacy.size > 0 && r.forceLegacy.has(key))
}

/**
 * the rules below affinity for a cohort key; `region` is the request (read lazily) or the region
 * itself; `seg` the segment the request matched
 */
function decideKeyed (out: Decision, r: CompiledRollout, key: string | undefined, region: RequestView | string | undefined, seg: CompiledSegment | undefined): Decision {
  if (key !== undefined) {
    if (r.forceNew.size > 0 && r.forceNew.has(key)) return set(out, 'new', 'force')
    if (r.forceLegacy.size > 0 && r.forceLegacy.has(key)) return set(out, 'legacy', 'force')
  }
  if (seg !== undefined) {
    // a fixed system needs no key; a percentage needs the cohort bucket
    if (seg.backend !== undefined) { out.segment = seg.name; return set(out, seg.backend, 'segment') }
    if (key !== undefined) {
      const b = bucketOf(r.salt, key)
      out.bucket = b
      out.segment = seg.name
      out.threshold = seg.threshold
      return set(out, b >= 0 && b < seg.threshold ? 'new' : 'legacy', 'segment')
    }
    // unkeyed in a percent segment: held against the share its key would have met
    out.threshold = seg.threshold
    return set(out, r.unkeyed, 'unkeyed')
  }
  if (key === undefined) { out.threshold = r.threshold; return set(out, r.unkeyed, 'unkeyed') }
  const bucket = bucketOf(r.salt, key)
  out.bucket = bucket
  if (r.regionThresholds.size > 0 && region !== undefined) {
    // the region is read only when some region has its own percentage
    const name = typeof region === 'string' ? region : r.region?.(region)
    const lower = name?.toLowerCase()
    const t = lower === undefined ? undefined : r.regionThresholds.get(lower)
    if (t !== undefined) {
      out.region = lower
      out.threshold = t
      return set(out, bucket >= 0 && bucket < t ? 'new' : 'legacy', 'region')
    }
  }
  out.threshold = r.threshold
  // bucket -1 (unhashable) is below every threshold only by accident: guard it explicitly
  return set(out, bucket >= 0 && bucket < r.threshold ? 'new' : 'legacy', 'percent')
}

export interface Explanation extends Omit<Decision, 'threshold'> {
  /** every attribute of the rollout as read (null: absent) */
  readonly attributes: Record<string, string | null>
  /** why each segment matched or not, up to the first that matched */
  readonly segments?: SegmentTrace[]
}

function explained (out: Decision, r: CompiledRollout, values: readonly (string | undefined)[]): Explanation {
  const cs = r.segments
  const attributes: Record<string, string | null> = {}
  if (cs !== undefined) cs.attributes.forEach((n, i) => { attributes[n] = values[i] ?? null })
  const d: Omit<Decision, 'threshold'> = { backend: out.backend, reason: out.reason, bucket: out.bucket }
  if (out.segment !== undefined) d.segment = out.segment
  return cs === undefined ? { ...d, attributes } : { ...d, attributes, segments: traceSegments(cs, values) }
}

/** what a user with this key (and region, and attribute values by name) gets, as the admin API's explain shows it */
export function explainKey (r: CompiledRollout, key: string, region?: string, attrs: Readonly<Record<string, string>> = {}): Explanation {
  const out: Decision = { backend: 'legacy', reason: 'default', bucket: -1, threshold: -1 }
  const values = r.segments === undefined ? [] : r.segments.attributes.map((n) => attrs[n] !== undefined && attrs[n] !== '' ? attrs[n] : undefined)
  if (r.rollback !== null) return explained(set(out, 'legacy', 'rollback'), r, values)
  const k = key.length > 0 ? key : undefined
  const seg = r.segments === undefined || (k !== undefined && isForced(r, k)) ? undefined : matchValues(r.segments, values)
  return explained(decideKeyed(out, r, k, region, seg), r, values)
}

/** what this request gets (no affinity owner): the same code as the request path, with the attributes shown */
export function explainRequest (r: CompiledRollout, req: RequestView): Explanation {
  const out = decideInto({ backend: 'legacy', reason: 'default', bucket: -1, threshold: -1 }, r, req, undefined)
  return explained(out, r, r.segments === undefined ? [] : readAttributes(r.segments, req))
}

export function decide (r: CompiledRollout, req: RequestView, owner?: BackendName): Decision {
  return decideInto({ backend: 'legacy', reason: 'default', bucket: -1, threshold: -1, segment: undefined }, r, req, owner)
}

function set (out: Decision, backend: BackendName, reason: Reason): Decision {
  out.backend = backend
  out.reason = reason
  return out
}
