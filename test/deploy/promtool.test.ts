// the Prometheus files under deploy/prometheus, checked by the real promtool:
// config syntax, rule syntax, the alert unit tests, and that no alert lacks a runbook or a test
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CONFIG = 'deploy/prometheus/prometheus.yml'
const RULES = 'deploy/prometheus/alerts.yml'
const RULE_TESTS = 'deploy/prometheus/alerts.test.yml'
const INSTALL_HINT = 'promtool not found: install Debian\'s prometheus package (apt-get install -y prometheus), which ships /usr/bin/promtool'

// the README headings the runbook links point at ("Runbook: new error rate" -> #runbook-new-error-rate)
const RUNBOOK_BASE = 'https://github.com/dualtrack/dualtrack/blob/main/README.md#'
const RUNBOOK_ANCHORS = [
  'runbook-new-error-rate',
  'runbook-new-latency',
  'runbook-shadow-mismatches',
  'runbook-sample-ratio-drift',
  'runbook-rollback-active',
  'runbook-state-store-down',
  'runbook-replicas-disagree',
  'runbook-guard-breach'
]
const ALERTS = [
  'DualtrackNewErrorRateAboveLegacy',
  'DualtrackNewLatencyAboveLegacy',
  'DualtrackShadowMismatchRate',
  'DualtrackSampleRatioDrift',
  'DualtrackRollbackActive',
  'DualtrackStateStoreDown',
  'DualtrackReplicasDisagreeOnStateVersion',
  'DualtrackGuardBreach'
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
    t.ok(url.startsWith(RUNBOOK_BASE), `${a.alert}: runbook_url points at the README (${url})`)
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
