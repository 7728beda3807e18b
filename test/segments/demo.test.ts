// the demo carries a new-signups segment, and the curl the demo prints shows it
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startDemo } from '../../src/demo/index.js'
import { tempDir } from '../helpers/gateway.js'

t.test('the demo routes a new sign-up by segment', async (t) => {
  const cli = readFileSync('src/cli/index.ts', 'utf8')
  const line = /curl -si \$\{g\}(\/api\/whoami) -H '(x-user-id): (\w+)' -H '(x-user-registered-at): ([\d-]+)' +# a new sign-up: reason segment \(new-signups\)/.exec(cli)
  t.ok(line, 'the demo prints a curl for the new-signups segment')
  if (line === null) return
  const dir = tempDir()
  const file = join(dir, 'demo.yaml')
  // the demo's own file, with its state kept out of the repo's var/
  writeFileSync(file, readFileSync('config/demo.yaml', 'utf8').replace('file: var/demo-state.json', `file: "${join(dir, 'state.json')}"`))
  const demo = await startDemo({ configPath: file, gatewayPort: 0, adminPort: 0 })
  t.teardown(() => demo.stop())
  const res = await request(demo.gateway.gatewayUrl + line[1], { headers: { [line[2] as string]: line[3] as string, [line[4] as string]: line[5] as string } })
  await res.body.dump()
  t.equal(res.headers['x-dualtrack-reason'], 'segment')
  t.equal(res.headers['x-dualtrack-backend'], 'new')
})
