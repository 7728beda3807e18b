// percent has two decimals (0.01% resolution, DESIGN.md §1): 5.55 yes, 5.555 no, and 5.000000000000001
// no either. JSON Schema's multipleOf needs a tolerance for binary floats (5.55 / 0.01 is
// 554.9999999999999), and any tolerance lets near-misses through; this test has none: a number
// passes when it is exactly the double nearest some k / 100
export function hasTwoDecimals (n: number): boolean {
  return Number.isFinite(n) && Math.round(n * 100) / 100 === n
}

/** the ajv keyword `twoDecimals: true`, for the YAML schema */
export const TWO_DECIMALS_KEYWORD = {
  keyword: 'twoDecimals',
  type: 'number',
  schemaType: 'boolean',
  validate: (schema: boolean, data: number) => !schema || hasTwoDecimals(data),
  errors: false
} as const
