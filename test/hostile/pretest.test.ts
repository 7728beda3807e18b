// `npm test` on a fresh machine: its pretest (scripts/test-deps.sh) installs the Debian packages the
// suite needs when it can (root and apt-get), and otherwise stops with the exact command to run
// (before: the README's test command failed deep in the suite for want of redis-server or promtool)
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/gateway.js'

/** a PATH holding only these fake commands (each a script with this body) */
function fakePath (commands: Record<string, string>): string {
  const dir = tempDir('dualtrack-path-')
  for (const [name, body] of Object.entries(commands)) {
    writeFileSync(join(dir, name), `#!/bin/bash\n${body}\n`)
    chmodSync(join(dir, name), 0o755)
  }
  return dir
}

const run = (path: string) => spawnSync('/bin/bash', ['scripts/test-deps.sh'], { env: { PATH: path }, encoding: 'utf8' })

t.test('package.json runs it before the tests, and .ci/run still calls npm test', async (t) => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }
  t.equal(pkg.scripts.pretest, 'bash scripts/test-deps.sh')
  // the README's test command, its output kept so a failure is summarised at the tail
  t.match(readFileSync('.ci/run', 'utf8'), /^if ! npm test 2>&1 \| tee "\$log"; then$/m)
})

t.test('nothing missing: silent, exit 0', async (t) => {
  const r = run(fakePath({ 'redis-server': 'true', 'redis-sentinel': 'true', prometheus: 'true', promtool: 'true', chromium: 'true', script: 'true', openssl: 'true', id: 'echo 1000' }))
  t.equal(r.status, 0)
  t.equal(r.stderr, '')
})

t.test('not root: stops with the exact command, naming what is missing', async (t) => {
  const r = run(fakePath({ script: 'true', openssl: 'true', id: 'echo 1000', 'apt-get': 'echo "apt-get must not run" >&2; exit 3' }))
  t.equal(r.status, 1)
  t.match(r.stderr, /npm test needs redis-server redis-sentinel prometheus promtool chromium \(/)
  t.match(r.stderr, /sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends redis-server redis-sentinel prometheus chromium'/)
  t.notMatch(r.stderr, /must not run/)
})

t.test('no apt-get: says what to install elsewhere', async (t) => {
  const r = run(fakePath({ id: 'echo 1000' }))
  t.equal(r.status, 1)
  t.match(r.stderr, /redis-server redis-sentinel prometheus promtool chromium script openssl/)
  t.match(r.stderr, /bsdutils/)
  t.match(r.stderr, /elsewhere: redis-server/)
})

t.test('root with apt-get: installs the missing packages, once each', async (t) => {
  const log = join(tempDir(), 'apt.log')
  const r = run(fakePath({ script: 'true', openssl: 'true', id: 'echo 0', 'apt-get': `echo "$@" >> ${log}` }))
  t.equal(r.status, 0, r.stderr)
  t.ok(existsSync(log))
  t.same(readFileSync(log, 'utf8').trim().split('\n'), ['update -qq', 'install -y -qq --no-install-recommends redis-server redis-sentinel prometheus chromium'])
})
