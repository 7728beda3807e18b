// diffy-style noise learning: two answers from the SAME system that differ (timestamps, request ids,
// random tokens) show which fields differ for reasons unrelated to the migration; those fields are
// then kept apart from the real primary-vs-shadow mismatches
import { MORE_FIELD } from './compare.js'

export const DEFAULT_MAX_NOISE_FIELDS = 200

export interface NoiseTrackerOptions {
  /** learned fields kept at most; later ones are not learned */
  maxFields?: number
}

export interface NoiseTracker {
  /** the differing fields of a comparison of two answers from the same system */
  observe (fields: readonly string[]): void
  isNoise (field: string): boolean
  /** learned noise fields, sorted */
  fields (): string[]
  /** split a primary-vs-shadow diff into real mismatches and known noise */
  filter (fields: readonly string[]): { real: string[]; noise: string[] }
}

/** learn noisy fields from same-system comparisons, bounded by `maxFields` */
export function createNoiseTracker (opts: NoiseTrackerOptions = {}): NoiseTracker {
  const max = opts.maxFields ?? DEFAULT_MAX_NOISE_FIELDS
  const noise = new Set<string>()
  return {
    observe (fields) {
      for (const f of fields) {
        if (noise.size >= max) return
        // "(more)" only says a diff was capped: learning it would hide every capped real diff
        if (f !== MORE_FIELD) noise.add(f)
      }
    },
    isNoise (field) {
      return noise.has(field)
    },
    fields () {
      return [...noise].sort()
    },
    filter (fields) {
      const real: string[] = []
      const known: string[] = []
      for (const f of fields) (noise.has(f) ? known : real).push(f)
      return { real, noise: known }
    }
  }
}
