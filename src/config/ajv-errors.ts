// one wording for JSON-schema errors, shared by config loading (file:line:col: field: what) and the
// admin API (body.field: what), so a person reads the same sentence whichever door they used
import type { ErrorObject } from 'ajv'

export interface SchemaProblem {
  /** the offending field as path segments (a missing or unknown key included) */
  readonly path: readonly (string | number)[]
  /** the field as people write it: rollouts.checkout.percent, routes[0].name */
  readonly field: string
  readonly message: string
  /** the problem is the key itself (an unknown key), not its value */
  readonly onKey: boolean
}

export function pathSegments (instancePath: string): (string | number)[] {
  if (instancePath === '') return []
  return instancePath.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).map((p) => (/^\d+$/.test(p) ? Number(p) : p))
}

export function fieldOf (path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(root)'
}

export function describeSchemaError (e: ErrorObject): SchemaProblem {
  let path = pathSegments(e.instancePath)
  let message: string
  let onKey = false
  switch (e.keyword) {
    case 'additionalProperties': {
      path = [...path, (e.params as { additionalProperty: string }).additionalProperty]
      onKey = true
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {})
      message = `unknown key${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`
      break
    }
    case 'required':
      path = [...path, (e.params as { missingProperty: string }).missingProperty]
      message = 'is required'
      break
    case 'anyOf':
      message = 'must be a duration: milliseconds, or a number with ms, s, m, h or d'
      break
    case 'multipleOf':
    case 'twoDecimals':
      message = 'must have at most two decimals'
      break
    case 'enum':
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`
      break
    default:
      message = e.message ?? e.keyword
  }
  return { path, field: fieldOf(path), message, onKey }
}
