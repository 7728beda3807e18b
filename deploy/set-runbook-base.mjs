#!/usr/bin/env node
// the runbook links have one base, set in one place: the `# runbook-base:` line of
// prometheus/alerts.yml. Prometheus cannot template a rule file, so this rewrites the old base to
// the new one wherever a link uses it: the alerts, their unit tests and the dashboard's link.
//   node deploy/set-runbook-base.mjs https://wiki.example.com/dualtrack/runbooks/
// a link is the base followed by the README heading's anchor (runbook-new-error-rate, ...);
// test/deploy/promtool.test.ts checks that every link uses the base, and that this script works
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BASE_LINE = /^# runbook-base: (\S+)$/m
export const FILES = ['prometheus/alerts.yml', 'prometheus/alerts.test.yml', 'grafana/dualtrack.json']

/** the base alerts.yml declares */
export function runbookBase (alertsText) {
  const m = BASE_LINE.exec(alertsText)
  if (m === null) throw new Error('prometheus/alerts.yml has no "# runbook-base: URL" line')
  return m[1]
}

/** rewrite the base in the files under `dir` (deploy/); returns how many places changed */
export function setRunbookBase (dir, next) {
  if (!/^https?:\/\/[^\s"'\\]+$/.test(next)) throw new Error(`not an http(s) URL: ${next}`)
  const prev = runbookBase(readFileSync(join(dir, FILES[0]), 'utf8'))
  let changed = 0
  for (const f of FILES) {
    const file = join(dir, f)
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replaceAll(prev, () => { changed++; return next }))
  }
  return changed
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [next, dir = dirname(fileURLToPath(import.meta.url))] = process.argv.slice(2)
  if (next === undefined) {
    console.error('usage: node deploy/set-runbook-base.mjs BASE_URL [DEPLOY_FOLDER]')
    process.exit(2)
  }
  try {
    console.log(`${setRunbookBase(dir, next)} runbook links now start with ${next}`)
  } catch (err) {
    console.error(err.message)
    process.exit(1)
  }
}
