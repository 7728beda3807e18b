// soak: one candidate (dualtrack by default) alone under load for BENCH_SOAK seconds, its RSS read
// every BENCH_SOAK_INTERVAL seconds; RSS at the end of the warm-up is compared with RSS at the end.
// targets: growth after warm-up <= 5%, peak <= 150 MB.
import { join, relative } from 'node:path'
import { execFileSync } from 'node:child_process'
import { BENCH_DIR, ROOT_DIR } from './lib/settings.js'
import { startProcess, firstJsonLine, which, treeOf, rssKb, cpuMicros } from './lib/proc.js'
import { runWrk } from './lib/wrk.js'
import { machine, commandLine, writeResults } from './lib/report.js'
import { SCENARIOS } from './scenarios/index.js'
import { CANDIDATES } from './candidates/index.js'

export const SOAK_MAX_GROWTH = 0.05
export const SOAK_MAX_RSS_MB = 150

export async function runSoak (settings) {
  const log = (msg) => console.error(`[soak] ${msg}`)
  const cand = CANDIDATES.find((c) => c.name === settings.soakCandidate)
  const scenario = SCENARIOS.find((s) => s.name === settings.soakScenario)
  if (!cand) throw new Error(`unknown BENCH_SOAK_CANDIDATE ${settings.soakCandidate}`)
  if (!scenario) throw new Error(`unknown BENCH_SOAK_SCENARIO ${settings.soakScenario}`)
  const tools = { wrk: which('wrk'), nginx: which('nginx'), redis: which('redis-server'), taskset: which('taskset') }
  if (!tools.wrk) {
    try { execFileSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'ignore', timeout: 180_000 }) } catch { /* reported below */ }
    tools.wrk = which('wrk')
    if (!tools.wrk) throw new Error('wrk is not installed and could not be installed')
  }
  if (settings.soakWarmup >= settings.soak) throw new Error(`BENCH_SOAK (${settings.soak}s) must be longer than BENCH_SOAK_WARMUP (${settings.soakWarmup}s)`)

  const originProc = startProcess({ name: 'origin', cmd: process.execPath, args: [join(BENCH_DIR, 'origin.js')], cpu: settings.loadCpu, cwd: ROOT_DIR, stdout: 'pipe' })
  const ports = await firstJsonLine(originProc, 10_000)
  const ctx = { settings, tools, origin: { legacy: ports.legacy, new: ports.new } }
  const report = {
    kind: 'soak',
    startedAt: new Date().toISOString(),
    ...commandLine(),
    machine: machine(tools),
    candidate: cand.name,
    scenario: scenario.name,
    seconds: settings.soak,
    warmupSeconds: settings.soakWarmup,
    intervalSeconds: settings.soakInterval,
    targets: { maxGrowthAfterWarmup: SOAK_MAX_GROWTH, maxRssMB: SOAK_MAX_RSS_MB },
    samples: []
  }
  let inst
  try {
    inst = await cand.start(ctx)
  } catch (err) {
    await originProc.stop()
    report.failure = { phase: 'start', error: err.message, stderr: err.stderr?.trim().slice(-4_000), stdout: err.stdout?.trim().slice(-4_000) }
    const file = await writeResults(settings.resultsDir, '-soak', report)
    console.log(`soak: ${cand.name} failed to start: ${err.message}\n${(err.stderr ?? '').trim().split('\n').slice(-12).join('\n')}\nresults: ${relative(process.cwd(), file)}`)
    process.exitCode = 1
    return
  }
  try {
    if (!inst.pid) throw new Error(`${cand.name} has no process to watch`)
    const pids = treeOf(inst.pid)
    const t0 = Date.now()
    const cpu0 = cpuMicros(pids)
    log(`${cand.name} (pid ${inst.pid}) under ${scenario.name} load for ${settings.soak}s, RSS every ${settings.soakInterval}s`)
    const sample = () => {
      const s = { t: Math.round((Date.now() - t0) / 100) / 10, rssMB: Math.round(rssKb(pids) / 102.4) / 10 }
      report.samples.push(s)
      return s
    }
    sample()
    const timer = setInterval(() => {
      const s = sample()
      if (Math.round(s.t) % 30 < settings.soakInterval) log(`t=${s.t}s rss ${s.rssMB} MB`)
    }, settings.soakInterval * 1000)
    let w
    try {
      w = await runWrk({
        wrk: tools.wrk,
        url: inst.url + scenario.path,
        script: join(BENCH_DIR, 'wrk', scenario.script),
        seconds: settings.soak,
        connections: settings.connections,
        threads: settings.threads,
        timeout: settings.wrkTimeout,
        cpu: settings.loadCpu,
        affinityIds: settings.affinityIds
      })
    } finally {
      clearInterval(timer)
    }
    sample()
    const after = report.samples.find((s) => s.t >= settings.soakWarmup) ?? report.samples[0]
    const end = report.samples[report.samples.length - 1]
    const peak = Math.max(...report.samples.map((s) => s.rssMB))
    const growth = (end.rssMB - after.rssMB) / after.rssMB
    report.load = { requests: w.requests, rps: w.rps, p50: w.p50, p99: w.p99, errors: w.errors, cpuUsPerReq: w.requests ? (cpuMicros(pids) - cpu0) / w.requests : null, wrk: w.command }
    report.summary = {
      warmupRssMB: after.rssMB,
      warmupSampleAt: after.t,
      endRssMB: end.rssMB,
      peakRssMB: peak,
      growthPct: Math.round(growth * 1000) / 10,
      pass: growth <= SOAK_MAX_GROWTH && peak <= SOAK_MAX_RSS_MB
    }
    if (inst.proc && !inst.proc.running) report.summary.pass = false
  } finally {
    await inst.stop()
    await originProc.stop()
  }
  report.finishedAt = new Date().toISOString()
  const file = await writeResults(settings.resultsDir, '-soak', report)
  const s = report.summary
  console.log(`\nsoak ${cand.name}, ${scenario.name}, ${settings.soak}s: ${Math.round(report.load.rps)} req/s, p99 ${report.load.p99} ms, cpu ${report.load.cpuUsPerReq?.toFixed(1)} µs/req`)
  console.log(`RSS after warm-up (t=${s.warmupSampleAt}s): ${s.warmupRssMB} MB; at the end: ${s.endRssMB} MB; growth ${s.growthPct}% (target <= ${SOAK_MAX_GROWTH * 100}%); peak ${s.peakRssMB} MB (target <= ${SOAK_MAX_RSS_MB} MB): ${s.pass ? 'PASS' : 'FAIL'}`)
  console.log(`results: ${relative(process.cwd(), file)}`)
  if (!s.pass) process.exitCode = 1
}
