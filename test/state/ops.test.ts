// the state's ops are pure functions of (doc, now): every test here passes `now` in, so the
// most-recent-wins rule, the audit entries and the version count are checked without a clock
import t from 'tap'
import { applyOp, emptyDoc, opFromDesc, syncYaml, setRollout, rollback, resume, planStart, planAdvance, planWait, planPause, planResume, noop } from '../../src/state/ops.js'
import type { Actor, StateDoc } from '../../src/state/types.js'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()
const ONCALL: Actor = { name: 'oncall', source: 'admin' }
const GUARD: Actor = { name: 'guard', source: 'guard' }
const VIEWS = { checkout: { percent: 10, regions: { guangdong: 100 } } }

/** a doc as the YAML made it at T0 */
function started (): StateDoc {
  const doc = emptyDoc()
  applyOp(doc, syncYaml(VIEWS), T0)
  return doc
}

t.test('syncYaml on an empty doc: one init entry, version 1, every field stamped with now', async (t) => {
  const doc = emptyDoc()
  const audit = applyOp(doc, syncYaml(VIEWS), T0)
  t.same(audit, [{ at: iso(T0), actor: 'yaml', source: 'yaml', action: 'init', rollout: 'checkout', before: null, after: { percent: 10, regions: { guangdong: 100 } }, reason: null }])
  t.same(doc, {
    version: 1,
    rollouts: {
      checkout: {
        percent: 10,
        regions: { guangdong: 100 },
        segments: {},
        rollback: null,
        updatedBy: 'yaml',
        updatedAt: iso(T0),
        source: 'yaml',
        stamps: { percent: T0, rollback: 0, regions: { guangdong: T0 }, segments: {} },
        plan: null
      }
    },
    yaml: { checkout: { percent: 10, regions: { guangdong: 100 }, segments: {} } }
  })
})

t.test('syncYaml again with the same YAML changes nothing and does not count a version', async (t) => {
  const doc = started()
  const before = structuredClone(doc)
  t.same(applyOp(doc, syncYaml(VIEWS), T0 + 1000), [])
  t.same(doc, before)
})

t.test('an admin change survives a reload of an unchanged YAML field; a YAML edit of it wins later', async (t) => {
  const doc = started()
  t.same(applyOp(doc, setRollout('checkout', { percent: 40 }, ONCALL, 'ramp'), T0 + 1000),
    [{ at: iso(T0 + 1000), actor: 'oncall', source: 'admin', action: 'set-percent', rollout: 'checkout', before: 10, after: 40, reason: 'ramp' }])
  t.same([doc.version, doc.rollouts.checkout?.percent, doc.rollouts.checkout?.updatedBy, doc.rollouts.checkout?.source], [2, 40, 'oncall', 'admin'])
  // the YAML still says 10, as last seen: not an edit, the admin's 40 stays
  t.same(applyOp(doc, syncYaml(VIEWS), T0 + 2000), [])
  t.equal(doc.rollouts.checkout?.percent, 40)
  // the YAML's percent edited to 25: the most recent change, it wins
  t.same(applyOp(doc, syncYaml({ checkout: { percent: 25, regions: { guangdong: 100 } } }), T0 + 3000),
    [{ at: iso(T0 + 3000), actor: 'yaml', source: 'yaml', action: 'set-percent', rollout: 'checkout', before: 40, after: 25, reason: null }])
  t.same([doc.version, doc.rollouts.checkout?.percent, doc.rollouts.checkout?.stamps.percent, doc.yaml.checkout?.percent], [3, 25, T0 + 3000, 25])
})

t.test('most recent wins: a change older than the field\'s stamp is ignored', async (t) => {
  const doc = started()
  applyOp(doc, setRollout('checkout', { percent: 40 }, ONCALL), T0 + 2000)
  // a change made at T0+1000 (queued while the store was down) arrives after the one made at T0+2000
  const before = structuredClone(doc)
  t.same(applyOp(doc, setRollout('checkout', { percent: 30 }, ONCALL), T0 + 1000), [])
  t.same(doc, before, 'nothing changed, no version counted')
  // the same instant is not older: it applies
  t.same(applyOp(doc, setRollout('checkout', { percent: 30 }, ONCALL), T0 + 2000).map((e) => e.after), [30])
})

t.test('regions: set, remove with null, per-region stamps; a YAML region edit while down counts', async (t) => {
  const doc = started()
  t.same(applyOp(doc, setRollout('checkout', { regions: { zhejiang: 5, guangdong: null } }, ONCALL), T0 + 1000),
    [{ at: iso(T0 + 1000), actor: 'oncall', source: 'admin', action: 'set-regions', rollout: 'checkout', before: { guangdong: 100 }, after: { zhejiang: 5 }, reason: null }])
  t.same(doc.rollouts.checkout?.stamps.regions, { guangdong: T0 + 1000, zhejiang: T0 + 1000 })
  // removing a region that is not there, or setting one to its value: no entry
  t.same(applyOp(doc, setRollout('checkout', { regions: { hunan: null, zhejiang: 5 } }, ONCALL), T0 + 2000), [])
  // the YAML adds hunan (an edit: it differs from the YAML last seen)
  t.same(applyOp(doc, syncYaml({ checkout: { percent: 10, regions: { guangdong: 100, hunan: 20 } } }), T0 + 3000),
    [{ at: iso(T0 + 3000), actor: 'yaml', source: 'yaml', action: 'set-regions', rollout: 'checkout', before: { zhejiang: 5 }, after: { zhejiang: 5, hunan: 20 }, reason: null }])
  t.same(doc.yaml.checkout, { percent: 10, regions: { guangdong: 100, hunan: 20 }, segments: {} })
})

t.test('setRollout on an unknown rollout changes nothing', async (t) => {
  const doc = started()
  const before = structuredClone(doc)
  t.same(applyOp(doc, setRollout('nope', { percent: 1 }, ONCALL), T0 + 1000), [])
  t.same(doc, before)
})

t.test('rollback and resume: entries, stamps, idempotence, most recent wins', async (t) => {
  const doc = started()
  t.same(applyOp(doc, rollback(['checkout', 'unknown'], 'hard', 'errors up', GUARD, { check: 'errorRate' }), T0 + 1000),
    [{ at: iso(T0 + 1000), actor: 'guard', source: 'guard', action: 'rollback', rollout: 'checkout', before: null, after: { mode: 'hard', check: 'errorRate' }, reason: 'errors up' }])
  t.same(doc.rollouts.checkout?.rollback, { mode: 'hard', reason: 'errors up', by: 'guard', at: iso(T0 + 1000), propagated: true })
  t.same([doc.version, doc.rollouts.checkout?.stamps.rollback, doc.rollouts.checkout?.source], [2, T0 + 1000, 'guard'])
  // the same mode again: nothing to do
  t.same(applyOp(doc, rollback(['checkout'], 'hard', 'again', ONCALL), T0 + 2000), [])
  // a resume made before the rollback (a late arrival) loses
  t.same(applyOp(doc, resume(['checkout'], ONCALL), T0 + 500), [])
  t.same(applyOp(doc, resume(['checkout'], ONCALL, 'fixed'), T0 + 3000),
    [{ at: iso(T0 + 3000), actor: 'oncall', source: 'admin', action: 'resume', rollout: 'checkout', before: { mode: 'hard' }, after: null, reason: 'fixed' }])
  t.same([doc.version, doc.rollouts.checkout?.rollback, doc.rollouts.checkout?.stamps.rollback], [3, null, T0 + 3000])
  // nothing to resume
  t.same(applyOp(doc, resume(['checkout'], ONCALL), T0 + 4000), [])
  // hard -> drain is a change of mode
  applyOp(doc, rollback(['checkout'], 'hard', 'a', ONCALL), T0 + 5000)
  t.same(applyOp(doc, rollback(['checkout'], 'drain', 'b', ONCALL), T0 + 6000).map((e) => [e.before, e.after]), [[{ mode: 'hard' }, { mode: 'drain' }]])
})

t.test('a ramp plan: start at the first step at or above the percent, advance once per step, stop on rollback', async (t) => {
  const steps = [5, 25, 50, 100]
  const doc = started() // percent 10
  t.same(applyOp(doc, planStart('checkout', steps), T0 + 1000), [
    { at: iso(T0 + 1000), actor: 'plan', source: 'plan', action: 'plan-start', rollout: 'checkout', before: null, after: { step: 1, steps }, reason: null },
    { at: iso(T0 + 1000), actor: 'plan', source: 'plan', action: 'set-percent', rollout: 'checkout', before: 10, after: 25, reason: null }
  ])
  t.same(doc.rollouts.checkout?.plan, { step: 1, paused: false, state: 'running', since: iso(T0 + 1000), note: null })
  t.same(applyOp(doc, planStart('checkout', steps), T0 + 1500), [], 'a second start is a no-op')
  // not enough traffic: wait
  t.same(applyOp(doc, planWait('checkout', 1, 'only 12 requests on new'), T0 + 2000),
    [{ at: iso(T0 + 2000), actor: 'plan', source: 'plan', action: 'plan-wait', rollout: 'checkout', before: 'running', after: 'waiting', reason: 'only 12 requests on new' }])
  // two replicas both advance from step 1: the step applies once
  const advance = planAdvance('checkout', 1, steps, 'error rate 0.1% <= 1%')
  t.same(applyOp(doc, advance, T0 + 3000), [
    { at: iso(T0 + 3000), actor: 'plan', source: 'plan', action: 'set-percent', rollout: 'checkout', before: 25, after: 50, reason: 'plan step 3/4: error rate 0.1% <= 1%' }
  ])
  t.same(applyOp(doc, advance, T0 + 3001), [], 'the second replica\'s advance from step 1 is a no-op')
  t.same(doc.rollouts.checkout?.plan, { step: 2, paused: false, state: 'running', since: iso(T0 + 3000), note: null })
  // pause and resume
  t.same(applyOp(doc, planPause('checkout', ONCALL), T0 + 4000).map((e) => [e.action, e.before, e.after]), [['plan-pause', false, true]])
  t.same(applyOp(doc, planAdvance('checkout', 2, steps, 'x'), T0 + 4500), [], 'a paused plan does not advance')
  t.same(applyOp(doc, planResume('checkout', ONCALL), T0 + 5000).map((e) => [e.action, e.before, e.after]), [['plan-resume', 'paused', 'running']])
  t.equal(doc.rollouts.checkout?.plan?.since, iso(T0 + 5000), 'a fresh hold')
  // a rollback stops the plan, and resuming the plan needs the rollback resumed first
  applyOp(doc, rollback(['checkout'], 'hard', 'p99 up', GUARD), T0 + 6000)
  t.same(doc.rollouts.checkout?.plan, { step: 2, paused: false, state: 'stopped', since: iso(T0 + 5000), note: 'rolled back: p99 up' })
  t.same(applyOp(doc, planResume('checkout', ONCALL), T0 + 7000), [])
  applyOp(doc, resume(['checkout'], ONCALL), T0 + 8000)
  t.same(applyOp(doc, planResume('checkout', ONCALL), T0 + 9000).map((e) => [e.action, e.before, e.after]), [['plan-resume', 'stopped', 'running']])
  // the last step: done
  applyOp(doc, planAdvance('checkout', 2, steps, 'ok'), T0 + 10_000)
  t.same([doc.rollouts.checkout?.percent, doc.rollouts.checkout?.plan?.state], [100, 'done'])
  t.same(applyOp(doc, planAdvance('checkout', 3, steps, 'ok'), T0 + 11_000), [], 'nothing after the last step')
})

t.test('ops cross a process boundary by their description', async (t) => {
  const a = started()
  const b = started()
  const op = setRollout('checkout', { percent: 33, regions: { zhejiang: 1 } }, ONCALL, 'why')
  t.same(op.desc, { kind: 'setRollout', args: ['checkout', { percent: 33, regions: { zhejiang: 1 } }, ONCALL, 'why'] })
  const again = opFromDesc(JSON.parse(JSON.stringify(op.desc)))
  t.same(applyOp(b, again, T0 + 1000), applyOp(a, op, T0 + 1000))
  t.same(b, a, 'the same doc on both sides')
  t.same(applyOp(a, noop(), T0 + 2000), [])
  t.throws(() => opFromDesc({ kind: 'dropTables', args: [] }), new TypeError('unknown state op dropTables'))
})
