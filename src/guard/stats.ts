// the statistics of the guard, pure and allocation-free: confidence sequences for a Bernoulli rate
// that stay valid however often they are looked at, and the chi-square test of the sample ratio.
//
// the confidence sequence is Robbins' beta-binomial mixture (Robbins 1970; Howard, Ramdas,
// McAuliffe and Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
// Ann. Statist. 49(2), section 3 on conjugate mixtures): for s successes in n trials,
//   E_n(p) = B(s + a, n - s + b) / (B(a, b) p^s (1 - p)^(n - s))
// is a nonnegative martingale with mean 1 when the true rate is p, so by Ville's inequality
// P(E_n(p) >= 1/alpha for some n) <= alpha, and {p : E_n(p) < 1/alpha} covers the true rate at
// every n at once with probability 1 - alpha. Nothing here is asymptotic: it holds for 3 errors in
// 40 requests as well as for 3,000 in 400,000

/** the Jeffreys prior: no favoured scale between 0.1% and 50% */
export const PRIOR_A = 0.5
export const PRIOR_B = 0.5

// Lanczos (g = 7, n = 9): |error| < 1e-13 for x > 0.5
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7
]
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI)

export function logGamma (x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x)
  const z = x - 1
  let s = LANCZOS[0] as number
  for (let i = 1; i < 9; i++) s += (LANCZOS[i] as number) / (z + i)
  const t = z + 7.5
  return HALF_LOG_2PI + (z + 0.5) * Math.log(t) - t + Math.log(s)
}

export function logBeta (a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b)
}

const LOG_B_PRIOR = logBeta(PRIOR_A, PRIOR_B)

/** log E_n(p): the beta-binomial mixture's evidence against the rate p after s of n */
export function logEvidence (s: number, n: number, p: number): number {
  const f = n - s
  if ((p <= 0 && s > 0) || (p >= 1 && f > 0)) return Infinity
  const lp = s === 0 ? 0 : s * Math.log(p)
  const lq = f === 0 ? 0 : f * Math.log(1 - p)
  return logBeta(s + PRIOR_A, f + PRIOR_B) - LOG_B_PRIOR - lp - lq
}

const BISECT = 50

// log E_n(p) = c - s ln p - f ln(1 - p): the beta function is the same at every p, so a bisection
// computes it once
function boundary (s: number, n: number): number {
  return logBeta(s + PRIOR_A, n - s + PRIOR_B) - LOG_B_PRIOR
}
function tilt (s: number, f: number, p: number): number {
  return (s === 0 ? 0 : s * Math.log(p)) + (f === 0 ? 0 : f * Math.log(1 - p))
}

/** the lowest rate the sequence at level alpha still admits (0 when s = 0) */
export function lowerBound (s: number, n: number, alpha: number): number {
  if (n <= 0 || s <= 0) return 0
  // the evidence falls from +inf at 0 to its minimum (<= 0) at s/n: bisect on [0, s/n]
  const level = boundary(s, n) + Math.log(alpha)
  const f = n - s
  let lo = 0
  let hi = s / n
  for (let i = 0; i < BISECT; i++) {
    const mid = (lo + hi) / 2
    if (tilt(s, f, mid) <= level) lo = mid
    else hi = mid
  }
  return lo
}

/** the highest rate the sequence at level alpha still admits (1 when s = n) */
export function upperBound (s: number, n: number, alpha: number): number {
  if (n <= 0 || s >= n) return 1
  const level = boundary(s, n) + Math.log(alpha)
  const f = n - s
  let lo = s / n
  let hi = 1
  for (let i = 0; i < BISECT; i++) {
    const mid = (lo + hi) / 2
    if (tilt(s, f, mid) <= level) hi = mid
    else lo = mid
  }
  return hi
}

/**
 * always-valid p-value of "rate <= p0" against "rate > p0": 1 / E_n(p0) while the observed rate
 * is above p0 (the evidence against every rate below p0 is larger still), 1 otherwise
 */
export function pValueAbove (s: number, n: number, p0: number): number {
  if (n <= 0 || s / n <= p0) return 1
  return Math.min(1, Math.exp(-logEvidence(s, n, p0)))
}

export interface DeltaInterval { readonly lower: number, readonly upper: number }

/**
 * a confidence sequence for rateA - rateB at level alpha: one sequence per side at alpha / 2,
 * joined by the union bound (both cover at every n with probability >= 1 - alpha)
 */
export function deltaInterval (sA: number, nA: number, sB: number, nB: number, alpha: number): DeltaInterval {
  const half = alpha / 2
  return {
    lower: lowerBound(sA, nA, half) - upperBound(sB, nB, half),
    upper: upperBound(sA, nA, half) - lowerBound(sB, nB, half)
  }
}

/**
 * always-valid p-value of "rateA - rateB <= margin": the smallest alpha at which the sequence's
 * lower end is above the margin (bisected on log alpha; 1 when no alpha < 1 gets there)
 */
export function pValueDeltaAbove (sA: number, nA: number, sB: number, nB: number, margin: number): number {
  if (nA <= 0 || nB <= 0 || sA / nA - sB / nB <= margin) return 1
  const above = (alpha: number) => lowerBound(sA, nA, alpha / 2) - upperBound(sB, nB, alpha / 2) > margin
  if (!above(1)) return 1
  let lo = Math.log(1e-15)
  if (above(Math.exp(lo))) return 1e-15
  let hi = 0
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2
    if (above(Math.exp(mid))) hi = mid
    else lo = mid
  }
  return Math.exp(hi)
}

// the complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7)
export function erfc (x: number): number {
  const z = Math.abs(x)
  const t = 1 / (1 + 0.5 * z)
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
  return x >= 0 ? r : 2 - r
}

/** the smallest expected count per cell for which the chi-square approximation is trusted */
export const SRM_MIN_EXPECTED = 10
/** deviations of the observed share smaller than this (0.1 point) are never a mismatch */
export const SRM_DEVIATION_FLOOR = 0.001

/**
 * the sample-ratio check: the requests on new against the sum of the shares each request was held
 * to (`expectedOnNew`), as a chi-square with 1 degree of freedom, (observed - expected)^2 / variance.
 * `variance` is the sum of each request's p(1 - p) (the Poisson-binomial variance: right when
 * requests were held to different shares, a rollout's and its percent segments'); left out, it is
 * total * p(1 - p) for the mean share p, which makes this Pearson's chi-square of two cells exactly.
 * undefined while either cell expects fewer than SRM_MIN_EXPECTED; 1 when the observed share is
 * within the deviation floor of the expected one; 0 when no request could have gone either way
 * (every share 0 or 1) and the count is off anyway
 */
export function sampleRatioPValue (total: number, onNew: number, expectedOnNew: number, variance = total <= 0 ? 0 : expectedOnNew * (total - expectedOnNew) / total): number | undefined {
  const expLegacy = total - expectedOnNew
  if (total <= 0 || expectedOnNew < SRM_MIN_EXPECTED || expLegacy < SRM_MIN_EXPECTED) return undefined
  if (Math.abs(onNew / total - expectedOnNew / total) < SRM_DEVIATION_FLOOR) return 1
  const dNew = onNew - expectedOnNew
  // float sums of 0s and 1s: a variance this small is none
  if (!(variance > 1e-9)) return 0
  return erfc(Math.sqrt((dNew * dNew) / variance / 2))
}
