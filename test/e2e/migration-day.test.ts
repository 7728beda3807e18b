// issue 10: the migration-day scenario (bench/migration-day.js) at a size that fits the suite: two
// gateway processes on a real redis-server with AOF, stateful sample systems, a ramp 5 -> 100 with
// replica B killed, redis-server killed for 3 s, and new failing payments until the guard rolls back
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'

const CHECKOUTS = 1500

t.test(`migration day under three faults, ${CHECKOUTS} checkouts: no split, no duplicate, no stranded payment`, async (t) => {
  t.setTimeout(400_000)
  const child = spawn(process.execPath, ['bench/migration-day.js'], { env: { ...process.env, MIGRATION_CHECKOUTS: String(CHECKOUTS), MIGRATION_CONCURRENCY: '16' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGINT') })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  t.comment(err.trim().split('\n').slice(-3).join('\n'))
  const report = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown> & { guard: { mode?: string }, lost: { total: number }, events: { what: string }[] }
  t.ok((report.checkouts as number) >= CHECKOUTS, `${String(report.checkouts)} checkouts`)
  t.same({ splits: report.splits, stranded: report.stranded, duplicates: report.duplicates }, { splits: 0, stranded: 0, duplicates: 0 }, 'no payment or callback reached a system without its order; no write twice')
  t.match(report.guard, { mode: 'drain', by: 'guard' }, 'the guard rolled back, in drain')
  const seen = report.events.map((e) => e.what)
  for (const fault of ['replica B killed (SIGKILL)', 'replica B restarted and ready', 'redis-server killed (SIGKILL)', 'redis-server restarted with its append-only file', 'new fails 30% of payments']) t.ok(seen.includes(fault), fault)
  t.comment(`lost (in flight on the killed replica): ${report.lost.total}`)
  t.equal(code, 0, `the script exits 0 ${code !== 0 ? err.slice(-2000) : ''}`)
})
