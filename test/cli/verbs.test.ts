// the CLI changes a rollout: set with --reason, the rollout named either way, undo from the audit
// (refused calls: exit 1 with the API's one-line message)
import t from 'tap'
import { OPERATOR, VIEWER, call } from '../helpers/admin.js'
import { cli, cliGateway as gateway, stateOf as state } from '../helpers/cli.js'

t.test('set sends --reason, takes the rollout either way, and undo reverts from the audit', async (t) => {
  const gw = await gateway(t)
  const a = gw.adminUrl
  const set = await cli(a, OPERATOR, 'set', 'checkout', '20', '--reason', 'ramp after the 10:00 review')
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /checkout\s+20%/)
  const audit = (await call(a, 'GET', '/admin/audit?limit=1', VIEWER)).body.entries as { action: string, reason: string }[]
  t.match(audit[0], { action: 'set-percent', reason: 'ramp after the 10:00 review' })

  t.equal((await cli(a, OPERATOR, 'set', '--rollout', 'checkout', '25')).code, 0)
  t.equal((await state(gw)).rollouts.checkout?.percent, 25)
  t.equal((await cli(a, OPERATOR, 'set', '30')).code, 0, 'the only rollout needs no name')
  t.equal((await state(gw)).rollouts.checkout?.percent, 30)
  t.equal((await cli(a, OPERATOR, 'set', 'checkout', '40', '--region', 'zhejiang')).code, 0)
  t.equal((await state(gw)).rollouts.checkout?.regions.zhejiang, 40)

  // undo: regions, then percent, then a rollback, then a resume
  const u1 = await cli(a, OPERATOR, 'undo', 'checkout')
  t.equal(u1.code, 0, u1.stderr)
  t.match(u1.stdout, /^undid set-regions by oncall at \S+ \(\{"guangdong":100,"zhejiang":40\} -> \{"guangdong":100,"zhejiang":0\}\)/)
  t.equal((await state(gw)).rollouts.checkout?.regions.zhejiang, 0)
  t.equal((await cli(a, OPERATOR, 'undo', '--rollout', 'checkout')).code, 0)
  t.equal((await state(gw)).rollouts.checkout?.percent, 30, 'undo of the undo puts 30 back: undo is a change like any other')
  t.equal((await cli(a, OPERATOR, 'rollback', 'checkout', '--reason', 'errors', '--mode', 'drain')).code, 0)
  t.match((await state(gw)).rollouts.checkout?.rollback, { mode: 'drain' })
  t.equal((await cli(a, OPERATOR, 'undo')).code, 0)
  t.equal((await state(gw)).rollouts.checkout?.rollback, null, 'undo of a rollback resumes')
  t.equal((await cli(a, OPERATOR, 'undo')).code, 0)
  t.match((await state(gw)).rollouts.checkout?.rollback, { mode: 'drain' }, 'undo of a resume rolls back as before')
  const last = (await call(a, 'GET', '/admin/audit?limit=1', VIEWER)).body.entries as { action: string, reason: string }[]
  t.match(last[0], { action: 'rollback', reason: /^undo resume by oncall at / })

  const twoNames = await cli(a, OPERATOR, 'set', 'checkout', '10', '--rollout', 'other')
  t.equal(twoNames.code, 2)
  t.equal(twoNames.stderr, 'dualtrack set: two rollouts named: checkout and --rollout other\n(dualtrack set --help shows the usage)\n')
  const notNumber = await cli(a, OPERATOR, 'set', 'checkout', 'ten')
  t.equal(notNumber.code, 2)
  t.match(notNumber.stderr, 'dualtrack set: percent must be a number, got ten')
  // the API validates: its message, exit 1
  const bad = await cli(a, OPERATOR, 'set', 'checkout', '5.555')
  t.equal(bad.code, 1)
  t.equal(bad.stderr, 'dualtrack set: 400 DUALTRACK_ERR_BAD_REQUEST body.percent: must have at most two decimals\n')
  const unknown = await cli(a, OPERATOR, 'set', 'nope', '10')
  t.equal(unknown.code, 1)
  t.equal(unknown.stderr, 'dualtrack set: 404 DUALTRACK_ERR_UNKNOWN_ROLLOUT unknown rollout nope\n')
  const viewer = await cli(a, VIEWER, 'undo')
  t.equal(viewer.code, 1)
  t.equal(viewer.stderr, 'dualtrack undo: 403 DUALTRACK_ERR_FORBIDDEN token grafana has role viewer; this needs operator (DUALTRACK_TOKEN is a viewer token)\n')
})
