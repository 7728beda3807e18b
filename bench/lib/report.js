// machine description, medians, ratios, the printed table and the results file
import { cpus, totalmem, release, loadavg, availableParallelism, platform, arch } from 'node:os'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile, rename } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { ROOT_DIR, benchEnv } from './settings.js'

function version (cmd, args, pattern) {
  if (!cmd) return null
  // nginx -v answers on stderr, wrk -v exits 1: read both streams whatever the exit code
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5_000 })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`
  return (pattern.exec(out) ?? [out.trim().split('\n')[0] || null])[0]
}

function pkgVersion (name) {
  try {
    return JSON.parse(readFileSync(join(ROOT_DIR, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return null
  }
}

function git (args) {
  try {
    return execFileSync('git', ['-C', ROOT_DIR, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

export function machine (tools) {
  const c = cpus()
  return {
    cpuModel: c[0]?.model ?? 'unknown',
    cores: c.length,
    availableParallelism: availableParallelism(),
    memoryMB: Math.round(totalmem() / 1024 / 1024),
    platform: `${platform()} ${arch()} ${release()}`,
    node: process.version,
    loadavgAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    tools: {
      wrk: version(tools.wrk, ['-v'], /wrk \S+/),
      nginx: version(tools.nginx, ['-v'], /nginx\/\S+/),
      redis: version(tools.redis, ['--version'], /v=\S+/),
      taskset: tools.taskset ? 'yes' : 'missing (runs unpinned)'
    },
    packages: Object.fromEntries(['fastify', '@fastify/http-proxy', '@fastify/reply-from', 'undici', 'murmurhash3js-revisited', 'prom-client', 'mitata'].map((n) => [n, pkgVersion(n)])),
    git: { commit: git(['rev-parse', 'HEAD']), dirty: (git(['status', '--porcelain']) ?? '').length > 0 }
  }
}

/** the command as a person would type it again */
export function commandLine (argv = process.argv) {
  const env = benchEnv()
  const prefix = Object.entries(env).map(([k, v]) => `${k}=${/^[\w.,:/-]*$/.test(v) ? v : JSON.stringify(v)}`).join(' ')
  const cmd = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : ['node', ...argv.slice(1).map((a) => relative(ROOT_DIR, a) || a)].join(' ')
  return { command: prefix ? `${prefix} ${cmd}` : cmd, argv, env }
}

export function median (xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = v.length >> 1
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

const FIELDS = ['rps', 'p50', 'p99', 'cpuUsPerReq', 'rssPeakMB', 'newShare', 'originPerReq', 'errors', 'requests', 'otherCpuPct', 'stealPct']

export function medians (rounds) {
  const out = {}
  for (const f of FIELDS) out[f] = median(rounds.map((r) => r[f]))
  return out
}

function ratio (a, b) {
  return typeof a === 'number' && typeof b === 'number' && b > 0 ? Math.round((a / b) * 100) / 100 : null
}

/** ratios of each candidate's medians to the two reference baselines, within one scenario */
export function addRatios (byCandidate) {
  const fhp = byCandidate['fastify-http-proxy']?.median
  const ngx = byCandidate['nginx-split']?.median
  for (const c of Object.values(byCandidate)) {
    const m = c.median
    c.ratio = {
      toFastifyHttpProxy: fhp ? { rps: ratio(m.rps, fhp.rps), cpuUsPerReq: ratio(m.cpuUsPerReq, fhp.cpuUsPerReq), p99: ratio(m.p99, fhp.p99) } : null,
      toNginxSplit: ngx ? { rps: ratio(m.rps, ngx.rps), cpuUsPerReq: ratio(m.cpuUsPerReq, ngx.cpuUsPerReq), p99: ratio(m.p99, ngx.p99) } : null
    }
  }
}

function fmt (v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-'
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function table (results, order) {
  const head = ['scenario', 'candidate', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'RSS MB', 'new %', 'origin/req', 'errors', 'other %', 'req/s ÷fhp', 'CPU ÷fhp', 'req/s ÷nginx', 'CPU ÷nginx']
  const rows = []
  for (const [scenario, byCandidate] of Object.entries(results)) {
    for (const name of order) {
      const c = byCandidate[name]
      if (!c) continue
      const m = c.median
      const r = c.ratio ?? {}
      rows.push([
        scenario, name + (c.rounds.length < c.expectedRounds ? ` (${c.rounds.length}/${c.expectedRounds})` : ''),
        fmt(m.rps), fmt(m.p50, 2), fmt(m.p99, 2), fmt(m.cpuUsPerReq, 1), fmt(m.rssPeakMB, 0),
        m.newShare === null ? '-' : fmt(m.newShare * 100, 0), fmt(m.originPerReq, 2), fmt(m.errors), fmt(m.otherCpuPct, 0),
        fmt(r.toFastifyHttpProxy?.rps, 2), fmt(r.toFastifyHttpProxy?.cpuUsPerReq, 2),
        fmt(r.toNginxSplit?.rps, 2), fmt(r.toNginxSplit?.cpuUsPerReq, 2)
      ])
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells) => '| ' + cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |'
  return [line(head), '|' + widths.map((w, i) => (i < 2 ? ':' : '-') + '-'.repeat(w) + (i < 2 ? '-' : ':')).join('|') + '|', ...rows.map(line)].join('\n')
}

/** bench/results/<YYYY-MM-DD><suffix>.json; an existing file of the day is kept (-2, -3, ...) */
export async function writeResults (dir, suffix, data) {
  await mkdir(dir, { recursive: true })
  const day = new Date().toISOString().slice(0, 10)
  let file = join(dir, `${day}${suffix}.json`)
  for (let n = 2; existsSync(file); n++) file = join(dir, `${day}${suffix}-${n}.json`)
  // written whole, then renamed: a crash never leaves half a results file
  await writeFile(`${file}.tmp`, JSON.stringify(data, null, 2) + '\n')
  await rename(`${file}.tmp`, file)
  return file
}
