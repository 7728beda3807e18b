// changes to the state as pure functions of a doc: the same op runs on this replica's copy at once
// and on the shared store's copy (again, later, if the store was down); a field only changes when
// the op is at least as recent as the field's last change, so the most recent change wins
import type { Actor, AuditEntry, Op, OpDesc, RollbackMode, RolloutState, StateDoc, YamlView } from './types.js'

// every op carries what it was made from, so it can cross a process boundary (workers send their
// changes to the primary, which owns the file store) and be made again there
function described (kind: string, args: unknown[], fn: (doc: StateDoc, now: number) => AuditEntry[]): Op {
  return Object.assign(fn, { desc: { kind, args } })
}

export function emptyDoc (): StateDoc {
  return { version: 0, rollouts: {}, yaml: {} }
}

function entry (now: number, actor: Actor, action: string, rollout: string | null, before: unknown, after: unknown, reason: string | null = null): AuditEntry {
  return { at: new Date(now).toISOString(), actor: actor.name, source: actor.source, action, rollout, before, after, reason }
}

function touch (r: RolloutState, now: number, actor: Actor): void {
  r.updatedAt = new Date(now).toISOString()
  r.updatedBy = actor.name
  r.source = actor.source
}

function fresh (y: YamlView, now: number): RolloutState {
  return {
    percent: y.percent,
    regions: { ...y.regions },
    segments: { ...y.segments },
    rollback: null,
    updatedBy: 'yaml',
    updatedAt: new Date(now).toISOString(),
    source: 'yaml',
    stamps: {
      percent: now,
      rollback: 0,
      regions: Object.fromEntries(Object.keys(y.regions).map((k) => [k, now])),
      segments: Object.fromEntries(Object.keys(y.segments ?? {}).map((k) => [k, now]))
    },
    plan: null
  }
}

const YAML_ACTOR: Actor = { name: 'yaml', source: 'yaml' }

// a doc written before segments existed has none: give it empty ones
function segmentsOf (r: RolloutState): { cur: Record<string, number>, stamps: Record<string, number> } {
  r.segments ??= {}
  r.stamps.segments ??= {}
  return { cur: r.segments, stamps: r.stamps.segments }
}

/**
 * bring a YAML map (regions, segment percents) in: a key whose YAML value differs from the YAML
 * last seen (`prev`; undefined: never seen) applies unless changed more recently elsewhere
 */
function syncMap (cur: Record<string, number>, stamps: Record<string, number>, prev: Readonly<Record<string, number>> | undefined, next: Readonly<Record<string, number>>, now: number): boolean {
  const keys = new Set([...Object.keys(next), ...Object.keys(prev ?? {})])
  let changed = false
  for (const k of keys) {
    const was = prev?.[k]
    const is = next[k]
    if (prev !== undefined && was === is) continue
    if (cur[k] === is || now < (stamps[k] ?? 0)) continue
    if (is === undefined) delete cur[k]
    else cur[k] = is
    stamps[k] = now
    changed = true
  }
  return changed
}

/**
 * bring the YAML's fields in: a field whose YAML value differs from the YAML last seen was edited
 * (maybe while the gateway was down) and applies; a field the YAML did not change keeps whatever
 * the admin API, the guard or the plan set since
 */
export function syncYaml (views: Readonly<Record<string, YamlView>>): Op {
  return described('syncYaml', [views], (doc, now) => {
    const out: AuditEntry[] = []
    for (const [name, y] of Object.entries(views)) {
      const prev = doc.yaml[name]
      const r = doc.rollouts[name]
      if (r === undefined) {
        doc.rollouts[name] = fresh(y, now)
        out.push(entry(now, YAML_ACTOR, 'init', name, null, { percent: y.percent, regions: y.regions, ...(y.segments !== undefined && Object.keys(y.segments).length > 0 ? { segments: y.segments } : {}) }))
      } else {
        if (prev === undefined || prev.percent !== y.percent) {
          if (r.percent !== y.percent && now >= r.stamps.percent) {
            out.push(entry(now, YAML_ACTOR, 'set-percent', name, r.percent, y.percent))
            r.percent = y.percent
            r.stamps.percent = now
            touch(r, now, YAML_ACTOR)
          }
        }
        const before = { ...r.regions }
        if (syncMap(r.regions, r.stamps.regions, prev?.regions, y.regions, now)) {
          out.push(entry(now, YAML_ACTOR, 'set-regions', name, before, { ...r.regions }))
          touch(r, now, YAML_ACTOR)
        }
        const seg = segmentsOf(r)
        const segBefore = { ...seg.cur }
        // a doc from before segments saw no YAML segments: every one in the file is new to it
        if (syncMap(seg.cur, seg.stamps, prev === undefined ? undefined : (prev.segments ?? {}), y.segments ?? {}, now)) {
          out.push(entry(now, YAML_ACTOR, 'set-segments', name, segBefore, { ...seg.cur }))
          touch(r, now, YAML_ACTOR)
        }
      }
      doc.yaml[name] = { percent: y.percent, regions: { ...y.regions }, segments: { ...y.segments } }
    }
    return out
  })
}

export interface RolloutPatch {
  percent?: number | undefined
  regions?: Record<string, number | null> | undefined
  /** percent segments by name (the caller checked the names) */
  segments?: Record<string, number> | undefined
}

export function setRollout (name: string, patch: RolloutPatch, actor: Actor, reason: string | null = null): Op {
  return described('setRollout', [name, patch, actor, reason], (doc, now) => {
    const r = doc.rollouts[name]
    if (r === undefined) return []
    const out: AuditEntry[] = []
    if (patch.percent !== undefined && r.percent !== patch.percent && now >= r.stamps.percent) {
      out.push(entry(now, actor, 'set-percent', name, r.percent, patch.percent, reason))
      r.percent = patch.percent
      r.stamps.percent = now
    }
    if (patch.regions !== undefined) {
      const before = { ...r.regions }
      let changed = false
      for (const [k, v] of Object.entries(patch.regions)) {
        if (now < (r.stamps.regions[k] ?? 0)) continue
        if (v === null) {
          if (!(k in r.regions)) continue
          delete r.regions[k]
        } else {
          if (r.regions[k] === v) continue
          r.regions[k] = v
        }
        r.stamps.regions[k] = now
        changed = true
      }
      if (changed) out.push(entry(now, actor, 'set-regions', name, before, { ...r.regions }, reason))
    }
    if (patch.segments !== undefined) {
      const seg = segmentsOf(r)
      const before = { ...seg.cur }
      let changed = false
      for (const [k, v] of Object.entries(patch.segments)) {
        if (now < (seg.stamps[k] ?? 0) || seg.cur[k] === v) continue
        seg.cur[k] = v
        seg.stamps[k] = now
        changed = true
      }
      if (changed) out.push(entry(now, actor, 'set-segments', name, before, { ...seg.cur }, reason))
    }
    if (out.length > 0) touch(r, now, actor)
    return out
  })
}

export function rollback (names: readonly string[], mode: RollbackMode, reason: string, actor: Actor, details?: Record<string, unknown>): Op {
  return described('rollback', [names, mode, reason, actor, details], (doc, now) => {
    const out: AuditEntry[] = []
    for (const name of names) {
      const r = doc.rollouts[name]
      if (r === undefined || now < r.stamps.rollback) continue
      if (r.rollback !== null && r.rollback.mode === mode) continue
      const after = { mode, reason, by: actor.name, at: new Date(now).toISOString(), propagated: true }
      out.push(entry(now, actor, 'rollback', name, r.rollback && { mode: r.rollback.mode }, details ? { mode, ...details } : { mode }, reason))
      r.rollback = after
      r.stamps.rollback = now
      // a rollback stops a ramp plan: it does not advance again until resumed by a person
      if (r.plan !== null && r.plan.state !== 'done') r.plan = { ...r.plan, state: 'stopped', note: `rolled back: ${reason}` }
      touch(r, now, actor)
    }
    return out
  })
}

export function resume (names: readonly string[], actor: Actor, reason: string | null = null): Op {
  return described('resume', [names, actor, reason], (doc, now) => {
    const out: AuditEntry[] = []
    for (const name of names) {
      const r = doc.rollouts[name]
      if (r === undefined || r.rollback === null || now < r.stamps.rollback) continue
      out.push(entry(now, actor, 'resume', name, { mode: r.rollback.mode }, null, reason))
      r.rollback = null
      r.stamps.rollback = now
      touch(r, now, actor)
    }
    return out
  })
}

/** apply an op and count the version up when it changed anything */
export function applyOp (doc: StateDoc, op: Op, now: number): AuditEntry[] {
  const audit = op(doc, now)
  if (audit.length > 0) doc.version++
  return audit
}

export function cloneDoc (doc: StateDoc): StateDoc {
  return structuredClone(doc)
}

const PLAN_ACTOR: Actor = { name: 'plan', source: 'plan' }

/** start a ramp plan: the first step at or above the percent in force */
export function planStart (name: string, steps: readonly number[]): Op {
  return described('planStart', [name, steps], (doc, now) => {
    const r = doc.rollouts[name]
    if (r === undefined || r.plan !== null || r.rollback !== null) return []
    let step = steps.findIndex((p) => p >= r.percent)
    if (step === -1) step = steps.length - 1
    const out = [entry(now, PLAN_ACTOR, 'plan-start', name, null, { step, steps })]
    r.plan = { step, paused: false, state: step === steps.length - 1 ? 'done' : 'running', since: new Date(now).toISOString(), note: null }
    const target = steps[step] as number
    if (r.percent !== target) {
      out.push(entry(now, PLAN_ACTOR, 'set-percent', name, r.percent, target))
      r.percent = target
      r.stamps.percent = now
    }
    touch(r, now, PLAN_ACTOR)
    return out
  })
}

/**
 * advance from `from` to the next step; a no-op unless the plan is still at `from` and running,
 * so two replicas that both try apply the step once (the op runs inside the store's compare-and-set)
 */
export function planAdvance (name: string, from: number, steps: readonly number[], evidence: string): Op {
  return described('planAdvance', [name, from, steps, evidence], (doc, now) => {
    const r = doc.rollouts[name]
    const p = r?.plan
    if (r === undefined || p == null || p.step !== from || p.paused || r.rollback !== null || (p.state !== 'running' && p.state !== 'waiting')) return []
    const next = from + 1
    if (next >= steps.length) return []
    const target = steps[next] as number
    const out = [entry(now, PLAN_ACTOR, 'set-percent', name, r.percent, target, `plan step ${next + 1}/${steps.length}: ${evidence}`)]
    r.percent = target
    r.stamps.percent = now
    r.plan = { step: next, paused: false, state: next === steps.length - 1 ? 'done' : 'running', since: new Date(now).toISOString(), note: null }
    touch(r, now, PLAN_ACTOR)
    return out
  })
}

/** not enough traffic to judge the step: wait (Argo's "inconclusive") instead of advancing */
export function planWait (name: string, from: number, note: string): Op {
  return described('planWait', [name, from, note], (doc, now) => {
    const r = doc.rollouts[name]
    const p = r?.plan
    if (r === undefined || p == null || p.step !== from || p.state !== 'running' || p.paused) return []
    r.plan = { ...p, state: 'waiting', note }
    return [entry(now, PLAN_ACTOR, 'plan-wait', name, 'running', 'waiting', note)]
  })
}

export function planPause (name: string, actor: Actor): Op {
  return described('planPause', [name, actor], (doc, now) => {
    const r = doc.rollouts[name]
    if (r?.plan == null || r.plan.paused) return []
    r.plan = { ...r.plan, paused: true }
    touch(r, now, actor)
    return [entry(now, actor, 'plan-pause', name, false, true)]
  })
}

/** go on: a paused, waiting or stopped plan runs again from its current step, with a fresh hold */
export function planResume (name: string, actor: Actor): Op {
  return described('planResume', [name, actor], (doc, now) => {
    const r = doc.rollouts[name]
    const p = r?.plan
    if (r === undefined || p == null || p.state === 'done' || r.rollback !== null) return []
    if (!p.paused && p.state === 'running') return []
    r.plan = { ...p, paused: false, state: 'running', since: new Date(now).toISOString(), note: null }
    touch(r, now, actor)
    return [entry(now, actor, 'plan-resume', name, p.paused ? 'paused' : p.state, 'running')]
  })
}

/** an op that changes nothing (the store restores a lost copy on it) */
export function noop (): Op {
  return described('noop', [], () => [])
}

const FACTORIES: Record<string, (...args: never[]) => Op> = {
  syncYaml, setRollout, rollback, resume, planStart, planAdvance, planWait, planPause, planResume, noop
}

/** make an op again from its description (the other side of a process boundary) */
export function opFromDesc (desc: OpDesc): Op {
  const f = FACTORIES[desc.kind]
  if (f === undefined) throw new TypeError(`unknown state op ${desc.kind}`)
  return (f as (...args: unknown[]) => Op)(...desc.args)
}
