// which samples of traffic the guard judges, as a pure function of time and the shared state, so
// that every replica of a fleet picks the same ones (and the same Redis keys) without talking.
//
// a sequential test is valid from its start for ever, but a test that never restarts lets hours of
// healthy traffic hide a fresh regression. So the window is judged as staggered tests: one starts
// at every multiple of `window` (or at the last resume, whichever is later) and lives two windows;
// the one judged is the older of the two alive, which holds between one and two windows of traffic.
// each test gets an equal share of alpha, so that over a hold (the plan's, else DEFAULT_HOLD_MS)
// the chance of any false breach stays at most 1 - confidence. While a plan runs, its step is one
// more test, from the step's start, with half of alpha: the one that lets the plan advance

/** the period over which 1 - confidence bounds the false breaches of a rollout with no plan */
export const DEFAULT_HOLD_MS = 600_000

export interface SampleSpec {
  /** unique per rollout; part of the fleet's Redis key */
  readonly id: string
  readonly kind: 'window' | 'hold'
  readonly start: number
  /** when it stops being recorded into (Infinity: until the step ends) */
  readonly end: number
}

export interface Samples {
  /** the samples recorded into now */
  readonly open: readonly SampleSpec[]
  /** the window sample judged now */
  readonly window: SampleSpec
  /** the plan step's sample, while a plan runs */
  readonly hold: SampleSpec | undefined
  /** each one's share of 1 - confidence */
  readonly windowAlpha: number
  readonly holdAlpha: number
}

/**
 * @param floor no sample starts before this (the last resume: a rollback's traffic is not judged again)
 * @param stepSince when the running plan's step began, or undefined
 * @param holdMs the plan's hold, if the rollout has a plan
 */
export function samplesAt (now: number, windowMs: number, alpha: number, floor: number, stepSince: number | undefined, holdMs: number | undefined): Samples {
  const w = Math.max(1, windowMs)
  const j = Math.floor(now / w)
  const starts = new Set<number>()
  for (const k of [j - 1, j]) starts.add(Math.max(k * w, floor))
  const open: SampleSpec[] = []
  for (const s of [...starts].filter((s) => s <= now).sort((a, b) => a - b)) {
    // a test lives until two windows past the window slot it began in
    open.push({ id: `w${w}:${s}`, kind: 'window', start: s, end: (Math.floor(s / w) + 2) * w })
  }
  if (open.length === 0) open.push({ id: `w${w}:${now}`, kind: 'window', start: now, end: (j + 2) * w })
  const window = open[0] as SampleSpec
  let hold: SampleSpec | undefined
  if (stepSince !== undefined) {
    hold = { id: `s:${Math.max(stepSince, floor)}`, kind: 'hold', start: Math.max(stepSince, floor), end: Infinity }
    open.push(hold)
  }
  // tests judged within one hold: one per window, plus the one alive at its start and one from a resume
  const perHold = Math.ceil((holdMs ?? DEFAULT_HOLD_MS) / w) + 2
  const windowShare = hold === undefined ? alpha : alpha / 2
  return { open, window, hold, windowAlpha: windowShare / perHold, holdAlpha: alpha / 2 }
}

export interface SamplesJudgment<J> {
  readonly window: J
  readonly hold: J | undefined
  /** the first breaching sample, if any */
  readonly breach: { readonly j: J, readonly spec: SampleSpec } | undefined
  /** what to show: the breach, else the hold while a plan runs (it decides), else the window */
  readonly shown: { readonly j: J, readonly spec: SampleSpec }
}

/** judge the samples of one moment; the guardian and the simulation (bench/guard-sim.js) share this */
export function judgeSamples<J extends { readonly verdict: string }> (s: Samples, alpha: number, judgeOne: (spec: SampleSpec, alpha: number, adjust: number) => J): SamplesJudgment<J> {
  const window = judgeOne(s.window, s.windowAlpha, alpha / s.windowAlpha)
  const hold = s.hold === undefined ? undefined : judgeOne(s.hold, s.holdAlpha, alpha / s.holdAlpha)
  const breach = window.verdict === 'breach'
    ? { j: window, spec: s.window }
    : hold !== undefined && s.hold !== undefined && hold.verdict === 'breach' ? { j: hold, spec: s.hold } : undefined
  const shown = breach ?? (hold !== undefined && s.hold !== undefined ? { j: hold, spec: s.hold } : { j: window, spec: s.window })
  return { window, hold, breach, shown }
}
