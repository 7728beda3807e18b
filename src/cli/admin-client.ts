// the CLI's admin commands: one HTTP call each to the admin API, a readable table by default,
// the server's JSON with --json, a non-zero exit with the server's message on error
import { parseArgs } from 'node:util'
import { request } from 'undici'

export const ADMIN_COMMANDS = new Set(['status', 'set', 'rollback', 'resume', 'explain', 'audit', 'reload', 'plan', 'owners'])

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
  backend: { type: 'string' }
} as const

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
      if (rollout === undefined || pct === undefined) return usage('set <rollout> <percent> [--region R]')
      const percent = Number(pct)
      if (!Number.isFinite(percent)) return usage(`set: percent must be a number, got ${pct}`)
      call = { method: 'PUT', path: `/admin/rollouts/${encodeURIComponent(rollout)}`, body: v.region ? { regions: { [v.region]: percent } } : { percent } }
      break
    }
    case 'rollback':
      if (!v.reason) return usage('rollback --reason "..." [--rollout R] [--drain]')
      call = { method: 'POST', path: '/admin/rollback', body: { reason: v.reason, mode: v.drain ? 'drain' : 'hard', ...(v.rollout ? { rollout: v.rollout } : {}) } }
      break
    case 'resume': call = { method: 'POST', path: '/admin/resume', body: v.rollout ? { rollout: v.rollout } : {} }; break
    case 'explain': {
      if (!v.key) return usage('explain --key K [--region R] [--rollout R]')
      const q = new URLSearchParams({ key: v.key, ...(v.region ? { region: v.region } : {}), ...(v.rollout ? { rollout: v.rollout } : {}) })
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
    case 'owners': {
      const [verb, id] = positionals
      if (verb === 'export') {
        if (v.backend !== undefined && v.backend !== 'legacy' && v.backend !== 'new') return usage('owners export --backend legacy|new [--rollout R]')
        const q = new URLSearchParams({ ...(v.backend ? { backend: v.backend } : {}), ...(v.rollout ? { rollout: v.rollout } : {}) })
        return exportOwners(base, `/admin/affinity${q.size > 0 ? `?${q}` : ''}`)
      }
      if (verb !== 'get' || id === undefined) return usage('owners get <orderId> [--rollout R] | owners export --backend legacy|new [--rollout R]')
      call = { method: 'GET', path: `/admin/affinity/${encodeURIComponent(id)}${v.rollout ? `?rollout=${encodeURIComponent(v.rollout)}` : ''}` }
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

// NDJSON straight through to stdout as it arrives: a million owners never sit in memory, and the
// pipe's backpressure slows the read. A transfer cut short (the store failed midway) exits 1
async function exportOwners (base: string, path: string): Promise<number> {
  const token = process.env.DUALTRACK_TOKEN
  try {
    const res = await request(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {}, headersTimeout: 30_000, bodyTimeout: 60_000 })
    if (res.statusCode >= 400) {
      const text = await res.body.text()
      let b: { error?: string, message?: string } = {}
      try { b = JSON.parse(text) as typeof b } catch { b = { message: text } }
      process.stderr.write(`dualtrack owners: ${res.statusCode} ${b.error ?? ''} ${b.message ?? ''}\n`)
      return 1
    }
    let lines = 0
    for await (const chunk of res.body) {
      const buf = chunk as Buffer
      for (const byte of buf) if (byte === 10) lines++
      if (!process.stdout.write(buf)) await new Promise((resolve) => process.stdout.once('drain', resolve))
    }
    process.stderr.write(`dualtrack owners: ${lines} owners exported\n`)
    return 0
  } catch (err) {
    process.stderr.write(`dualtrack owners: export failed: ${(err as Error).message}\n`)
    return 1
  }
}

function usage (msg: string): number {
  process.stderr.write(`usage: dualtrack ${msg}\n`)
  return 2
}

interface StateView {
  version: number
  rollouts: Record<string, { percent: number, regions: Record<string, number>, rollback: { mode: string, reason: string, by: string, propagated: boolean } | null, updatedBy: string, updatedAt: string, source: string, plan?: { step: number, steps: number[], paused: boolean, state: string } | null }>
}

export function render (command: string, body: unknown): string {
  if (command === 'explain') {
    const b = body as { rollout: string, backend: string, reason: string, bucket: number }
    return `rollout ${b.rollout}: ${b.backend} (reason ${b.reason}, bucket ${b.bucket})`
  }
  if (command === 'audit') {
    const rows = (body as { entries: { at: string, actor: string, source: string, action: string, rollout: string | null, before: unknown, after: unknown, reason: string | null }[] }).entries
    return table(['at', 'actor', 'source', 'action', 'rollout', 'before -> after', 'reason'],
      rows.map((e) => [e.at, e.actor, e.source, e.action, e.rollout ?? '*', `${JSON.stringify(e.before)} -> ${JSON.stringify(e.after)}`, e.reason ?? '']))
  }
  if (command === 'reload') return 'config reloaded'
  if (command === 'owners') {
    const o = body as { orderId: string, owner: string, learnedAt: string | null }
    return `order ${o.orderId}: ${o.owner} (learned ${o.learnedAt ?? 'before the ledger'})`
  }
  const s = body as StateView
  const rows = Object.entries(s.rollouts).map(([name, r]) => [
    name,
    `${r.percent}%`,
    Object.entries(r.regions).map(([k, p]) => `${k}=${p}%`).join(' ') || '-',
    r.rollback ? `${r.rollback.mode} by ${r.rollback.by}${r.rollback.propagated ? '' : ' (not yet propagated)'}: ${r.rollback.reason}` : '-',
    r.plan ? `${r.plan.state}${r.plan.paused ? ' (paused)' : ''} ${r.plan.steps.join('>')}` : '-',
    `${r.updatedBy} via ${r.source} at ${r.updatedAt}`
  ])
  return `state version ${s.version}\n` + table(['rollout', 'percent', 'regions', 'rollback', 'plan', 'last change'], rows)
}

function table (head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i] as number)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
