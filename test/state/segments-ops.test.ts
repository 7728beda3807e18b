// percent segments in the run-time state: most recent change wins across YAML and the admin API,
// an unrelated YAML edit keeps an admin change, and a doc from before segments takes the YAML's
import t from 'tap'
// the pure ops behind the state folder's door: a unit test of them, like bucket.test.ts
import { applyOp, emptyDoc, setRollout, syncYaml } from '../../src/state/ops.js'
import type { StateDoc } from '../../src/state/types.js'

const ADMIN = { name: 'oncall', source: 'admin' as const }
const view = (percent: number, segments?: Record<string, number>) => ({ checkout: { percent, regions: {}, ...(segments ? { segments } : {}) } })

t.test('YAML and admin: the most recent change wins', async (t) => {
  const doc = emptyDoc()
  applyOp(doc, syncYaml(view(5, { 'new-signups': 10 })), 1000)
  t.same(doc.rollouts.checkout?.segments, { 'new-signups': 10 })
  const audit = applyOp(doc, setRollout('checkout', { segments: { 'new-signups': 50 } }, ADMIN, 'ramp'), 2000)
  t.match(audit, [{ action: 'set-segments', before: { 'new-signups': 10 }, after: { 'new-signups': 50 }, actor: 'oncall', source: 'admin', reason: 'ramp' }])
  t.same(applyOp(doc, setRollout('checkout', { segments: { 'new-signups': 50 } }, ADMIN), 2500), [], 'the same value again is no change')
  applyOp(doc, syncYaml(view(7, { 'new-signups': 10 })), 3000)
  t.equal(doc.rollouts.checkout?.segments?.['new-signups'], 50, 'an unrelated YAML edit (percent) keeps the admin change')
  t.equal(doc.rollouts.checkout?.percent, 7)
  const y = applyOp(doc, syncYaml(view(7, { 'new-signups': 20 })), 4000)
  t.match(y, [{ action: 'set-segments', actor: 'yaml', before: { 'new-signups': 50 }, after: { 'new-signups': 20 } }])
  t.equal(doc.rollouts.checkout?.segments?.['new-signups'], 20, 'a later YAML edit of the segment wins')
  t.same(applyOp(doc, setRollout('checkout', { segments: { 'new-signups': 90 } }, ADMIN), 3500), [], 'an older admin change (clock skew) loses')
  applyOp(doc, syncYaml(view(7, {})), 5000)
  t.same(doc.rollouts.checkout?.segments, {}, 'a segment removed from the YAML leaves the state')
})

t.test('a doc written before segments existed', async (t) => {
  const doc: StateDoc = emptyDoc()
  applyOp(doc, syncYaml({ checkout: { percent: 5, regions: {} } }), 1000)
  const old = doc.rollouts.checkout as NonNullable<typeof doc.rollouts.checkout>
  delete old.segments
  delete old.stamps.segments
  delete doc.yaml.checkout?.segments
  applyOp(doc, syncYaml(view(5, { 'new-signups': 10 })), 2000)
  t.same(doc.rollouts.checkout?.segments, { 'new-signups': 10 })
  t.equal(doc.version, 2)
  const fresh = emptyDoc()
  delete old.segments
  fresh.rollouts.checkout = old
  t.match(applyOp(fresh, setRollout('checkout', { segments: { 'new-signups': 30 } }, ADMIN), 3000), [{ before: {}, after: { 'new-signups': 30 } }])
})
