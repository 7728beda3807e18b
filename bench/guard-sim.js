// the guard's statistics on synthetic streams, with no sockets: the built judge and samples
// (dist/guard) run one tick a second over 10-minute holds of a plan step, as the guardian runs them.
//   npm run build && node bench/guard-sim.js
// it reports (1) the false-breach rate of A/A holds (new identical to legacy) and (2) the requests
// on new, and the seconds, the guard needs to catch a regression present from the step's start,
// at the traffic of the first three plan steps (5, 10, 25% of GUARD_SIM_RPS). Settings:
//   GUARD_SIM_RPS=100      the rollout's requests per second over the whole fleet
//   GUARD_SIM_HOLDS=1000   A/A holds per row
//   GUARD_SIM_RUNS=200     runs per detection cell
//   GUARD_SIM_SEED=1       the generator's seed (the same seed gives the same table)
//   GUARD_SIM_THREADS=N    worker threads (default: the cores)
//   GUARD_SIM_OUT=path     also write the table there (markdown)
import { writeFileSync } from 'node:fs'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { importDist } from './micro/dist.js'

const { simulateHold, seeded } = await importDist('guard/index.js', ['simulateHold', 'seeded'])

const RPS = Number(process.env.GUARD_SIM_RPS ?? 100)
const HOLDS = Number(process.env.GUARD_SIM_HOLDS ?? 1000)
const RUNS = Number(process.env.GUARD_SIM_RUNS ?? 200)
const SEED = Number(process.env.GUARD_SIM_SEED ?? 1)
const THREADS = Number(process.env.GUARD_SIM_THREADS ?? Math.max(1, availableParallelism()))
const HOLD_MS = 600_000
const STEPS = [5, 10, 25]

// the contract's defaults (DESIGN.md §9), and a strict guard that treats any regression as one:
// with maxErrorRateDelta 0 an A/A stream sits exactly on the null, the worst case for false breaches
const DEFAULT_GUARD = { windowMs: 60_000, minRequests: 200, maxErrorRateDelta: 0.01, maxP99Ratio: 1.5, confidence: 0.99, scope: 'fleet' }
const STRICT_GUARD = { ...DEFAULT_GUARD, maxErrorRateDelta: 0, maxP99Ratio: 1.2 }
const LEGACY = { errorRate: 0.01, medianMs: 50, sigma: 0.6 }

const sides = (step, legacy, fresh) => ({
  legacy: { rps: RPS * (100 - step) / 100, ...legacy },
  new: { rps: RPS * step / 100, ...fresh }
})

function aa (random, guard, step, errorRate) {
  let breaches = 0
  let healthy = 0
  for (let i = 0; i < HOLDS; i++) {
    const r = simulateHold({ guard, holdMs: HOLD_MS, random, ...sides(step, { ...LEGACY, errorRate }, { ...LEGACY, errorRate }) })
    if (r.breachAtMs !== null) breaches++
    if (r.holdVerdict === 'healthy') healthy++
  }
  return { breaches, healthy }
}

function detect (random, guard, step, fresh) {
  const caught = []
  for (let i = 0; i < RUNS; i++) {
    const r = simulateHold({ guard, holdMs: HOLD_MS, random, ...sides(step, LEGACY, { ...LEGACY, ...fresh }) })
    if (r.breachAtMs !== null) caught.push({ n: r.newRequests, s: r.breachAtMs / 1000 })
  }
  caught.sort((a, b) => a.n - b.n)
  // quantiles over every run: one not caught within the hold counts as never
  const q = (p) => caught[Math.ceil(p * RUNS) - 1]
  return { share: caught.length / RUNS, median: q(0.5), p90: q(0.9) }
}

// every row and cell is a task with its own seed, so the table does not depend on the thread count
const GUARDS = { strict: STRICT_GUARD, defaults: DEFAULT_GUARD }
const AA_ROWS = [['strict', 0.005], ['strict', 0.02], ['strict', 0.1], ['defaults', 0.02]]
const CELLS = [
  ['+1 point of errors (2% vs 1%)', { errorRate: 0.02 }],
  ['+2 points (3% vs 1%)', { errorRate: 0.03 }],
  ['+5 points (6% vs 1%)', { errorRate: 0.06 }],
  ['1.5x p99 (latency x 1.5)', { medianMs: LEGACY.medianMs * 1.5 }]
]
const TASKS = [
  ...AA_ROWS.map(([g, rate]) => ({ kind: 'aa', guard: g, step: 5, rate })),
  ...CELLS.flatMap(([, fresh], c) => STEPS.map((step) => ({ kind: 'detect', guard: 'strict', step, fresh, cell: c })))
]

if (!isMainThread) {
  const { task, index } = workerData
  const random = seeded(SEED * 1000 + index)
  const res = task.kind === 'aa' ? aa(random, GUARDS[task.guard], task.step, task.rate) : detect(random, GUARDS[task.guard], task.step, task.fresh)
  parentPort.postMessage(res)
} else {
  await main()
}

async function main () {
  const started = Date.now()
  const results = new Array(TASKS.length)
  let next = 0
  const run = async () => {
    while (next < TASKS.length) {
      const index = next++
      results[index] = await new Promise((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: { task: TASKS[index], index } })
        w.once('message', resolve)
        w.once('error', reject)
      })
    }
  }
  await Promise.all(Array.from({ length: Math.min(THREADS, TASKS.length) }, run))
  const lines = []
  const out = (s = '') => { lines.push(s); console.log(s) }
  out(`guard simulation: ${RPS} req/s on the rollout, 10-minute holds, 1 s ticks, window 60 s, minRequests 200, confidence 0.99; legacy ${LEGACY.errorRate * 100}% errors, latency lognormal (median ${LEGACY.medianMs} ms, sigma ${LEGACY.sigma}); seed ${SEED}`)
  out()
  out(`### False breaches over ${HOLDS} A/A holds (new identical to legacy), at 5% of traffic (${RPS * 0.05} req/s on new)`)
  out()
  out('The strict guard (maxErrorRateDelta 0, maxP99Ratio 1.2) puts an A/A stream exactly on its null: the worst case.')
  out()
  out('| guard | error rate (both) | false breaches | rate | bound (1 - confidence) | holds judged healthy at the end |')
  out('| --- | --- | --- | --- | --- | --- |')
  AA_ROWS.forEach(([g, rate], i) => {
    const r = results[i]
    const name = g === 'strict' ? 'strict (delta 0, ratio 1.2)' : 'defaults (delta 0.01, ratio 1.5)'
    out(`| ${name} | ${(rate * 100).toFixed(1)}% | ${r.breaches} | ${(r.breaches / HOLDS * 100).toFixed(2)}% | 1% | ${r.healthy} |`)
  })
  out()
  out(`### Requests on new (and seconds into the hold) to catch a regression present from the step's start: strict guard, median and p90 of ${RUNS} runs, and the share caught within the 10-minute hold`)
  out()
  out(`| regression | ${STEPS.map((s) => `step ${s}% (${RPS * s / 100} req/s on new)`).join(' | ')} |`)
  out(`| --- | ${STEPS.map(() => '---').join(' | ')} |`)
  CELLS.forEach(([name], c) => {
    const row = STEPS.map((step) => {
      const d = results[TASKS.findIndex((t) => t.kind === 'detect' && t.cell === c && t.step === step)]
      const caught = `${(d.share * 100).toFixed(0)}% caught`
      if (d.median === undefined) return `median not within the hold; ${caught}`
      const p90 = d.p90 === undefined ? 'p90 not within the hold' : `p90 ${d.p90.n} (${d.p90.s.toFixed(0)} s)`
      return `${d.median.n} (${d.median.s.toFixed(0)} s); ${p90}; ${caught}`
    })
    out(`| ${name} | ${row.join(' | ')} |`)
  })
  out()
  out(`took ${((Date.now() - started) / 1000).toFixed(0)} s on ${process.version}, ${THREADS} threads`)
  if (process.env.GUARD_SIM_OUT) writeFileSync(process.env.GUARD_SIM_OUT, lines.join('\n') + '\n')
}
