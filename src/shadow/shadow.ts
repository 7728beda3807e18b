// shadow traffic (DESIGN.md §4): after the primary answer has gone to the client, a sampled copy
// goes to the other system through its own dispatcher, bounded in flight, in size and in time;
// the two answers are compared and only metrics, logs and the mismatch store hear about it.
// GitHub Scientist's rule holds: the primary always serves, a copy never adds latency or errors
import { Pool, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import { SAFE_METHODS, backendTarget, type BackendName, type Config } from '../config/index.js'
import { encodeSalt, hash32, pathOf, thresholdOf } from '../routing/index.js'
import type { Metrics } from '../metrics/index.js'
import { compileComparer, type Answer, type Comparer } from './compare.js'
import { compileRedactor, redactText, type Redactor } from './redact.js'
import { createNoiseTracker, type NoiseTracker } from './noise.js'
import { DUALTRACK_ERR_SHADOW_TIMEOUT, DUALTRACK_ERR_SHADOW_TOO_LARGE } from '../errors.js'

type RouteConfig = Config['routes'][number]
type ShadowConfig = NonNullable<RouteConfig['shadow']>

/** mismatch samples kept per route (newest first) */
export const MAX_SAMPLES_PER_ROUTE = 100
/** distinct field labels per route; the rest count as "(other)" so label sets stay bounded */
export const MAX_FIELD_LABELS = 100
/** bytes of each body kept in a sample */
export const MAX_SAMPLE_BODY_BYTES = 8192
/**
 * mismatch samples stored (redacted, logged) per route per second: a new system that differs on
 * every answer must not turn each copy into two redactions and a log line; the metrics still
 * count every mismatch
 */
export const SAMPLES_PER_SECOND = 10

// sampling hashes the request id with its own salt: not correlated with the cohort bucket
const SAMPLE_SALT = encodeSalt('dualtrack-shadow-sample')
const NOISE_SALT = encodeSalt('dualtrack-shadow-noise')

export interface MismatchSample {
  at: string
  route: string
  method: string
  path: string
  fields: string[]
  primary: { backend: BackendName, status: number, body: unknown }
  shadow: { backend: BackendName, status: number, body: unknown }
}

/** one route's shadow settings, compiled, and its counters (kept across reloads by route name) */
interface RouteShadow {
  name: string
  cfg: ShadowConfig
  methods: ReadonlySet<string>
  threshold: number
  noiseThreshold: number
  comparer: Comparer
  redactor: Redactor
  inFlight: number
  samples: MismatchSample[]
  noise: NoiseTracker
  counts: { match: number, mismatch: number, error: number, dropped: number, noise: number }
  fieldCounts: Map<string, number>
  // prepared once per route: plain-number tallies, handed to prom-client at scrape time
  series: { total: Record<Result, { inc (): void }>, duration: Record<BackendName, { observe (v: number): void }>, fields: Map<string, { inc (): void }> }
  budget: { second: number, left: number }
}

type Result = 'match' | 'mismatch' | 'error' | 'dropped' | 'noise'
const RESULTS: readonly Result[] = ['match', 'mismatch', 'error', 'dropped', 'noise']

export interface ShadowRequest {
  readonly method: string
  readonly url: string
  readonly id: string
  /** the primary's request headers as sent upstream (hop-by-hop already stripped) */
  readonly headers: Record<string, string | string[]>
  readonly body: Buffer | null
}

export class Shadower {
  readonly #routes = new Map<string, RouteShadow>()
  #pools: Record<BackendName, { pool: Pool, origin: string, basePath: string, url: string }>
  readonly #metrics: Metrics
  readonly #log: FastifyBaseLogger

  constructor (config: Config, metrics: Metrics, log: FastifyBaseLogger) {
    this.#metrics = metrics
    this.#log = log
    this.#pools = { legacy: this.#pool(config.backends.legacy), new: this.#pool(config.backends.new) }
    this.configure(config)
  }

  #pool (b: Config['backends']['legacy']) {
    const { origin, basePath } = backendTarget(b.url)
    // copies have their own connections: a slow shadow target cannot starve the primary's pool
    return {
      pool: new Pool(origin, { connections: 64, connectTimeout: b.connectTimeoutMs, keepAliveTimeout: b.keepAliveTimeoutMs, keepAliveMaxTimeout: b.keepAliveTimeoutMs }),
      origin,
      basePath,
      url: b.url
    }
  }

  /** (re)compile every route's shadow settings; counters and samples survive under the same name */
  configure (config: Config): void {
    for (const b of ['legacy', 'new'] as const) {
      const old = this.#pools?.[b]
      if (old !== undefined && old.url !== config.backends[b].url) {
        this.#pools = { ...this.#pools, [b]: this.#pool(config.backends[b]) }
        void old.pool.close()
      }
    }
    const seen = new Set<string>()
    for (const r of config.routes) {
      if (r.shadow === undefined) continue
      seen.add(r.name)
      const old = this.#routes.get(r.name)
      const s = r.shadow
      this.#routes.set(r.name, {
        name: r.name,
        cfg: s,
        methods: new Set(s.methods),
        threshold: thresholdOf(s.percent),
        noiseThreshold: thresholdOf(s.sameBackendPercent),
        comparer: compileComparer({ ignore: s.compare.ignore, headers: s.compare.headers, numericTolerance: s.compare.numericTolerance, unorderedArrays: s.compare.unorderedArrays }),
        redactor: compileRedactor(s.redact),
        inFlight: old?.inFlight ?? 0,
        samples: old?.samples ?? [],
        noise: old?.noise ?? createNoiseTracker(),
        counts: old?.counts ?? { match: 0, mismatch: 0, error: 0, dropped: 0, noise: 0 },
        fieldCounts: old?.fieldCounts ?? new Map(),
        series: old?.series ?? this.#prepare(r.name),
        budget: old?.budget ?? { second: 0, left: SAMPLES_PER_SECOND }
      })
    }
    for (const name of this.#routes.keys()) if (!seen.has(name)) this.#routes.delete(name)
  }

  #prepare (route: string): RouteShadow['series'] {
    const total = {} as Record<Result, { inc (): void }>
    // start at 0, so increase() sees the first event
    for (const result of RESULTS) total[result] = this.#metrics.shadow.tally('total', route, result, true)
    return {
      total,
      duration: { legacy: this.#metrics.shadow.timing(route, 'legacy'), new: this.#metrics.shadow.timing(route, 'new') },
      fields: new Map()
    }
  }

  /**
   * is this request copied? Reads when the route lists the method; writes only with
   * `writes: dry-run` (a copied payment can charge twice). Deterministic per request id.
   */
  sampled (route: string, method: string, requestId: string): boolean {
    const rs = this.#routes.get(route)
    if (rs === undefined || !rs.methods.has(method)) return false
    if (!SAFE_METHODS.has(method) && rs.cfg.writes !== 'dry-run') return false
    if (rs.threshold >= 10_000) return true
    const h = hash32(SAMPLE_SALT, requestId)
    return h >= 0 && h % 10_000 < rs.threshold
  }

  /** the most bytes of a body a copy may carry or compare */
  maxBodyBytes (route: string): number {
    return this.#routes.get(route)?.cfg.maxBodyBytes ?? 0
  }

  /** count a copy that could not be made (body too large, chunked upload, answer too large) */
  drop (route: string, why: string): void {
    const rs = this.#routes.get(route)
    if (rs === undefined) return
    rs.counts.dropped++
    rs.series.total.dropped.inc()
    this.#log.debug({ route, why }, 'shadow copy dropped')
  }

  /** send the copy; never throws, never awaited by the request path */
  fire (route: string, primaryBackend: BackendName, req: ShadowRequest, primary: Answer): void {
    const rs = this.#routes.get(route)
    if (rs === undefined) return
    if (rs.inFlight >= rs.cfg.maxInFlight) return this.drop(route, 'maxInFlight')
    // Diffy's noise cancellation: a sample of reads goes to the same system twice
    const h = rs.noiseThreshold > 0 && SAFE_METHODS.has(req.method) ? hash32(NOISE_SALT, req.id) : -1
    const noiseRun = h >= 0 && h % 10_000 < rs.noiseThreshold
    const target: BackendName = noiseRun ? primaryBackend : primaryBackend === 'legacy' ? 'new' : 'legacy'
    rs.inFlight++
    const p = this.#pools[target]
    const started = performance.now()
    const copy = new ShadowCopy(rs.cfg.timeoutMs, rs.cfg.maxBodyBytes, (err, answer) => {
      rs.inFlight--
      if (err !== null) {
        rs.counts.error++
        rs.series.total.error.inc()
        this.#log.debug({ route, backend: target, err: { message: err.message, code: (err as { code?: string }).code } }, 'shadow copy failed')
        return
      }
      rs.series.duration[target].observe((performance.now() - started) / 1000)
      if (answer === null) return this.drop(route, 'answer larger than maxBodyBytes')
      try {
        this.#judge(rs, req, primaryBackend, primary, target, answer, noiseRun)
      } catch (e) {
        this.#log.error({ route, err: e }, 'shadow comparison failed')
      }
    })
    // the receiving system sees it is a copy: for a dry-run write it promises not to commit
    const headers = Object.assign({}, req.headers)
    headers['x-dualtrack-shadow'] = '1'
    p.pool.dispatch({ origin: p.origin, path: p.basePath + req.url, method: req.method as 'GET', headers, body: req.body }, copy)
    copy.arm()
  }

  #judge (rs: RouteShadow, req: ShadowRequest, pb: BackendName, primary: Answer, sb: BackendName, shadow: Answer, noiseRun: boolean): void {
    const result = rs.comparer.compare(primary, shadow)
    const route = rs.name
    if (noiseRun) {
      // fields that differ between two answers of one system are noise, not a migration bug
      if (!result.equal) rs.noise.observe(result.fields)
      rs.counts.noise++
      rs.series.total.noise.inc()
      return
    }
    const { real } = rs.noise.filter(result.fields)
    if (result.equal || real.length === 0) {
      rs.counts.match++
      rs.series.total.match.inc()
      return
    }
    rs.counts.mismatch++
    rs.series.total.mismatch.inc()
    for (const f of real) {
      const known = rs.fieldCounts.has(f)
      const label = known || rs.fieldCounts.size < MAX_FIELD_LABELS ? f : '(other)'
      rs.fieldCounts.set(label, (rs.fieldCounts.get(label) ?? 0) + 1)
      let child = rs.series.fields.get(label)
      if (child === undefined) { child = this.#metrics.shadow.tally('fields', route, label); rs.series.fields.set(label, child) }
      child.inc()
    }
    const second = Math.floor(Date.now() / 1000)
    if (rs.budget.second !== second) { rs.budget.second = second; rs.budget.left = SAMPLES_PER_SECOND }
    if (rs.budget.left <= 0) return
    rs.budget.left--
    const sample: MismatchSample = {
      at: new Date().toISOString(),
      route,
      method: req.method,
      // the path only (queries carry tokens), with card and phone numbers masked
      path: redactText(pathOf(req.url)),
      fields: real,
      primary: { backend: pb, status: primary.status, body: this.#redactBody(rs, primary.body) },
      shadow: { backend: sb, status: shadow.status, body: this.#redactBody(rs, shadow.body) }
    }
    rs.samples.unshift(sample)
    if (rs.samples.length > MAX_SAMPLES_PER_ROUTE) rs.samples.length = MAX_SAMPLES_PER_ROUTE
    this.#log.info({ route, method: req.method, path: sample.path, fields: real.slice(0, 10), primary: pb, shadow: sb }, 'shadow mismatch')
  }

  #redactBody (rs: RouteShadow, body: Buffer): unknown {
    const text = body.subarray(0, MAX_SAMPLE_BODY_BYTES).toString('utf8')
    try {
      return rs.redactor(JSON.parse(body.toString('utf8')))
    } catch {
      return redactText(text)
    }
  }

  /** recent mismatch samples, newest first, already redacted */
  mismatches (route: string | undefined, limit: number): MismatchSample[] {
    const all = route === undefined ? [...this.#routes.values()].flatMap((r) => r.samples) : this.#routes.get(route)?.samples ?? []
    return all.slice().sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, limit)
  }

  /** per route: counts, match rate, top mismatching fields, noise fields */
  summary () {
    const out: Record<string, unknown> = {}
    for (const r of this.#routes.values()) {
      const compared = r.counts.match + r.counts.mismatch
      out[r.name] = {
        ...r.counts,
        inFlight: r.inFlight,
        matchRate: compared === 0 ? null : r.counts.match / compared,
        topFields: [...r.fieldCounts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([field, count]) => ({ field, count })),
        noiseFields: r.noise.fields()
      }
    }
    return { routes: out }
  }

  has (route: string): boolean { return this.#routes.has(route) }

  async close (): Promise<void> {
    await Promise.all([this.#pools.legacy.pool.destroy(), this.#pools.new.pool.destroy()])
  }
}

// one copy in flight: an undici handler that keeps the answer (bounded) and reports once. The
// dispatch API costs no Readable, no async iterator and no AbortSignal per copy (the request()
// version of this cost about 3x more CPU per copy under load)
class ShadowCopy implements Dispatcher.DispatchHandler {
  readonly #timeoutMs: number
  readonly #max: number
  readonly #done: (err: Error | null, answer: Answer | null) => void
  #controller: Dispatcher.DispatchController | null = null
  #timer: NodeJS.Timeout | null = null
  #status = 0
  #headers: Record<string, string | string[] | undefined> = {}
  #chunks: Buffer[] = []
  #bytes = 0
  #over = false
  #finished = false

  constructor (timeoutMs: number, max: number, done: (err: Error | null, answer: Answer | null) => void) {
    this.#timeoutMs = timeoutMs
    this.#max = max
    this.#done = done
  }

  arm (): void {
    if (!this.#finished) {
      this.#timer = setTimeout(() => {
        this.#timer = null
        const err = new DUALTRACK_ERR_SHADOW_TIMEOUT(this.#timeoutMs)
        if (this.#controller !== null) this.#controller.abort(err)
        else this.#finish(err, null)
      }, this.#timeoutMs)
    }
  }

  onRequestStart (controller: Dispatcher.DispatchController): void { this.#controller = controller }

  onResponseStart (_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return
    this.#status = status
    this.#headers = headers
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytes += chunk.length
    if (this.#bytes > this.#max) {
      // past the cap the answer is not compared: cancel it rather than read it
      this.#over = true
      controller.abort(new DUALTRACK_ERR_SHADOW_TOO_LARGE(this.#max))
      return
    }
    this.#chunks.push(chunk)
  }

  onResponseEnd (): void {
    this.#finish(null, { status: this.#status, headers: this.#headers, body: this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks, this.#bytes) })
  }

  onResponseError (_c: Dispatcher.DispatchController, err: Error): void {
    if (this.#over) this.#finish(null, null)
    else this.#finish(err, null)
  }

  #finish (err: Error | null, answer: Answer | null): void {
    if (this.#finished) return
    this.#finished = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#done(err, answer)
  }
}
