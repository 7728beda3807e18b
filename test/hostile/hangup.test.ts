// a terminal closed under a running process (a real pseudo-terminal: util-linux `script`): the
// process exits, and uses no CPU meanwhile. Before: `npm run demo` spun at 100% CPU forever (a
// SIGSEGV handler looping), and `dualtrack start` kept retrying write(1) = EIO every 100 ms, its
// listeners closed, never exiting
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { waitFor } from '../helpers/wait.js'

const CLK_TCK = 100 // USER_HZ on Linux

function children (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number))
  } catch {
    return []
  }
}

function descendants (pid: number): number[] {
  const out: number[] = []
  for (const c of children(pid)) out.push(c, ...descendants(c))
  return out
}

function cmdline (pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') } catch { return '' }
}

/** state letter and CPU seconds from /proc/PID/stat; undefined once the process is gone */
function stat (pid: number): { state: string, cpuSeconds: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { state: f[0] as string, cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK }
  } catch {
    return undefined
  }
}

const gone = (pid: number) => { const s = stat(pid); return s === undefined || s.state === 'Z' || s.state === 'X' }

/**
 * run `command` on a pseudo-terminal, wait for `ready` in what the terminal shows, then close the
 * terminal the way a window manager does (its emulator dies: the master side closes, the kernel hangs
 * up the line) and wait for the node process to be gone
 */
async function hangUp (t: Test, command: string, ready: RegExp, nodeMatch: RegExp) {
  const term = spawn('script', ['-qfc', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } })
  let screen = ''
  term.stdout.on('data', (c: Buffer) => { screen += c.toString() })
  term.stderr.on('data', (c: Buffer) => { screen += c.toString() })
  t.teardown(() => { if (term.exitCode === null) term.kill('SIGKILL') })
  await waitFor(() => ready.test(screen), { timeoutMs: 60_000, what: `${command} ready on the terminal (screen: ${screen.slice(-300)})` })
  const pid = descendants(term.pid as number).find((p) => nodeMatch.test(cmdline(p)))
  t.ok(pid, 'found the node process under the terminal')
  const node = pid as number
  t.teardown(() => { if (!gone(node)) process.kill(node, 'SIGKILL') })
  const cpuBefore = stat(node)?.cpuSeconds ?? 0
  const closedAt = performance.now()
  term.kill('SIGKILL')
  let lastCpu = cpuBefore
  const where = () => { try { return `${stat(node)?.state} in ${readFileSync(`/proc/${node}/wchan`, 'utf8')}` } catch { return 'gone' } }
  await waitFor(() => { const s = stat(node); if (s) lastCpu = s.cpuSeconds; return gone(node) }, { timeoutMs: 20_000, what: `the node process ${node} gone after the terminal closed (it is ${where()}; screen: ${screen.slice(-400)})` })
  t.comment(`${command}: exited ${Math.round(performance.now() - closedAt)} ms after the hang-up, ${(lastCpu - cpuBefore).toFixed(2)} s of CPU meanwhile`)
}

t.test('dualtrack demo on a terminal exits when the terminal closes', async (t) => {
  await hangUp(t, 'exec node bin/dualtrack.js demo --port 0 --admin-port 0', /Ctrl-C/, /dualtrack\.js demo/)
})

t.test('npm run demo on a terminal: its node process (under npm and a shell) exits too', async (t) => {
  await hangUp(t, 'npm run demo -- --port 0 --admin-port 0', /Ctrl-C/, /dualtrack\.js demo/)
})

t.test('dualtrack start on a terminal exits when the terminal closes (SIGHUP reloads only while the terminal is there)', async (t) => {
  const dir = tempDir()
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, basicYaml('http://127.0.0.1:1', 'http://127.0.0.1:2') + `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
state: { store: file, file: "${join(dir, 'state.json')}" }
`)
  await hangUp(t, `exec node bin/dualtrack.js start --config ${file}`, /dualtrack listening/, /dualtrack\.js start/)
})
