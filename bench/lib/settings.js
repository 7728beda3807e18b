// every knob of the harness comes from the environment, read once here
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)))
export const ROOT_DIR = dirname(BENCH_DIR)

/** "8s", "8", "1500ms", "2m" → seconds (fractions allowed) */
export function parseSeconds (value, fallback) {
  if (value === undefined || value === '') return fallback
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(value).trim())
  if (!m) throw new Error(`not a duration: ${value} (examples: 8s, 8, 1500ms, 2m)`)
  const n = Number(m[1])
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n
}

function int (name, fallback, min = 0) {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`)
  return n
}

function list (name) {
  const v = process.env[name]
  if (v === undefined || v.trim() === '') return undefined
  return v.split(',').map((s) => s.trim()).filter(Boolean)
}

export function readSettings (env = process.env) {
  const cores = availableParallelism()
  return {
    duration: parseSeconds(env.BENCH_DURATION, 8),
    warmup: parseSeconds(env.BENCH_WARMUP, 4),
    rounds: int('BENCH_ROUNDS', 3, 1),
    connections: int('BENCH_CONNECTIONS', 50, 1),
    threads: int('BENCH_THREADS', 1, 1),
    // wrk's own request timeout: a stalled request counts as an error, not a 2 s latency
    wrkTimeout: parseSeconds(env.BENCH_WRK_TIMEOUT, 2),
    candidates: list('BENCH_CANDIDATES'),
    scenarios: list('BENCH_SCENARIOS'),
    // the proxy gets a core to itself; origin, wrk and redis share the other one
    proxyCpu: env.BENCH_PROXY_CPU ?? '0',
    loadCpu: env.BENCH_LOAD_CPU ?? (cores > 1 ? '1' : '0'),
    // dualtrack's access logs (info level, as shipped): to a file in the temp dir, or /dev/null
    gatewayLog: env.BENCH_GATEWAY_LOG ?? 'file',
    // nginx access log: buffered file (what a production nginx does) or off
    nginxAccessLog: env.BENCH_NGINX_ACCESS_LOG ?? 'file',
    // how often the proxy's RSS is read during a measured run
    rssSampleMs: int('BENCH_RSS_SAMPLE_MS', 250, 10),
    startTimeoutMs: int('BENCH_START_TIMEOUT_MS', 20_000, 100),
    resultsDir: env.BENCH_RESULTS_DIR ?? join(BENCH_DIR, 'results'),
    // GET /api/orders/<id> names one of this many orders (wrk/random-user.lua): with affinity
    // lookups on, the pool size sets the mix of the gateway's cache hits and store reads
    affinityIds: int('BENCH_AFFINITY_IDS', 10_000, 1),
    soak: parseSeconds(env.BENCH_SOAK, 0),
    soakWarmup: parseSeconds(env.BENCH_SOAK_WARMUP, 30),
    soakInterval: parseSeconds(env.BENCH_SOAK_INTERVAL, 5),
    soakCandidate: env.BENCH_SOAK_CANDIDATE ?? 'dualtrack',
    soakScenario: env.BENCH_SOAK_SCENARIO ?? 'get-1k'
  }
}

/** the BENCH_* variables (and nothing else from the environment) for the results file */
export function benchEnv (env = process.env) {
  const out = {}
  for (const k of Object.keys(env).sort()) {
    if (k.startsWith('BENCH_') || k === 'NODE_OPTIONS' || k === 'NODE_ENV') out[k] = env[k]
  }
  return out
}
