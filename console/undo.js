// undo (the console's Undo button and `dualtrack undo`, one code for both): the admin calls that
// revert a rollout's last change, worked out from its audit entry's `before`. The caller makes the
// calls, so roles, validation and audit stay the API's. Where a change has no inverse the API can
// make, the answer says why instead of guessing. Plain JS with no imports: the browser loads it as
// is, the CLI imports the same file from the package

const isMap = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * @param {string} name the rollout
 * @param {{ at: string, actor: string, source: string, action: string, before: unknown, after: unknown, reason: string | null }} e its newest audit entry
 * @param {{ plan?: { step: number, steps?: number[], paused: boolean, state: string } | null } | undefined} r the rollout's state now
 * @param {string} reason for the audit
 * @returns {{ calls: { method: 'PUT' | 'POST', path: string, body: object }[], note?: string } | { refused: string }}
 */
export function undoOf (name, e, r, reason) {
  const path = `/admin/rollouts/${encodeURIComponent(name)}`
  const plan = (action) => ({ method: 'POST', path: `${path}/plan/${action}`, body: {} })
  const step = r?.plan ? `step ${r.plan.step + 1}${r.plan.steps ? `/${r.plan.steps.length}` : ''}` : 'its step'
  switch (e.action) {
    case 'set-percent': {
      if (typeof e.before !== 'number') break
      const put = { method: 'PUT', path, body: { percent: e.before, reason } }
      if (e.source !== 'plan') return { calls: [put] }
      // a plan step (its start or an advance): put back alone, a moving plan would move it again
      // after the next hold; paused first, it stays where undo puts it until someone resumes the plan
      if (r?.plan == null || r.plan.paused || r.plan.state === 'done' || r.plan.state === 'stopped') return { calls: [put] }
      return {
        calls: [plan('pause'), put],
        note: `the plan is paused at ${step} with ${e.before}%; \`dualtrack plan resume ${name}\` goes on from there (a fresh hold, then the next step)`
      }
    }
    case 'set-regions': {
      if (!isMap(e.before)) break
      const after = isMap(e.after) ? e.after : {}
      const regions = { ...e.before }
      for (const k of Object.keys(after)) if (!(k in e.before)) regions[k] = null
      return { calls: [{ method: 'PUT', path, body: { regions, reason } }] }
    }
    case 'set-segments': {
      const before = e.before
      if (!isMap(before)) break
      const after = isMap(e.after) ? e.after : {}
      // a segment absent before has no previous percent to restore (and the API cannot unset one)
      const added = Object.keys(after).filter((k) => !(k in before))
      if (added.length > 0) return { refused: `segment ${added.join(', ')} had no percent before this change (it came with the YAML): set it with \`dualtrack set ${name} PERCENT --segment ${added[0]}\`` }
      const segments = {}
      for (const [k, v] of Object.entries(before)) if (after[k] !== v) segments[k] = v
      if (Object.keys(segments).length === 0) return { refused: `${e.action} by ${e.actor} at ${e.at} changed no segment percent: nothing to restore` }
      return { calls: [{ method: 'PUT', path, body: { segments, reason } }] }
    }
    case 'rollback':
      if (e.before === null) return { calls: [{ method: 'POST', path: '/admin/resume', body: { rollout: name, reason } }] }
      if (isMap(e.before)) return { calls: [{ method: 'POST', path: '/admin/rollback', body: { rollout: name, mode: e.before.mode, reason } }] }
      break
    case 'resume':
      if (isMap(e.before)) return { calls: [{ method: 'POST', path: '/admin/rollback', body: { rollout: name, mode: e.before.mode, reason } }] }
      break
    case 'plan-start':
      // no API removes a plan, and the guard starts a plan the YAML names again: pausing is the inverse there is
      if (r?.plan == null) return { refused: `${name} has no plan in force any more: nothing to undo` }
      if (r.plan.paused) return { refused: `the plan of ${name} is already paused at ${step}: a started plan cannot be unstarted while the YAML names it (the guard would start it again); remove rollouts.${name}.plan from the YAML and reload to drop it` }
      return { calls: [plan('pause')], note: `a started plan cannot be unstarted while the YAML names it (the guard would start it again): paused at ${step}` }
    case 'plan-pause':
      return { calls: [plan('resume')] }
    case 'plan-resume':
      return { calls: [plan('pause')] }
    case 'plan-wait':
      return { refused: `plan-wait is the plan's own state (${typeof e.reason === 'string' ? e.reason : 'not enough traffic to judge the step'}), not a change to revert: \`dualtrack plan pause ${name}\` stops it` }
    case 'init':
      return { refused: `init is ${name}'s first state, from the YAML: there is nothing before it` }
  }
  return { refused: `${e.action} by ${e.actor} at ${e.at} carries no previous value undo can restore (before: ${JSON.stringify(e.before)})` }
}
