// the Prometheus files under deploy/prometheus, checked by the real promtool:
// config syntax, rule syntax, the alert unit tests, and that no alert lacks a runbook or a test;
// the runbook links share the one base alerts.yml declares, and set-runbook-base.mjs changes it
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { tempDir } from '../helpers/gateway.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CONFIG = 'deploy/prometheus/prometheus.yml'
const RULES = 'deploy/prometheus/alerts.yml'
const RULE_TESTS = 'deploy/prometheus/alerts.test.yml'
const INSTALL_HINT = 'promtool not found: install Debian\'s prometheus package (apt-get install -y prometheus), which ships /usr/bin/promtool'

// the one base of the runbook links: the `# runbook-base:` line of alerts.yml
const RUNBOOK_BASE = /^# runbook-base: (\S+)$/m.exec(readFileSync(join(ROOT, RULES), 'utf8'))?.[1] ?? '(no runbook-base line)'
// the README headings the links point at ("### Runbook: new error rate" -> runbook-new-error-rate)
const RUNBOOK_ANCHORS = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/^### (Runbook: .+)$/gm)]
  .map((m) => (m[1] ?? '').toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'))
const ALERTS = [
  'DualtrackNewErrorRateAboveLegacy',
  'DualtrackNewLatencyAboveLegacy',
  'DualtrackShadowMismatchRate',
  'DualtrackSampleRatioDrift',
  'DualtrackRollbackActive',
  'DualtrackStateStoreDown',
  'DualtrackReplicasDisagreeOnStateVersion',
  'DualtrackGuardBreach',
  'DualtrackConfigReloadRefused',
  'DualtrackAffinityRecordErrors',
  'DualtrackAffinityRecordsDropped',
  'DualtrackShadowDroppedOrFailing',
  'DualtrackTargetDown'
]

interface Rule { alert?: string, record?: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface RuleFile { groups: { name: string, rules: Rule[] }[] }
interface RuleTestFile {
  rule_files: string[]
  tests: { name?: string, alert_rule_test?: { alertname: string, eval_time: string, exp_alerts?: unknown[] | null }[] }[]
}

function promtool (...args: string[]): { status: number | null, out: string, missing: boolean } {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, missing }
}

function run (t: Test, args: string[], success: RegExp): void {
  const r = promtool(...args)
  if (r.missing) {
    t.fail(INSTALL_HINT)
    return
  }
  t.equal(r.status, 0, `promtool ${args.join(' ')} exits 0\n${r.out}`)
  t.match(r.out, success, 'promtool says SUCCESS')
  t.notMatch(r.out, /FAILED/, 'and nothing FAILED')
}

const rules = parse(readFileSync(new URL(`../../${RULES}`, import.meta.url), 'utf8')) as RuleFile
const alerts = rules.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => typeof r.alert === 'string')
const ruleTests = parse(readFileSync(new URL(`../../${RULE_TESTS}`, import.meta.url), 'utf8')) as RuleTestFile

t.test('promtool is installed', async (t) => {
  const r = promtool('--version')
  if (r.missing) {
    t.fail(INSTALL_HINT)
    return
  }
  t.match(r.out, /promtool, version \d+\.\d+/, 'promtool is on PATH')
})

t.test('promtool check config', async (t) => {
  run(t, ['check', 'config', CONFIG], /SUCCESS: deploy\/prometheus\/prometheus\.yml is valid prometheus config file syntax/)
  run(t, ['check', 'config', CONFIG], /SUCCESS: 1 rule files found/)
})

t.test('promtool check rules', async (t) => {
  run(t, ['check', 'rules', RULES], new RegExp(`SUCCESS: ${rules.groups.flatMap((g) => g.rules).length} rules found`))
})

t.test('promtool test rules', async (t) => {
  run(t, ['test', 'rules', RULE_TESTS], /SUCCESS/)
})

t.test('the alerts are the ones the README documents', async (t) => {
  t.same(alerts.map((a) => a.alert).sort(), [...ALERTS].sort())
  t.equal(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'no alert name twice')
})

t.test('every alert has a summary, a description, a severity and a runbook link', async (t) => {
  for (const a of alerts) {
    t.type(a.annotations?.summary, 'string', `${a.alert}: summary`)
    t.type(a.annotations?.description, 'string', `${a.alert}: description`)
    t.match(a.labels?.severity, /^(critical|warning|info)$/, `${a.alert}: severity`)
    const url = a.annotations?.runbook_url ?? ''
    t.ok(url.startsWith(RUNBOOK_BASE), `${a.alert}: runbook_url starts with the runbook-base line (${url})`)
    t.ok(RUNBOOK_ANCHORS.includes(url.slice(RUNBOOK_BASE.length)), `${a.alert}: runbook anchor is one of the README's runbook headings`)
  }
  // every runbook section is linked from some alert
  t.same([...new Set(alerts.map((a) => (a.annotations?.runbook_url ?? '').slice(RUNBOOK_BASE.length)))].sort(), [...RUNBOOK_ANCHORS].sort())
})

t.test('every alert has a unit test where it fires and one where it stays silent', async (t) => {
  t.same(ruleTests.rule_files, ['alerts.yml'], 'the unit tests load alerts.yml')
  const cases = ruleTests.tests.flatMap((c) => c.alert_rule_test ?? [])
  for (const name of ALERTS) {
    const mine = cases.filter((c) => c.alertname === name)
    t.ok(mine.some((c) => Array.isArray(c.exp_alerts) && c.exp_alerts.length > 0), `${name} fires in some case`)
    t.ok(mine.some((c) => c.exp_alerts == null || c.exp_alerts.length === 0), `${name} stays silent in some case`)
  }
  for (const c of cases) t.ok(ALERTS.includes(c.alertname), `test case names a known alert (${c.alertname})`)
})

t.test('the runbook base is set in one place: every link uses it, and set-runbook-base.mjs moves them all', async (t) => {
  t.equal(RUNBOOK_BASE, 'https://github.com/dualtrack/dualtrack/blob/main/README.md#', 'the README, until someone sets their own')
  const links = (text: string) => [...text.matchAll(/https?:\/\/[^\s"']*(runbook-[a-z0-9-]+|dashboard-and-alerts)/g)].map((m) => m[0])
  const files = ['prometheus/alerts.yml', 'prometheus/alerts.test.yml', 'grafana/dualtrack.json']
  for (const f of files) {
    const found = links(readFileSync(join(ROOT, 'deploy', f), 'utf8'))
    t.ok(found.length > 0, `deploy/${f} has runbook links`)
    t.same(found.filter((l) => !l.startsWith(RUNBOOK_BASE)), [], `every link in deploy/${f} starts with the base`)
  }
  // the tests' expected annotations are the alerts' own links
  const expected = ruleTests.tests.flatMap((c) => c.alert_rule_test ?? []).flatMap((c) => (c.exp_alerts ?? []) as { exp_annotations?: { runbook_url?: string } }[])
    .map((a) => a.exp_annotations?.runbook_url).filter((u): u is string => u !== undefined)
  t.ok(expected.length >= ALERTS.length, `${expected.length} expected runbook links in the unit tests`)

  // on a copy of deploy/: the script moves every link, and promtool still agrees with the result
  const copy = join(tempDir('dualtrack-runbooks-'), 'deploy')
  mkdirSync(copy)
  cpSync(join(ROOT, 'deploy/prometheus'), join(copy, 'prometheus'), { recursive: true })
  cpSync(join(ROOT, 'deploy/grafana'), join(copy, 'grafana'), { recursive: true })
  const next = 'https://wiki.example.com/ops/dualtrack/'
  const r = spawnSync(process.execPath, [join(ROOT, 'deploy/set-runbook-base.mjs'), next, copy], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^\\d+ runbook links now start with ${next}`))
  for (const f of files) {
    const text = readFileSync(join(copy, f), 'utf8')
    t.notOk(text.includes(RUNBOOK_BASE), `no old link left in ${f}`)
    t.ok(links(text).length > 0 && links(text).every((l) => l.startsWith(next)), `every link in ${f} starts with ${next}`)
  }
  t.match(readFileSync(join(copy, 'prometheus/alerts.yml'), 'utf8'), `# runbook-base: ${next}\n`)
  const rerun = promtool('test', 'rules', join(copy, 'prometheus/alerts.test.yml'))
  if (rerun.missing) t.fail(INSTALL_HINT)
  else t.equal(rerun.status, 0, `promtool test rules on the moved links\n${rerun.out}`)
  const usage = spawnSync(process.execPath, [join(ROOT, 'deploy/set-runbook-base.mjs')], { encoding: 'utf8' })
  t.equal(usage.status, 2, 'no URL: usage, exit 2')
  const bad = spawnSync(process.execPath, [join(ROOT, 'deploy/set-runbook-base.mjs'), 'wiki page', copy], { encoding: 'utf8' })
  t.equal(bad.status, 1)
  t.match(bad.stderr, /not an http\(s\) URL: wiki page/)
})

