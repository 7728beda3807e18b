// the CLI's side of the admin API: one HTTP call, its errors as one line each, and the tables
import { request } from 'undici'

/** exit codes: scripts tell a refused call from a typo */
export const EXIT = { ok: 0, failed: 1, usage: 2, rolledBack: 3, timedOut: 4 } as const

/** a mistake in the command line: exit 2 with a one-line message */
export class UsageError extends Error {}
/** a call that did not go through: exit 1 with a one-line message */
export class CallError extends Error {
  constructor (message: string, readonly status: number | undefined, readonly code: string | undefined) { super(message) }
}

export interface Client {
  readonly base: string
  call<T = unknown> (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T>
  /** a GET streamed straight to `out` (NDJSON exports): nothing held in memory; the lines written */
  stream (path: string, out: { write (s: string | Buffer): unknown, once?: (e: 'drain', f: () => void) => unknown }): Promise<number>
}

export function createClient (admin: string | undefined, env: NodeJS.ProcessEnv = process.env): Client {
  const base = (admin ?? env.DUALTRACK_ADMIN_URL ?? 'http://127.0.0.1:9090').replace(/\/$/, '')
  const token = env.DUALTRACK_TOKEN
  const authorization = token ? { authorization: `Bearer ${token}` } : {}
  return {
    base,
    async stream (path, out) {
      let res
      try {
        res = await request(base + path, { headers: authorization, headersTimeout: 30_000, bodyTimeout: 60_000 })
      } catch (err) {
        throw new CallError(`cannot reach the admin API at ${base}: ${(err as Error).message} (--admin URL or DUALTRACK_ADMIN_URL)`, undefined, undefined)
      }
      if (res.statusCode >= 400) {
        const text = await res.body.text()
        let b: { error?: string, message?: string } = {}
        try { b = JSON.parse(text) as typeof b } catch { b = { message: text } }
        throw new CallError(`${res.statusCode} ${b.error ?? ''} ${b.message ?? ''}`.replace(/ {2,}/g, ' ').trim(), res.statusCode, b.error)
      }
      let lines = 0
      try {
        for await (const chunk of res.body) {
          const buf = chunk as Buffer
          for (const byte of buf) if (byte === 10) lines++
          // the pipe's backpressure slows the read: a million owners never sit in memory
          if (out.write(buf) === false && out.once) await new Promise<void>((resolve) => out.once?.('drain', resolve))
        }
      } catch (err) {
        throw new CallError(`export cut short after ${lines} owners: ${(err as Error).message}`, undefined, undefined)
      }
      return lines
    },
    async call<T> (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
      let status: number
      let parsed: unknown
      try {
        const res = await request(base + path, {
          method,
          headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          body: body === undefined ? undefined : JSON.stringify(body),
          headersTimeout: 10_000,
          bodyTimeout: 10_000
        })
        status = res.statusCode
        const text = await res.body.text()
        try { parsed = JSON.parse(text) } catch { parsed = text }
      } catch (err) {
        throw new CallError(`cannot reach the admin API at ${base}: ${(err as Error).message} (--admin URL or DUALTRACK_ADMIN_URL)`, undefined, undefined)
      }
      if (status >= 400) {
        const b = parsed as { message?: string, error?: string } | string
        const code = typeof b === 'object' && b !== null ? b.error : undefined
        const msg = typeof b === 'object' && b !== null ? (b.message ?? JSON.stringify(b)) : String(b)
        const hint = status === 401
          ? (token ? ' (DUALTRACK_TOKEN holds a token this gateway does not know)' : ' (set DUALTRACK_TOKEN to an admin token)')
          : status === 403 ? ' (DUALTRACK_TOKEN is a viewer token)' : ''
        throw new CallError(`${status} ${code ?? ''} ${msg}${hint}`.replace(/ {2,}/g, ' '), status, code)
      }
      return parsed as T
    }
  }
}

export interface RolloutView {
  percent: number
  regions: Record<string, number>
  segments?: Record<string, unknown>
  rollback: { mode: string, reason: string, by: string, at: string, propagated: boolean } | null
  updatedBy: string
  updatedAt: string
  source: string
  plan?: { step: number, steps: number[], paused: boolean, state: string, since: string, holdMs?: number, note: string | null } | null
}
export interface StateView { version: number, rollouts: Record<string, RolloutView> }
export interface AuditEntry { at: string, actor: string, source: string, action: string, rollout: string | null, before: unknown, after: unknown, reason: string | null }
type Series = (number | null)[]
export interface StatsView {
  backends: Record<'legacy' | 'new', { rps: Series, errorRate: Series, p99Ms: Series }>
  rollouts: Record<string, { sampleRatio: { n: number, observed: number | null, expected: number, pValue: number | null, ok: boolean | null } }>
}
export interface GuardView { verdict?: string, reasons?: string[] }

export function table (head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i] as number)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${Math.round(v * 10_000) / 100}%`)
// a minute of slots: requests-weighted error rate, worst p99
const minute = (b: { rps: Series, errorRate: Series, p99Ms: Series } | undefined) => {
  if (b === undefined) return { rps: null, err: null, p99: null }
  let req = 0
  let errs = 0
  let p99: number | null = null
  b.rps.forEach((r, i) => {
    if (r === null) return
    req += r
    errs += r * (b.errorRate[i] ?? 0)
    const p = b.p99Ms[i]
    if (p !== null && p !== undefined) p99 = Math.max(p99 ?? 0, p)
  })
  const n = b.rps.filter((r) => r !== null).length
  return { rps: n === 0 ? null : req / n, err: req === 0 ? null : errs / req, p99 }
}

export function renderState (s: StateView, only?: string): string {
  // a segments column only where some rollout has percent segments (DESIGN.md §8)
  const withSegments = Object.values(s.rollouts).some((r) => r.segments !== undefined)
  const rows = Object.entries(s.rollouts).filter(([name]) => only === undefined || name === only).map(([name, r]) => [
    name,
    `${r.percent}%`,
    Object.entries(r.regions).map(([k, p]) => `${k}=${p}%`).join(' ') || '-',
    ...(withSegments ? [Object.entries(r.segments ?? {}).map(([k, p]) => `${k}=${String(p)}%`).join(' ') || '-'] : []),
    r.rollback ? `${r.rollback.mode} by ${r.rollback.by}${r.rollback.propagated ? '' : ' (not yet propagated)'}: ${r.rollback.reason}` : '-',
    r.plan ? `${r.plan.state}${r.plan.paused ? ' (paused)' : ''} ${r.plan.steps.join('>')}` : '-',
    `${r.updatedBy} via ${r.source} at ${r.updatedAt}`
  ])
  return `state version ${s.version}\n` + table(['rollout', 'percent', 'regions', ...(withSegments ? ['segments'] : []), 'rollback', 'plan', 'last change'], rows)
}

/** the last minute per rollout: observed split, errors and p99 per backend, the guard's verdict */
export function renderTraffic (s: StateView, stats: StatsView | undefined, guard: Record<string, GuardView | undefined>, only?: string): string {
  if (stats === undefined) return 'last minute: this gateway has no /admin/stats'
  const l = minute(stats.backends.legacy)
  const n = minute(stats.backends.new)
  const rows = Object.keys(s.rollouts).filter((name) => only === undefined || name === only).map((name) => {
    const sr = stats.rollouts[name]?.sampleRatio
    const split = sr === undefined || sr.n === 0 ? '-' : `${pct(sr.observed)} of ${sr.n} (expected ${pct(sr.expected)}${sr.ok === false ? ', MISMATCH' : ''})`
    const g = guard[name]
    return [name, split, `${l.rps === null ? '-' : l.rps.toFixed(1)}/s ${pct(l.err)} ${l.p99 === null ? '-' : `${l.p99}ms`}`,
      `${n.rps === null ? '-' : n.rps.toFixed(1)}/s ${pct(n.err)} ${n.p99 === null ? '-' : `${n.p99}ms`}`, g?.verdict ?? '-']
  })
  return 'last minute\n' + table(['rollout', 'split on new', 'legacy req err p99', 'new req err p99', 'verdict'], rows)
}

export function renderAudit (entries: AuditEntry[]): string {
  return table(['at', 'actor', 'source', 'action', 'rollout', 'before -> after', 'reason'],
    entries.map((e) => [e.at, e.actor, e.source, e.action, e.rollout ?? '*', `${JSON.stringify(e.before)} -> ${JSON.stringify(e.after)}`, e.reason ?? '']))
}

export interface ShadowSummary { routes: Record<string, { match: number, mismatch: number, error: number, dropped: number, matchRate: number | null, topFields: { field: string, count: number }[] }> }
export interface MismatchSample { at: string, route: string, method: string, path: string, fields: string[], primary: { backend: string, status: number }, shadow: { backend: string, status: number } }

export function renderMismatches (summary: ShadowSummary, samples: MismatchSample[], route?: string): string {
  const routes = Object.entries(summary.routes).filter(([name]) => route === undefined || name === route)
  const head = routes.length === 0
    ? (route === undefined ? 'no route has shadow traffic' : `route ${route} has no shadow traffic`)
    : table(['route', 'match', 'mismatch', 'error', 'dropped', 'mismatch rate', 'top fields'], routes.map(([name, r]) => [
      name, String(r.match), String(r.mismatch), String(r.error), String(r.dropped), r.matchRate === null ? '-' : pct(1 - r.matchRate),
      r.topFields.slice(0, 3).map((f) => `${f.field} x${f.count}`).join(', ') || '-'
    ]))
  const list = samples.length === 0
    ? 'no mismatch sample'
    : table(['at', 'route', 'request', 'fields', 'primary', 'shadow'], samples.map((s) => [
      s.at, s.route, `${s.method} ${s.path}`, s.fields.join(', '), `${s.primary.backend} ${s.primary.status}`, `${s.shadow.backend} ${s.shadow.status}`
    ]))
  return `${head}\n\nlatest samples (redacted)\n${list}`
}

export function renderPlans (s: StateView, only?: string): string {
  const rows = Object.entries(s.rollouts).filter(([name]) => only === undefined || name === only).map(([name, r]) => {
    const p = r.plan
    if (p === undefined) return [name, '-', 'no plan', '-', '-', '']
    if (p === null) return [name, '-', 'not started', '-', '-', '']
    const left = p.holdMs === undefined || p.state === 'done' ? '-' : `${Math.max(0, Math.round((p.holdMs - (Date.now() - Date.parse(p.since))) / 1000))}s`
    return [name, `${p.step + 1}/${p.steps.length} (${p.steps[p.step] ?? '-'}%)`, `${p.state}${p.paused ? ' (paused)' : ''}`, p.steps.join('>'), left, p.note ?? '']
  })
  return table(['rollout', 'step', 'state', 'steps', 'hold left', 'note'], rows)
}

export interface ExplainView {
  rollout: string, backend: string, reason: string, bucket: number, segment?: string, key?: string | null
  attributes?: Record<string, string | null>
  segments?: { segment: string, matched: boolean, failed?: { attribute: string, op: string, inverted: boolean, value: string | null, why: string } }[]
}

export function renderExplain (b: ExplainView): string {
  const lines = [`rollout ${b.rollout}: ${b.backend} (reason ${b.reason}${b.segment ? ` ${b.segment}` : ''}, bucket ${b.bucket})`]
  const attrs = Object.entries(b.attributes ?? {})
  if (b.key === null) lines.push('  cohort key: none found')
  if (attrs.length > 0) lines.push('  attributes: ' + attrs.map(([k, x]) => `${k}=${x === null ? '(missing)' : JSON.stringify(x)}`).join(' '))
  for (const s of b.segments ?? []) {
    const f = s.failed
    lines.push(`  segment ${s.segment}: ${s.matched ? 'matched' : `no, ${f?.attribute} ${f?.inverted ? 'NOT ' : ''}${f?.op}: ${f?.why === 'false' ? `${JSON.stringify(f.value)} does not hold` : f?.why === 'missing' ? 'missing (a missing attribute never matches)' : `${JSON.stringify(f?.value)} does not parse (never matches)`}`}`)
  }
  return lines.join('\n')
}

export interface GuardBody {
  rollouts: Record<string, {
    verdict: string
    scope?: string
    window?: { kind: string, since: string }
    backends?: Record<'legacy' | 'new', { requests: number, errorRate: number, p99Ms: number }>
    errorRate?: { delta: number, lower: number, upper: number, pValue: number } | null
    latency?: { ratio: number | null, pValue: number } | null
    reasons: string[]
  }>
}

const pct2 = (x: number) => `${(x * 100).toFixed(2)}%`
const pv = (p: number | undefined) => p === undefined ? '-' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4)

/** `dualtrack guard`: one line per rollout, the verdict first, then the numbers behind it */
export function renderGuard (b: GuardBody, only?: string): string {
  const rows = Object.entries(b.rollouts).filter(([name]) => only === undefined || name === only).map(([name, g]) => [
    name,
    g.verdict,
    g.scope ?? '-',
    g.window ? `${g.window.kind} since ${g.window.since.slice(11, 19)}` : '-',
    g.backends ? `${g.backends.new.requests} / ${g.backends.legacy.requests}` : '-',
    g.backends ? `${pct2(g.backends.new.errorRate)} / ${pct2(g.backends.legacy.errorRate)}` : '-',
    g.errorRate ? `${pct2(g.errorRate.delta)} [${pct2(g.errorRate.lower)}, ${pct2(g.errorRate.upper)}] p=${pv(g.errorRate.pValue)}` : '-',
    g.backends ? `${g.backends.new.p99Ms.toFixed(0)} / ${g.backends.legacy.p99Ms.toFixed(0)} ms` : '-',
    g.latency ? `${g.latency.ratio === null ? '-' : g.latency.ratio.toFixed(2) + 'x'} p=${pv(g.latency.pValue)}` : '-',
    g.reasons[0] ?? ''
  ])
  return table(['rollout', 'verdict', 'scope', 'sample', 'requests new/legacy', 'errors new/legacy', 'error delta [bounds] p', 'p99 new/legacy', 'p99 ratio p', 'why'], rows)
}
