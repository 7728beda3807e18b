// every verb of the CLI: its happy path, usage errors (exit 2) and per-command help, refused calls
// (exit 1) with one-line messages, a 401 that names DUALTRACK_TOKEN
import t from 'tap'
import { request } from 'undici'
import { OPERATOR, VIEWER, call } from '../helpers/admin.js'
import { cli, cliGateway as gateway } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

t.test('every verb: happy path, usage errors, 401 naming DUALTRACK_TOKEN', async (t) => {
  const gw = await gateway(t)
  const a = gw.adminUrl
  for (let i = 0; i < 10; i++) {
    const res = await request(`${gw.url}/api/catalog/${i}`, { headers: { 'x-user-id': `u${i}` } })
    await res.body.dump()
  }
  await waitFor(async () => {
    const s = (await call(a, 'GET', '/admin/shadow/summary', VIEWER)).body as { routes: Record<string, { mismatch: number }> }
    return (s.routes.catalog?.mismatch ?? 0) > 0
  }, { what: 'a catalog mismatch' })

  const ok: [string[], RegExp][] = [
    [['status'], /^state version \d+\nrollout\s+percent[\s\S]*\n\nlast minute\nrollout\s+split on new\s+legacy req err p99\s+new req err p99\s+verdict\ncheckout/],
    [['status', 'checkout'], /checkout\s+50%/],
    [['status', '--rollout', 'checkout'], /checkout\s+50%/],
    [['explain', '--key', 'qa-user-1'], /^rollout checkout: new \(reason force, bucket -1\)\n$/],
    [['explain', 'checkout', '--key', 'vip-42'], /^rollout checkout: legacy \(reason force, bucket -1\)\n$/],
    [['audit', '--limit', '1'], /^at\s+actor\s+source\s+action/],
    [['audit', 'checkout'], /init\s+checkout/],
    [['mismatches'], /^route\s+match\s+mismatch\s+error\s+dropped\s+mismatch rate\s+top fields\ncatalog\s+\d+\s+[1-9]\d*\s+0\s+0\s+100%\s+\$\.system x\d+[\s\S]*latest samples \(redacted\)\nat\s+route\s+request[\s\S]*GET \/api\/catalog\//],
    [['mismatches', '--route', 'catalog', '--limit', '1'], /catalog\s+GET \/api\/catalog\/\d\s+\$\.system/],
    [['mismatches', '--route', 'orders'], /^route orders has no shadow traffic\n\nlatest samples \(redacted\)\nno mismatch sample/],
    [['plan', 'status'], /^rollout\s+step\s+state\s+steps\s+hold left\s+note\ncheckout\s+-\s+no plan/],
    [['reload'], /^config reloaded\n$/],
    [['rollback', '--reason', 'all of them'], /hard by oncall: all of them/],
    [['resume', '--reason', 'fixed'], /checkout\s+50%\s+\S+ \S+\s+-/]
  ]
  // the reads side by side, then the changes in order
  const changes = ok.filter(([args]) => ['reload', 'rollback', 'resume'].includes(args[0] as string))
  const reads = ok.filter((x) => !changes.includes(x))
  const readAnswers = await Promise.all(reads.map(([args]) => cli(a, OPERATOR, ...args)))
  const okAnswers = new Map(reads.map((x, i) => [x, readAnswers[i] as Awaited<ReturnType<typeof cli>>]))
  for (const x of changes) okAnswers.set(x, await cli(a, OPERATOR, ...x[0]))
  for (const x of ok) {
    const [args, re] = x
    const r = okAnswers.get(x) as Awaited<ReturnType<typeof cli>>
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    t.match(r.stdout, re, args.join(' '))
    t.equal(r.stderr, '', `${args.join(' ')} writes nothing to stderr`)
  }
  const json = await cli(a, VIEWER, 'status', '--json')
  t.match(JSON.parse(json.stdout), { rollouts: { checkout: { percent: 50 } } })

  const usage: [string[], string][] = [
    [['set'], "dualtrack set: missing required argument 'args'"],
    [['set', 'a', 'b', 'c'], 'dualtrack set: set takes [rollout] <percent>, got a b c'],
    [['rollback'], "dualtrack rollback: required option '--reason <text>' not specified"],
    [['rollback', '--reason', 'x', '--mode', 'soft'], 'dualtrack rollback: --mode: hard or drain, got soft'],
    [['explain'], 'dualtrack explain: --key K, or a request with --header, --cookie, --query or --client-ip'],
    [['explain', '--header', 'x-user-id'], 'dualtrack explain: --header takes NAME=VALUE, got x-user-id'],
    [['set', 'checkout', '10', '--region', 'r', '--segment', 's'], 'dualtrack set: --region or --segment, not both'],
    [['audit', '--limit', 'many'], 'dualtrack audit: --limit: a number from 1 to 1000, got many'],
    [['status', 'a', 'b'], "dualtrack status: too many arguments for 'status'"],
    [['status', '--timeout', 'soon'], 'dualtrack status: --timeout: not a duration: soon'],
    [['status', '--bogus'], "dualtrack status: unknown option '--bogus'"],
    [['plan', 'sideways'], 'dualtrack plan: plan status|pause|resume [rollout], got: plan sideways'],
    [['mismatches', 'orders'], "dualtrack mismatches: too many arguments for 'mismatches'"],
    [['frobnicate'], "dualtrack frobnicate: unknown command 'frobnicate'"]
  ]
  // refused before any call: run side by side
  const answers = await Promise.all(usage.map(([args]) => cli(a, OPERATOR, ...args)))
  for (const [i, [args, msg]] of usage.entries()) {
    const r = answers[i] as Awaited<ReturnType<typeof cli>>
    t.equal(r.code, 2, `${args.join(' ')} is a usage error`)
    t.match(r.stderr, msg)
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  }
  const verbs = ['status', 'set', 'rollback', 'resume', 'explain', 'audit', 'mismatches', 'plan', 'undo', 'guard', 'reload', 'start', 'demo']
  const helps = await Promise.all(verbs.map((verb) => cli(a, OPERATOR, verb, '--help')))
  for (const [i, verb] of verbs.entries()) {
    const r = helps[i] as Awaited<ReturnType<typeof cli>>
    t.equal(r.code, 0, `${verb} --help`)
    t.match(r.stdout, new RegExp(`^Usage: dualtrack ${verb} `), `${verb} has its own help`)
  }
  const none = await cli(a, undefined, 'status')
  t.equal(none.code, 1)
  t.equal(none.stderr, 'dualtrack status: 401 DUALTRACK_ERR_UNAUTHORIZED missing or unknown bearer token (set DUALTRACK_TOKEN to an admin token)\n')
  const wrong = await cli(a, 'wrong-token', 'audit')
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, 'DUALTRACK_TOKEN holds a token this gateway does not know')
  // a gateway without the guard's view (issue 14) says so on one line
  const guard = await cli(a, VIEWER, 'guard')
  if (guard.code === 0) t.match(guard.stdout, /^rollout\s+verdict\s+scope/)
  else t.equal(guard.stderr, 'dualtrack guard: this gateway has no guard view (GET /admin/guard answered 404)\n')
  const down = await cli('http://127.0.0.1:1', OPERATOR, 'status')
  t.equal(down.code, 1)
  t.match(down.stderr, /^dualtrack status: cannot reach the admin API at http:\/\/127\.0\.0\.1:1: .* \(--admin URL or DUALTRACK_ADMIN_URL\)\n$/)
})
