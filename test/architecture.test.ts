// ARCHITECTURE.md's "Arrows that must never exist", checked against the imports in src/: the doc is
// the rule, so a row added there is enforced here (ESLint enforces the same at edit time)
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'

const SRC = 'src'

function files (dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** the runtime imports of a file (type-only imports create no arrow) as repo paths or package names */
function importsOf (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  const re = /^\s*import\s+(type\s+)?[^'"]*?from\s+'([^']+)'|^\s*export\s+[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)/gm
  for (const m of text.matchAll(re)) {
    if (m[1] !== undefined) continue
    const spec = (m[2] ?? m[3] ?? m[4]) as string
    out.push(spec.startsWith('.') ? normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts') : spec)
  }
  return out
}

const nevers = readFileSync('ARCHITECTURE.md', 'utf8').split('\n')
  .filter((l) => /^\| `src\//.test(l))
  .map((l) => {
    const [from, never] = l.split('|').slice(1, 3).map((c) => c.trim()) as [string, string]
    return { from: from.replace(/`/g, ''), never: [...never.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string), anySrc: /any `src\/` module/.test(never) }
  })

t.test('the architecture doc lists its nevers', async (t) => {
  t.ok(nevers.length >= 4, 'rows read from ARCHITECTURE.md')
})

const all = files(SRC)

for (const rule of nevers) {
  t.test(`${rule.from} never imports ${rule.anySrc ? 'any src/ module' : rule.never.join(', ')}`, async (t) => {
    const scope = all.filter((f) => f === rule.from || f.startsWith(rule.from))
    t.ok(scope.length > 0, `${rule.from} has files`)
    const bad: string[] = []
    for (const f of scope) {
      for (const imp of importsOf(f)) {
        const forbidden = rule.anySrc
          ? imp.startsWith(SRC + '/')
          : rule.never.some((n) => n.startsWith('src/') ? imp.startsWith(n) : imp === n)
        if (forbidden) bad.push(`${f} imports ${imp}`)
      }
    }
    t.same(bad, [], `no ${rule.from} file crosses the line`)
  })
}

t.test('every folder is entered through its index.ts', async (t) => {
  let checked = 0
  const bad: string[] = []
  for (const f of all) {
    const folder = relative(SRC, f).split('/')[0] as string
    for (const imp of importsOf(f)) {
      if (!imp.startsWith(SRC + '/')) continue
      const parts = relative(SRC, imp).split('/')
      if (parts.length < 2 || parts[0] === folder) continue
      // the composition root's own pieces
      if (f === 'src/app.ts' && parts[0] === 'app') continue
      checked++
      if (parts.slice(1).join('/') !== 'index.ts') bad.push(`${f} imports ${imp}`)
    }
  }
  t.ok(checked > 20, `${checked} imports between folders checked`)
  t.same(bad, [], 'no import reaches around a door')
})
