// affinity.idPatterns: where the two systems' order ids differ in form, the id alone names its
// owner, with no store call. A pattern is an anchored regex ("^NW-\d+$") or a plain prefix ("NW-");
// checked once at load: compiles, anchored, no catastrophic backtracking, and no id matching both
// where that can be decided
import safeRegex from 'safe-regex2'
import type { BackendName } from './schema.js'

export interface IdPatternsConfig { readonly new?: string | undefined, readonly legacy?: string | undefined }

/** the owner an id's form names, or undefined (no pattern matches, or both do) */
export type IdOwner = (id: string) => BackendName | undefined

interface Compiled {
  readonly source: string
  readonly test: (id: string) => boolean
  /** the literal text every match starts with ('' when none can be read off) */
  readonly literal: string
  readonly regex: boolean
}

const META = new Set(['\\', '.', '^', '$', '|', '?', '*', '+', '(', ')', '[', ']', '{', '}'])
const OPTIONAL_NEXT = new Set(['?', '*', '{'])

function compile (p: string): Compiled | string {
  if (p.length === 0) return 'must not be empty'
  if (!p.startsWith('^')) {
    // a prefix: compared as text, never as a regex
    return { source: p, test: (id) => id.startsWith(p), literal: p, regex: false }
  }
  let re: RegExp
  try {
    re = new RegExp(p)
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`
  }
  if (!safeRegex(re)) return 'may backtrack catastrophically (nested repetition); simplify it, e.g. ^NW-[0-9]+$'
  let literal = ''
  for (let i = 1; i < p.length; i++) {
    const c = p[i] as string
    if (META.has(c)) {
      if (OPTIONAL_NEXT.has(c)) literal = literal.slice(0, -1)
      break
    }
    literal += c
  }
  return { source: p, test: (id) => re.test(id), literal, regex: true }
}

// ids to try both patterns on: each literal with a few tails
const TAILS = ['', '0', '1', '9', 'a', 'z', 'A', 'Z', '-', '_', '-1', '-a', '0001', 'x-1']

/** what is wrong with the patterns, each message starting with the field it is about ('' = whole) */
export function checkIdPatterns (p: IdPatternsConfig): { field: string, message: string }[] {
  const out: { field: string, message: string }[] = []
  const compiled: Partial<Record<BackendName, Compiled>> = {}
  for (const b of ['new', 'legacy'] as const) {
    const src = p[b]
    if (src === undefined) continue
    const c = compile(src)
    if (typeof c === 'string') out.push({ field: b, message: c })
    else compiled[b] = c
  }
  const n = compiled.new
  const l = compiled.legacy
  if (n === undefined || l === undefined) return out
  const overlap = (witness: string) => ({ field: '', message: `an id can match both patterns (e.g. "${witness}"): each id must name one owner\n  example: idPatterns: { new: "^NW-", legacy: "^LG-" }` })
  // two literals where neither starts the other: no id matches both
  if (!n.literal.startsWith(l.literal) && !l.literal.startsWith(n.literal)) return out
  if (!n.regex && !l.regex) {
    out.push(overlap(n.literal.length >= l.literal.length ? n.literal : l.literal))
    return out
  }
  for (const base of [n.literal, l.literal]) {
    for (const tail of TAILS) {
      const id = base + tail
      if (n.test(id) && l.test(id)) {
        out.push(overlap(id))
        return out
      }
    }
  }
  // not decidable here: an id that matches both at run time is treated as matching neither
  return out
}

/** the owner function of valid patterns (checked at load), or undefined when none is set */
export function compileIdPatterns (p: IdPatternsConfig | undefined): IdOwner | undefined {
  if (p === undefined || (p.new === undefined && p.legacy === undefined)) return undefined
  const n = p.new === undefined ? undefined : compile(p.new)
  const l = p.legacy === undefined ? undefined : compile(p.legacy)
  const tn = typeof n === 'object' ? n.test : () => false
  const tl = typeof l === 'object' ? l.test : () => false
  return (id) => {
    const isNew = tn(id)
    // both: the store decides (only where overlap could not be ruled out at load)
    if (isNew) return tl(id) ? undefined : 'new'
    return tl(id) ? 'legacy' : undefined
  }
}
