// the CLI's admin commands: one HTTP call each to the admin API, a readable table by default,
// the server's JSON with --json, a non-zero exit with the server's message on error
import { parseArgs } from 'node:util'
import { request } from 'undici'

export const ADMIN_COMMANDS = new Set(['status', 'set', 'rollback', 'resume', 'explain', 'audit', 'reload', 'plan'])

interface Call { method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown }

const COMMON = {
  admin: { type: 'string' },
  json: { type: 'boolean' },
  rollout: { type: 'string' },
  region: { type: 'string' },
  reason: { type: 'string' },
  drain: { type: 'boolean' },
  key: { type: 'string' },
  limit: { type: 'string' },
  segment: { type: 'string' },
  // explain: a request as it would arrive (POST), or attribute values by name (GET)
  header: { type: 'string', multiple: true },
  cookie: { type: 'string', multiple: true },
  query: { type: 'string', multiple: true },
  'client-ip': { type: 'string' },
  attr: { type: 'string', multiple: true }
} as const

// NAME=VALUE pairs (the value may hold '='); undefined names the bad one
function pairs (list: readonly string[] | undefined, flag: string): Record<string, string> | string {
  const out: Record<string, string> = {}
  for (const p of list ?? []) {
    const eq = p.indexOf('=')
    if (eq <= 0) return `--${flag} takes NAME=VALUE, got ${p}`
    out[p.slice(0, eq)] = p.slice(eq + 1)
  }
  return out
}

const EXPLAIN_USAGE = 'explain --key K [--region R] [--attr NAME=VALUE]... [--rollout R]\n   or: dualtrack explain [--header NAME=VALUE]... [--cookie NAME=VALUE]... [--query NAME=VALUE]... [--client-ip IP] [--rollout R]'

export async function adminCommand (command: string, args: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args, options: COMMON, allowPositionals: true })
  } catch (err) {
    process.stderr.write(`dualtrack ${command}: ${(err as Error).message}\n`)
    return 2
  }
  const { values: v, positionals } = parsed
  const base = (v.admin ?? process.env.DUALTRACK_ADMIN_URL ?? 'http://127.0.0.1:9090').replace(/\/$/, '')
  let call: Call
  switch (command) {
    case 'status': call = { method: 'GET', path: '/admin/state' }; break
    case 'set': {
      const [rollout, pct] = positionals
      if (rollout === undefined || pct === undefined) return usage('set <rollout> <percent> [--region R | --segment S]')
      const percent = Number(pct)
      if (!Number.isFinite(percent)) return usage(`set: percent must be a number, got ${pct}`)
      if (v.region && v.segment) return usage('set: --region or --segment, not both')
      const body = v.region ? { regions: { [v.region]: percent } } : v.segment ? { segments: { [v.segment]: percent } } : { percent }
      call = { method: 'PUT', path: `/admin/rollouts/${encodeURIComponent(rollout)}`, body }
      break
    }
    case 'rollback':
      if (!v.reason) return usage('rollback --reason "..." [--rollout R] [--drain]')
      call = { method: 'POST', path: '/admin/rollback', body: { reason: v.reason, mode: v.drain ? 'drain' : 'hard', ...(v.rollout ? { rollout: v.rollout } : {}) } }
      break
    case 'resume': call = { method: 'POST', path: '/admin/resume', body: v.rollout ? { rollout: v.rollout } : {} }; break
    case 'explain': {
      const headers = pairs(v.header, 'header')
      const cookies = pairs(v.cookie, 'cookie')
      const query = pairs(v.query, 'query')
      const attrs = pairs(v.attr, 'attr')
      for (const p of [headers, cookies, query, attrs]) if (typeof p === 'string') return usage(`${p}\n       dualtrack ${EXPLAIN_USAGE}`)
      if (v.header || v.cookie || v.query || v['client-ip']) {
        // a whole request: the gateway reads the key, region and attributes from it as it would
        call = { method: 'POST', path: '/admin/explain', body: { ...(v.rollout ? { rollout: v.rollout } : {}), headers, cookies, query, ...(v['client-ip'] ? { clientIp: v['client-ip'] } : {}) } }
        break
      }
      if (!v.key) return usage(EXPLAIN_USAGE)
      const q = new URLSearchParams({ key: v.key, ...(v.region ? { region: v.region } : {}), ...(v.rollout ? { rollout: v.rollout } : {}) })
      for (const [k, x] of Object.entries(attrs as Record<string, string>)) q.append(`attr.${k}`, x)
      call = { method: 'GET', path: `/admin/explain?${q}` }
      break
    }
    case 'audit': call = { method: 'GET', path: `/admin/audit?limit=${Number(v.limit ?? 20)}` }; break
    case 'reload': call = { method: 'POST', path: '/admin/reload', body: {} }; break
    case 'plan': {
      const [rollout, action] = positionals
      if (rollout === undefined) { call = { method: 'GET', path: '/admin/state' }; break }
      if (action !== 'pause' && action !== 'resume') return usage('plan [<rollout> pause|resume]')
      call = { method: 'POST', path: `/admin/rollouts/${encodeURIComponent(rollout)}/plan/${action}`, body: {} }
      break
    }
    default: return usage(command)
  }
  const token = process.env.DUALTRACK_TOKEN
  let status: number
  let body: unknown
  try {
    const res = await request(base + call.path, {
      method: call.method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      headersTimeout: 10_000,
      bodyTimeout: 10_000
    })
    status = res.statusCode
    const text = await res.body.text()
    try { body = JSON.parse(text) } catch { body = text }
  } catch (err) {
    process.stderr.write(`dualtrack ${command}: cannot reach the admin API at ${base}: ${(err as Error).message}\n`)
    return 1
  }
  if (status >= 400) {
    const b = body as { message?: string, error?: string }
    process.stderr.write(`dualtrack ${command}: ${status} ${b?.error ?? ''} ${b?.message ?? JSON.stringify(body)}\n`)
    return 1
  }
  if (v.json) {
    process.stdout.write(JSON.stringify(body, null, 2) + '\n')
    return 0
  }
  process.stdout.write(render(command, body) + '\n')
  return 0
}

function usage (msg: string): number {
  process.stderr.write(`usage: dualtrack ${msg}\n`)
  return 2
}

interface StateView {
  version: number
  rollouts: Record<string, { percent: number, regions: Record<string, number>, segments?: Record<string, number>, rollback: { mode: string, reason: string, by: string, propagated: boolean } | null, updatedBy: string, updatedAt: string, source: string, plan?: { step: number, steps: number[], paused: boolean, state: string } | null }>
}

export function render (command: string, body: unknown): string {
  if (command === 'explain') {
    const b = body as { rollout: string, backend: string, reason: string, bucket: number, segment?: string, key?: string | null, attributes?: Record<string, string | null>, segments?: { segment: string, matched: boolean, failed?: { attribute: string, op: string, inverted: boolean, value: string | null, why: string } }[] }
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
  if (command === 'audit') {
    const rows = (body as { entries: { at: string, actor: string, source: string, action: string, rollout: string | null, before: unknown, after: unknown, reason: string | null }[] }).entries
    return table(['at', 'actor', 'source', 'action', 'rollout', 'before -> after', 'reason'],
      rows.map((e) => [e.at, e.actor, e.source, e.action, e.rollout ?? '*', `${JSON.stringify(e.before)} -> ${JSON.stringify(e.after)}`, e.reason ?? '']))
  }
  if (command === 'reload') return 'config reloaded'
  const s = body as StateView
  // a segments column only where some rollout has percent segments
  const withSegments = Object.values(s.rollouts).some((r) => r.segments !== undefined)
  const rows = Object.entries(s.rollouts).map(([name, r]) => [
    name,
    `${r.percent}%`,
    Object.entries(r.regions).map(([k, p]) => `${k}=${p}%`).join(' ') || '-',
    ...(withSegments ? [Object.entries(r.segments ?? {}).map(([k, p]) => `${k}=${p}%`).join(' ') || '-'] : []),
    r.rollback ? `${r.rollback.mode} by ${r.rollback.by}${r.rollback.propagated ? '' : ' (not yet propagated)'}: ${r.rollback.reason}` : '-',
    r.plan ? `${r.plan.state}${r.plan.paused ? ' (paused)' : ''} ${r.plan.steps.join('>')}` : '-',
    `${r.updatedBy} via ${r.source} at ${r.updatedAt}`
  ])
  return `state version ${s.version}\n` + table(['rollout', 'percent', 'regions', ...(withSegments ? ['segments'] : []), 'rollback', 'plan', 'last change'], rows)
}

function table (head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i] as number)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
