import t from 'tap'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { cli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

t.test('the CLI drives the admin API', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  const a = gw.adminUrl

  const status = await cli(a, VIEWER, 'status')
  t.equal(status.code, 0)
  t.match(status.stdout, /^state version \d+\nrollout\s+percent\s+regions\s+rollback\s+plan\s+last change\ncheckout\s+50%\s+guangdong=100% zhejiang=0%\s+-\s+-\s+yaml via yaml at /)

  const set = await cli(a, OPERATOR, 'set', 'checkout', '10')
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /checkout\s+10%/)
  t.equal(gw.app.dataPlane.router.rollouts.get('checkout')?.threshold, 1000)

  const region = await cli(a, OPERATOR, 'set', 'checkout', '30', '--region', 'zhejiang')
  t.match(region.stdout, /zhejiang=30%/)

  const refused = await cli(a, OPERATOR, 'set', 'checkout', '150')
  t.equal(refused.code, 1)
  t.match(refused.stderr, 'dualtrack set: 400 DUALTRACK_ERR_BAD_REQUEST body.percent: must be <= 100')
  const viewer = await cli(a, VIEWER, 'set', 'checkout', '20')
  t.equal(viewer.code, 1)
  t.match(viewer.stderr, '403 DUALTRACK_ERR_FORBIDDEN')

  const rb = await cli(a, OPERATOR, 'rollback', '--reason', 'error rate up', '--json')
  t.equal(rb.code, 0)
  const json = JSON.parse(rb.stdout) as { rollouts: { checkout: { rollback: { mode: string, reason: string, by: string } } } }
  t.match(json.rollouts.checkout.rollback, { mode: 'hard', reason: 'error rate up', by: 'oncall' })
  const res = await request(gw.url + '/api/orders', { headers: { 'x-user-id': 'qa-user-1' } })
  await res.body.dump()
  t.equal(res.headers['x-dualtrack-reason'], 'rollback')

  const drain = await cli(a, OPERATOR, 'rollback', '--reason', 'drain it', '--drain', '--rollout', 'checkout')
  t.match(drain.stdout, /drain by oncall: drain it/)

  const resume = await cli(a, OPERATOR, 'resume')
  t.equal(resume.code, 0)
  t.match(resume.stdout, /checkout\s+10%\s+guangdong=100% zhejiang=30%\s+-\s+-\s+oncall via admin/)

  const explain = await cli(a, VIEWER, 'explain', '--key', 'qa-user-1')
  t.equal(explain.stdout.trim(), 'rollout checkout: new (reason force, bucket -1)')

  const audit = await cli(a, VIEWER, 'audit', '--limit', '2')
  t.match(audit.stdout, /^at\s+actor\s+source\s+action\s+rollout\s+before -> after\s+reason\n.*oncall\s+admin\s+resume\s+checkout/)

  const usage = await cli(a, OPERATOR, 'rollback')
  t.equal(usage.code, 2)
  t.match(usage.stderr, "dualtrack rollback: required option '--reason <text>' not specified")
  const down = await cli('http://127.0.0.1:1', OPERATOR, 'status')
  t.equal(down.code, 1)
  t.match(down.stderr, 'cannot reach the admin API at http://127.0.0.1:1')
})

t.test('dualtrack guard prints the verdict table', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const guard = '    guard: { window: 1s, minRequests: 500, maxErrorRateDelta: 0.01, maxP99Ratio: 1.5 }\n'
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, rollout: guard }), t)
  for (let i = 0; i < 20; i++) {
    const r = await request(gw.url + '/api/orders', { headers: { 'x-user-id': `u${i}` } })
    await r.body.dump()
  }
  await waitFor(() => (gw.app.guardian.verdict('checkout')?.backends.legacy.requests ?? 0) > 0, { what: 'a verdict on some traffic' })
  const out = await cli(gw.adminUrl, VIEWER, 'guard')
  t.equal(out.code, 0, out.stderr)
  t.match(out.stdout, /^rollout\s+verdict\s+scope\s+sample\s+requests new\/legacy\s+errors new\/legacy\s+error delta \[bounds\] p\s+p99 new\/legacy\s+p99 ratio p\s+why\n/)
  t.match(out.stdout, /\ncheckout\s+inconclusive\s+replica\s+window since \d\d:\d\d:\d\d\s+\d+ \/ \d+\s+0\.00% \/ 0\.00%\s+0\.00% \[-?\d+\.\d\d%, \d+\.\d\d%\] p=1\.0000\s+\d+ \/ \d+ ms\s+(\d+\.\d\dx|-) p=1\.0000\s+inconclusive, \d+ of 500 requests on new/)
  const json = JSON.parse((await cli(gw.adminUrl, VIEWER, 'guard', '--json')).stdout) as { rollouts: Record<string, { verdict: string }> }
  t.equal(json.rollouts.checkout?.verdict, 'inconclusive')
})
