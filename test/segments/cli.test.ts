// the CLI for segments: `set --segment`, `explain --header ...` and `explain --attr ...`
import t from 'tap'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { cli } from '../helpers/cli.js'


const SEGMENTS = `    attributes:
      tier: [header:x-user-tier]
      registeredAt: [header:x-user-registered-at]
    segments:
      - { name: staff, when: [{ attribute: tier, op: IN, values: [staff] }], backend: new }
      - { name: new-signups, when: [{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01" }], percent: 10 }
`

t.test('set --segment, explain with a request or with attributes, status', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { rollout: SEGMENTS, top: TOKENS_YAML }), t)
  const a = gw.adminUrl

  const set = await cli(a, OPERATOR, 'set', 'checkout', '50', '--segment', 'new-signups')
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /rollout\s+percent\s+regions\s+segments\s+rollback.*\ncheckout\s+50%\s+guangdong=100% zhejiang=0%\s+new-signups=50%\s+-/)
  const bad = await cli(a, OPERATOR, 'set', 'checkout', '50', '--segment', 'staff')
  t.equal(bad.code, 1)
  t.match(bad.stderr, 'dualtrack set: 400 DUALTRACK_ERR_BAD_REQUEST body.segments.staff: segment staff routes to a fixed backend')

  const staff = await cli(a, VIEWER, 'explain', '--header', 'x-user-tier=staff', '--header', 'x-user-id=u1')
  t.equal(staff.code, 0, staff.stderr)
  t.match(staff.stdout, /^rollout checkout: new \(reason segment staff, bucket -1\)\n {2}attributes: tier="staff" registeredAt=\(missing\)\n {2}segment staff: matched\n$/)
  const none = await cli(a, VIEWER, 'explain', '--key', 'u1', '--attr', 'registeredAt=2026-10-01')
  t.match(none.stdout, /reason percent.*\n.*\n {2}segment staff: no, tier IN: missing \(a missing attribute never matches\)\n {2}segment new-signups: no, registeredAt DATE_AFTER: "2026-10-01" does not hold/)
  const nokey = await cli(a, VIEWER, 'explain', '--cookie', 'theme=dark')
  t.match(nokey.stdout, /reason unkeyed[^\n]*\n {2}cohort key: none found/)
  const usage = await cli(a, VIEWER, 'explain', '--header', 'novalue')
  t.equal(usage.code, 2)
  t.match(usage.stderr, '--header takes NAME=VALUE, got novalue')
})
