// child processes of the harness: pinned with taskset, tracked so that every one of them is
// stopped by its own pid on the way out, and measured from /proc (cpu ticks, VmRSS)
import { spawn, execFileSync } from 'node:child_process'
import { accessSync, constants, openSync, closeSync, readFileSync, readdirSync } from 'node:fs'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

const live = new Set()

let tasksetPath
export function hasTaskset () {
  if (tasksetPath === undefined) tasksetPath = which('taskset')
  return tasksetPath !== null
}

/** absolute path of a program on PATH (or in sbin), or null */
export function which (name) {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin'])
  for (const d of dirs) {
    try {
      const p = `${d}/${name}`
      accessSync(p, constants.X_OK)
      return p
    } catch { /* not here */ }
  }
  return null
}

let clkTck
function ticksPerSecond () {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clkTck = 100
    }
  }
  return clkTck
}

/**
 * start `cmd args` pinned to `cpu` (a taskset list such as "0"); stdout goes to a file (or is
 * ignored, or piped when `stdout: 'pipe'`), stderr is kept (its last 16 KB) for failure reports
 */
export function startProcess ({ name, cmd, args = [], cpu, cwd, env, stdout = 'ignore' }) {
  const pinned = cpu !== undefined && cpu !== null && hasTaskset()
  const file = pinned ? 'taskset' : cmd
  const argv = pinned ? ['-c', String(cpu), cmd, ...args] : args
  let outFd
  let stdio1 = stdout
  if (stdout !== 'ignore' && stdout !== 'pipe') {
    outFd = openSync(stdout, 'a')
    stdio1 = outFd
  }
  // taskset execs the command: the child's pid is the measured program's pid
  const child = spawn(file, argv, { cwd, env: env ?? process.env, stdio: ['ignore', stdio1, 'pipe'] })
  if (outFd !== undefined) closeSync(outFd)
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-16_384) })
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => { live.delete(proc); resolve({ code, signal }) })
    child.once('error', (err) => { live.delete(proc); stderr += `\n${err.message}`; resolve({ code: -1, signal: null, error: err }) })
  })
  const proc = {
    name,
    child,
    pid: child.pid,
    pinned,
    command: [file, ...argv].map(shellQuote).join(' '),
    exited,
    get stderr () { return stderr },
    get running () { return child.exitCode === null && child.signalCode === null },
    /** SIGTERM, then SIGKILL for it and the children it left after `graceMs` */
    async stop (graceMs = 5_000) {
      if (!proc.running) return exited
      const family = treeOf(child.pid)
      child.kill('SIGTERM')
      const done = await Promise.race([exited, sleep(graceMs).then(() => null)])
      if (done === null) {
        for (const pid of family) killPid(pid, 'SIGKILL')
        return exited
      }
      // nginx workers leave with their master; anything still alive from its family goes now
      for (const pid of family) if (pid !== child.pid && alive(pid)) killPid(pid, 'SIGKILL')
      return done
    }
  }
  live.add(proc)
  return proc
}

/** a word as a shell would need it, for commands written to the results */
export function shellQuote (w) {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`
}

function killPid (pid, signal) {
  try { process.kill(pid, signal) } catch { /* already gone */ }
}

function alive (pid) {
  try { process.kill(pid, 0); return true } catch { return false }
}

/** stop everything the harness started, by pid (used on exit and on signals) */
export function killAll (signal = 'SIGKILL') {
  for (const p of live) {
    for (const pid of treeOf(p.pid)) killPid(pid, signal)
  }
}

function readStat (pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the command name may hold spaces and parens: fields start after the last ')'
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) }
  } catch {
    return null
  }
}

/** pid and all its descendants (nginx: master and workers) */
export function treeOf (pid) {
  if (pid === undefined) return []
  const parents = new Map()
  for (const d of readdirSync('/proc')) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue
    const st = readStat(d)
    if (st) parents.set(Number(d), st.ppid)
  }
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    for (const [p, pp] of parents) if (pp === out[i]) out.push(p)
  }
  return out
}

/** user+system cpu time of these pids, in microseconds */
export function cpuMicros (pids) {
  let ticks = 0
  for (const pid of pids) {
    const st = readStat(pid)
    if (st) ticks += st.utime + st.stime
  }
  return ticks * 1e6 / ticksPerSecond()
}

/**
 * cpu time of the whole machine (every core, every process) from /proc/stat, in microseconds:
 * `busy` (user, nice, system, irq, softirq) and `steal` (time the hypervisor gave to other guests)
 */
export function systemCpuMicros () {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number)
    const k = 1e6 / ticksPerSecond()
    return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) * k, steal: (f[7] ?? 0) * k }
  } catch {
    return null
  }
}

/** this process and every process the harness started that still runs, with their children */
export function ownPids () {
  const out = new Set([process.pid])
  for (const p of live) for (const pid of treeOf(p.pid)) out.add(pid)
  return [...out]
}

/** summed VmRSS of these pids, in kB */
export function rssKb (pids) {
  let kb = 0
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) kb += Number(m[1])
    } catch { /* gone */ }
  }
  return kb
}

/** sample the peak RSS of `pids` every `everyMs` until stop() */
export function rssSampler (pids, everyMs) {
  let peak = rssKb(pids)
  const timer = setInterval(() => { peak = Math.max(peak, rssKb(pids)) }, everyMs)
  return { stop () { clearInterval(timer); return Math.max(peak, rssKb(pids)) } }
}

/** one GET; resolves { status, headers, body } or rejects */
export function httpGet (port, path, headers = {}, timeoutMs = 2_000, maxChars = 4_096) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { if (body.length < maxChars) body += d })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** wait until `port` answers HTTP (any status), or the process dies, or time runs out */
export async function waitForHttp (port, proc, timeoutMs, path = '/', headers = { 'x-user-id': 'bench-ready' }) {
  const deadline = Date.now() + timeoutMs
  let lastErr
  while (Date.now() < deadline) {
    if (proc && !proc.running) {
      const { code, signal } = await proc.exited
      throw new Error(`${proc.name} exited (code ${code}, signal ${signal}) before it listened`)
    }
    try {
      return await httpGet(port, path, headers, 1_000)
    } catch (err) {
      lastErr = err
      await sleep(100)
    }
  }
  throw new Error(`${proc?.name ?? 'server'} did not answer on port ${port} within ${timeoutMs} ms (${lastErr?.message})`)
}

/** read the first JSON line a child prints on stdout (baselines announce their port that way) */
export function firstJsonLine (proc, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buf = ''
    let done = false
    const timer = setTimeout(() => reject(new Error(`${proc.name} printed no JSON line within ${timeoutMs} ms`)), timeoutMs)
    proc.child.stdout.setEncoding('utf8')
    // keeps draining after the first line so the child never blocks on a full pipe
    proc.child.stdout.on('data', (d) => {
      if (done) return
      buf += d
      const nl = buf.indexOf('\n')
      if (nl !== -1) {
        done = true
        clearTimeout(timer)
        try { resolve(JSON.parse(buf.slice(0, nl))) } catch (err) { reject(err) }
      }
    })
    proc.exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${proc.name} exited (code ${code}, signal ${signal}) before it announced its port`))
    })
  })
}
