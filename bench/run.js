// npm run bench: every candidate under the same wrk load, interleaved over rounds, medians.
//   BENCH_CANDIDATES=direct,fastify-http-proxy BENCH_SCENARIOS=get-1k npm run bench
//   BENCH_SOAK=300 npm run bench          # dualtrack alone for 300 s, RSS every 5 s
// see bench/README.md for every setting
import { execFileSync } from 'node:child_process'
import { join, relative } from 'node:path'
import { loadavg } from 'node:os'
import { readSettings, BENCH_DIR, ROOT_DIR } from './lib/settings.js'
import { startProcess, firstJsonLine, which, killAll, treeOf, cpuMicros, rssSampler, httpGet, hasTaskset, systemCpuMicros, ownPids } from './lib/proc.js'
import { runWrk } from './lib/wrk.js'
import { machine, commandLine, median, medians, addRatios, table, writeResults } from './lib/report.js'
import { SCENARIOS } from './scenarios/index.js'
import { CANDIDATES } from './candidates/index.js'
import { runSoak } from './soak.js'

process.once('exit', () => killAll('SIGKILL'))
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping everything the bench started`)
    killAll('SIGTERM')
    setTimeout(() => process.exit(130), 500)
  })
}

const log = (msg) => console.error(`[bench] ${msg}`)

/** find wrk, nginx, redis-server; if wrk or nginx is missing, try apt-get once */
function findTools (needNginx) {
  const find = () => ({ wrk: which('wrk'), nginx: which('nginx'), redis: which('redis-server'), taskset: which('taskset') })
  let tools = find()
  const install = { attempted: false }
  if (!tools.wrk || (needNginx && !tools.nginx)) {
    install.attempted = true
    install.command = 'apt-get install -y wrk nginx-light'
    log(`wrk or nginx missing: trying ${install.command} (once)`)
    try {
      execFileSync('apt-get', ['install', '-y', 'wrk', 'nginx-light'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
      install.ok = true
    } catch (err) {
      install.ok = false
      install.error = `${err.message}\n${String(err.stderr ?? '').slice(-1_000)}`.trim()
    }
    tools = find()
  }
  return { tools, install }
}

function select (all, wanted, what) {
  if (!wanted) return all
  const unknown = wanted.filter((n) => !all.some((x) => x.name === n))
  if (unknown.length) throw new Error(`unknown ${what}: ${unknown.join(', ')} (known: ${all.map((x) => x.name).join(', ')})`)
  return all.filter((x) => wanted.includes(x.name))
}

async function startOrigin (settings) {
  const proc = startProcess({ name: 'origin', cmd: process.execPath, args: [join(BENCH_DIR, 'origin.js')], cpu: settings.loadCpu, cwd: ROOT_DIR, env: { ...process.env, NODE_ENV: 'production' }, stdout: 'pipe' })
  const ports = await firstJsonLine(proc, 10_000)
  return { proc, legacy: ports.legacy, new: ports.new }
}

async function originStats (origin) {
  const r = await httpGet(origin.legacy, '/__bench/stats')
  const s = JSON.parse(r.body)
  return { legacy: s.legacy.GET + s.legacy.other, new: s.new.GET + s.new.other }
}

/** warm up (not measured), then one measured wrk run with cpu, rss and origin counts around it */
async function measure (inst, scenario, ctx) {
  const { settings, tools } = ctx
  const url = inst.url + scenario.path
  const script = join(BENCH_DIR, 'wrk', scenario.script)
  const wrkOpts = { wrk: tools.wrk, url, script, connections: settings.connections, threads: settings.threads, timeout: settings.wrkTimeout, cpu: settings.loadCpu, affinityIds: settings.affinityIds }
  if (settings.warmup > 0) await runWrk({ ...wrkOpts, seconds: settings.warmup })
  // the whole process tree: nginx's work happens in its worker, not its master
  const pids = inst.pid ? treeOf(inst.pid) : []
  const before = await originStats(ctx.origin)
  // what the candidate counts itself (redis commands, affinity lookups), around the measured run
  const counters0 = inst.counters ? await inst.counters() : null
  // the machine is shared: cpu used by anything the bench did not start, during the measured run
  const own = ownPids()
  const own0 = cpuMicros(own)
  const sys0 = systemCpuMicros()
  const t0 = process.hrtime.bigint()
  const cpu0 = pids.length ? cpuMicros(pids) : null
  const rss = pids.length ? rssSampler(pids, settings.rssSampleMs) : null
  const w = await runWrk({ ...wrkOpts, seconds: settings.duration })
  const cpu1 = pids.length ? cpuMicros(pids) : null
  const sys1 = systemCpuMicros()
  const own1 = cpuMicros(own)
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000
  const otherUs = sys0 && sys1 ? Math.max(0, (sys1.busy - sys0.busy) - (own1 - own0) - w.cpuMicros) : null
  const peakKb = rss ? rss.stop() : null
  const after = await originStats(ctx.origin)
  const counters1 = inst.counters ? await inst.counters() : null
  const legacy = after.legacy - before.legacy
  const next = after.new - before.new
  const errors = w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout + w.errors.non2xx3xx
  const round = (v, digits) => (v === null ? null : Number(v.toFixed(digits)))
  return {
    rps: w.rps,
    p50: w.p50,
    p99: w.p99,
    cpuUsPerReq: round(cpu0 !== null && w.requests > 0 ? (cpu1 - cpu0) / w.requests : null, 1),
    rssPeakMB: round(peakKb !== null ? peakKb / 1024 : null, 1),
    newShare: round(legacy + next > 0 ? next / (legacy + next) : null, 3),
    // % of one core used by processes the bench did not start, and stolen by the hypervisor
    otherCpuPct: round(otherUs !== null ? otherUs / wallUs * 100 : null, 1),
    stealPct: round(sys0 && sys1 ? (sys1.steal - sys0.steal) / wallUs * 100 : null, 1),
    originPerReq: round(w.requests > 0 ? (legacy + next) / w.requests : null, 3),
    errors,
    requests: w.requests,
    seconds: w.seconds,
    latencyAvg: w.latencyAvg,
    latencyMax: w.latencyMax,
    errorDetail: w.errors,
    origin: { legacy, new: next },
    counters: counters0 && counters1 ? counterDeltas(counters0, counters1, w.requests) : undefined,
    wrk: w.command
  }
}

/** per measured run: how much each counter moved, and per client request */
function counterDeltas (a, b, requests) {
  if (a.error || b.error) return { error: a.error ?? b.error }
  const out = {}
  for (const [group, values] of Object.entries(b)) {
    out[group] = {}
    for (const [k, v] of Object.entries(values)) {
      if (typeof v !== 'number') continue
      // a counter that first shows up after the run started (a command redis had not seen) was 0
      const d = v - (typeof a[group]?.[k] === 'number' ? a[group][k] : 0)
      out[group][k] = { delta: d, perRequest: requests > 0 ? Math.round((d / requests) * 1000) / 1000 : null }
    }
  }
  return out
}

/** median over rounds of each counter's delta and per-request figure */
function medianCounters (rounds) {
  const with_ = rounds.map((r) => r.counters).filter((c) => c && !c.error)
  if (with_.length === 0) return null
  const out = {}
  for (const c of with_) {
    for (const [group, values] of Object.entries(c)) {
      out[group] ??= {}
      for (const k of Object.keys(values)) out[group][k] ??= null
    }
  }
  for (const [group, keys] of Object.entries(out)) {
    for (const k of Object.keys(keys)) {
      keys[k] = {
        delta: median(with_.map((c) => c[group]?.[k]?.delta ?? 0)),
        perRequest: median(with_.map((c) => c[group]?.[k]?.perRequest ?? 0))
      }
    }
  }
  return out
}

async function main () {
  const settings = readSettings()
  if (settings.soak > 0) return runSoak(settings)
  const scenarios = select(SCENARIOS, settings.scenarios, 'scenario')
  const wanted = select(CANDIDATES, settings.candidates, 'candidate')
  const { tools, install } = findTools(wanted.some((c) => c.requires.includes('nginx')))
  if (!tools.wrk) {
    console.error('wrk is not installed and could not be installed: no load generator, nothing was measured')
    if (install.attempted) console.error(install.error ?? '')
    process.exitCode = 2
    return
  }
  const skipped = []
  const candidates = wanted.filter((c) => {
    const missing = c.requires.filter((r) => !tools[r])
    if (missing.length === 0) return true
    const why = missing.map((m) => `${m === 'redis' ? 'redis-server' : m} not found${install.attempted && m === 'nginx' ? ` (apt-get install failed: ${install.error?.split('\n')[0]})` : ''}`).join('; ')
    skipped.push({ candidate: c.name, reason: why })
    return false
  })
  if (!hasTaskset()) log('taskset not found: processes run unpinned (figures are noisier)')

  const run = {
    startedAt: new Date().toISOString(),
    ...commandLine(),
    machine: machine(tools),
    settings: { ...settings, resultsDir: relative(ROOT_DIR, settings.resultsDir) || settings.resultsDir, scenarios: scenarios.map((s) => s.name), candidates: candidates.map((c) => c.name) },
    method: `proxy pinned to cpu ${settings.proxyCpu}; origin, wrk and redis on cpu ${settings.loadCpu}; ` +
      `wrk -t${settings.threads} -c${settings.connections}, ${settings.warmup}s warm-up (not measured) then ${settings.duration}s measured, ` +
      `${settings.rounds} interleaved rounds (candidate order rotates each round), medians per figure`,
    install,
    skipped,
    failures: [],
    results: {}
  }
  for (const s of skipped) log(`skipped ${s.candidate}: ${s.reason}`)

  const origin = await startOrigin(settings)
  const ctx = { settings, tools, origin }
  log(`origin legacy :${origin.legacy} new :${origin.new} (cpu ${settings.loadCpu}); ${candidates.length} candidates × ${scenarios.length} scenarios × ${settings.rounds} rounds`)
  for (const s of scenarios) {
    run.results[s.name] = {}
    for (const c of candidates) run.results[s.name][c.name] = { expectedRounds: settings.rounds, rounds: [], median: null }
  }
  const broken = new Set()
  try {
    for (let round = 0; round < settings.rounds; round++) {
      // rotate the order each round so that no candidate always runs first (or right after nginx)
      const order = candidates.map((_, i) => candidates[(i + round) % candidates.length])
      for (const cand of order) {
        if (broken.has(cand.name)) continue
        let inst
        try {
          log(`round ${round + 1}/${settings.rounds}: starting ${cand.name}`)
          inst = await cand.start(ctx)
        } catch (err) {
          // a candidate that cannot start is reported with its stderr and left out of later rounds
          broken.add(cand.name)
          run.failures.push({ candidate: cand.name, round: round + 1, phase: 'start', error: err.message, stderr: err.stderr?.trim().slice(-4_000), stdout: err.stdout?.trim().slice(-4_000) })
          log(`${cand.name} failed to start: ${err.message}`)
          continue
        }
        try {
          for (const s of scenarios) {
            try {
              const r = await measure(inst, s, ctx)
              r.round = round + 1
              r.command = inst.command
              if (inst.probe) r.probe = inst.probe
              if (inst.snapshot) r.gateway = await inst.snapshot()
              if (inst.proc && !inst.proc.running) throw new Error(`${cand.name} exited during the run`)
              if (r.requests === 0) throw new Error('wrk completed no request')
              run.results[s.name][cand.name].rounds.push(r)
              log(`  ${s.name.padEnd(10)} ${cand.name.padEnd(20)} ${Math.round(r.rps)} req/s, p99 ${r.p99?.toFixed(2)} ms, cpu ${r.cpuUsPerReq?.toFixed(1) ?? '-'} µs/req, other cpu ${r.otherCpuPct ?? '-'}%, new ${r.newShare === null ? '-' : Math.round(r.newShare * 100)}%, origin/req ${r.originPerReq?.toFixed(2) ?? '-'}${r.counters?.redis ? `, redis cmds/req ${r.counters.redis.total_commands_processed?.perRequest} (GET ${r.counters.redis.get?.perRequest ?? 0}, MGET ${r.counters.redis.mget?.perRequest ?? 0}, keys read ${Math.round(((r.counters.redis.keyspace_hits?.perRequest ?? 0) + (r.counters.redis.keyspace_misses?.perRequest ?? 0)) * 1000) / 1000}, SET ${r.counters.redis.set?.perRequest ?? 0})` : ''}${r.errors ? `, ${r.errors} errors` : ''}`)
            } catch (err) {
              run.failures.push({ candidate: cand.name, scenario: s.name, round: round + 1, phase: 'measure', error: err.message, stderr: inst.proc?.stderr?.trim().slice(-4_000) })
              log(`  ${s.name} ${cand.name} failed: ${err.message}`)
              if (inst.proc && !inst.proc.running) { broken.add(cand.name); break }
            }
          }
        } finally {
          await inst.stop()
        }
      }
    }
  } finally {
    await origin.proc.stop()
  }

  run.warnings = []
  const noMetrics = new Set()
  for (const [scenario, byCandidate] of Object.entries(run.results)) {
    for (const [name, c] of Object.entries(byCandidate)) {
      if (c.rounds.length === 0) { delete byCandidate[name]; continue }
      c.median = medians(c.rounds)
      const counters = medianCounters(c.rounds)
      if (counters) c.median.counters = counters
      // a redis mode whose redis served nothing during the measured runs did not use redis
      if (candidates.find((x) => x.name === name)?.requires.includes('redis') && counters?.redis && !(counters.redis.total_commands_processed?.delta > 0)) {
        run.warnings.push(`${name} (${scenario}): its redis-server processed no command during the measured runs`)
      }
      // a mirror or shadow that sends no copies measures nothing: say so next to its figures
      const cand = candidates.find((x) => x.name === name)
      if (cand.copies?.(SCENARIOS.find((s) => s.name === scenario)) && c.median.originPerReq !== null && c.median.originPerReq < 1.5) {
        run.warnings.push(`${name} (${scenario}): expected a copy of every request at the origin, saw ${c.median.originPerReq.toFixed(2)} origin requests per client request`)
      }
      const gw = c.rounds.find((r) => r.gateway?.error)?.gateway
      if (gw && !noMetrics.has(name)) {
        noMetrics.add(name)
        run.warnings.push(`${name}: the gateway's own metrics could not be read (${gw.error}); decisions by reason and shadow results are not in the results file`)
      }
      const noisy = c.rounds.filter((r) => r.otherCpuPct > 15)
      if (noisy.length) run.warnings.push(`${name} (${scenario}): ${noisy.length} of ${c.rounds.length} rounds measured while other processes used more than 15% of a core (${noisy.map((r) => `round ${r.round}: ${r.otherCpuPct}%`).join(', ')})`)
      if (c.median.errors > 0) run.warnings.push(`${name} (${scenario}): ${c.median.errors} errors (median): connect/read/write/timeout or non-2xx answers`)
    }
    addRatios(byCandidate)
  }
  run.finishedAt = new Date().toISOString()
  run.machine.loadavgAtEnd = loadavg().map((v) => Math.round(v * 100) / 100)
  const file = await writeResults(settings.resultsDir, '', run)

  const order = CANDIDATES.map((c) => c.name)
  console.log(`\n${run.machine.cpuModel}, ${run.machine.cores} cores, ${run.machine.memoryMB} MB, node ${run.machine.node}; ${run.method}\n`)
  console.log(table(run.results, order))
  console.log('\nCPU µs/req is the steadiest figure on a shared machine; compare within one run. ÷fhp and ÷nginx are ratios to fastify-http-proxy and nginx-split in this run.')
  for (const w of run.warnings) console.log(`warning: ${w}`)
  for (const s of skipped) console.log(`skipped: ${s.candidate}: ${s.reason}`)
  for (const f of run.failures) {
    console.log(`failed: ${f.candidate}${f.scenario ? ` (${f.scenario}, round ${f.round})` : ''}: ${f.error}`)
    for (const [label, text] of [['stderr', f.stderr], ['stdout (log)', f.stdout]]) {
      if (text) console.log(`  ${label}:\n` + text.split('\n').slice(-12).map((l) => `    ${l.slice(0, 300)}`).join('\n'))
    }
  }
  console.log(`\nresults: ${relative(process.cwd(), file)}`)
  if (run.failures.length) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
