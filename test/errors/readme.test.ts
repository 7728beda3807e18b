import t from 'tap'
import { readFileSync } from 'node:fs'
import * as errors from '../../src/errors.js'

t.test('every error code is in the README errors table with its status', async (t) => {
  const readme = readFileSync('README.md', 'utf8')
  const codes = Object.keys(errors).filter((k) => k.startsWith('DUALTRACK_ERR_'))
  t.ok(codes.length >= 10)
  for (const code of codes) {
    const E = (errors as unknown as Record<string, new (...a: unknown[]) => { statusCode: number, code: string }>)[code] as new (...a: unknown[]) => { statusCode: number, code: string }
    const e = new E('x', 'y')
    t.equal(e.code, code)
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${code}\` |`))
    t.ok(row, `${code} has a row`)
    const status = row?.split('|')[2]?.trim()
    if (code.startsWith('DUALTRACK_ERR_CONFIG_')) t.equal(status, '–', `${code}: config errors stop the process`)
    else t.equal(status, String(e.statusCode), `${code}: the README says ${status}`)
  }
  const listed = readme.match(/^\| `(DUALTRACK_ERR_[A-Z_]+)` \|/gm) ?? []
  t.equal(listed.length, codes.length, 'no README row without a code')
})
