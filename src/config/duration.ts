// "500ms", "60s", "10m", "2h", "30d" or a number of milliseconds
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function parseDuration (v: number | string): number {
  if (typeof v === 'number') return v
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(v)
  if (!m) throw new TypeError(`not a duration: ${v}`)
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number)
}
