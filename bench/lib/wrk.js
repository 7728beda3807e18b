// run wrk pinned to the load core and read its --latency report
import { startProcess, cpuMicros } from './proc.js'
import { setTimeout as sleep } from 'node:timers/promises'

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const SIZE = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }

function ms (text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN
}

/** parse wrk 4's text output (run with --latency) */
export function parseWrk (out) {
  const r = { requests: 0, seconds: NaN, rps: NaN, bytesRead: NaN, p50: NaN, p75: NaN, p90: NaN, p99: NaN, latencyAvg: NaN, latencyMax: NaN, errors: { connect: 0, read: 0, write: 0, timeout: 0, non2xx3xx: 0 } }
  let m
  if ((m = /(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB) read/.exec(out))) {
    r.requests = Number(m[1])
    r.seconds = ms(`${m[2]}${m[3]}`) / 1000
    r.bytesRead = Math.round(Number(m[4]) * SIZE[m[5]])
  }
  if ((m = /Requests\/sec:\s+([\d.]+)/.exec(out))) r.rps = Number(m[1])
  if ((m = /Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)/.exec(out))) {
    r.latencyAvg = ms(m[1])
    r.latencyMax = ms(m[3])
  }
  for (const p of [50, 75, 90, 99]) {
    const pm = new RegExp(`^\\s+${p}%\\s+([\\d.]+\\w+)`, 'm').exec(out)
    if (pm) r[`p${p}`] = ms(pm[1])
  }
  if ((m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out))) {
    r.errors.connect = Number(m[1])
    r.errors.read = Number(m[2])
    r.errors.write = Number(m[3])
    r.errors.timeout = Number(m[4])
  }
  if ((m = /Non-2xx or 3xx responses: (\d+)/.exec(out))) r.errors.non2xx3xx = Number(m[1])
  return r
}

/**
 * one wrk run; `seconds` may be fractional (wrk takes whole seconds: rounded up).
 * the run is bounded twice: by wrk's -d and by a kill after `seconds + 20`.
 */
export async function runWrk ({ wrk, url, script, seconds, connections, threads, timeout, cpu, affinityIds }) {
  const d = Math.max(1, Math.ceil(seconds))
  const args = [`-t${threads}`, `-c${connections}`, `-d${d}s`, `--timeout`, `${Math.max(1, Math.ceil(timeout))}s`, '--latency', '-s', script, url]
  // the lua script reads the order pool size from its environment (wrk/random-user.lua)
  const env = affinityIds ? { ...process.env, BENCH_AFFINITY_IDS: String(affinityIds) } : process.env
  const proc = startProcess({ name: 'wrk', cmd: wrk, args, cpu, env, stdout: 'pipe' })
  let out = ''
  // wrk's own cpu time, read while it runs (its last 200 ms are missed): the bench subtracts it
  // from the machine's busy time to see what other processes used during the run
  let wrkCpu = 0
  const sampler = setInterval(() => { const v = cpuMicros([proc.pid]); if (v > 0) wrkCpu = v }, 200)
  proc.child.stdout.setEncoding('utf8')
  proc.child.stdout.on('data', (c) => { out += c })
  const killer = sleep((d + 20) * 1000, null, { ref: false }).then(() => proc.stop(1_000))
  const { code, signal } = await proc.exited
  clearInterval(sampler)
  void killer
  if (code !== 0) throw new Error(`wrk exited with code ${code} signal ${signal}: ${proc.stderr.trim() || out.trim()}`)
  const r = parseWrk(out)
  r.command = `wrk ${args.join(' ')}`
  r.cpuMicros = wrkCpu
  if (proc.stderr.trim()) r.stderr = proc.stderr.trim().slice(-2_000)
  return r
}
