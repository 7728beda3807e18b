// the console's Undo in a real headless Chromium: the same plan as `dualtrack undo` (console/undo.js,
// one file for both), shown before it is made; a segment change comes back, a refusal says why and
// cannot be confirmed, a viewer's button is disabled with the reason
import t from 'tap'
import type { Page } from 'playwright-core'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml, type TestGateway } from '../helpers/gateway.js'
import { OPERATOR, VIEWER, TOKENS_YAML, call } from '../helpers/admin.js'
import { startBrowser } from '../helpers/browser.js'
import { waitFor } from '../helpers/wait.js'

const SEGMENTS = `    attributes:
      registeredAt: [header:x-user-registered-at]
    segments:
      - name: new-signups
        when: [{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" }]
        percent: 10
`

async function signIn (page: Page, gw: TestGateway, token: string) {
  await page.goto(gw.adminUrl + '/')
  await page.fill('[data-testid=token]', token)
  await page.click('[data-testid=sign-in]')
  await page.waitForSelector('[data-testid=undo-checkout]', { timeout: 30_000 })
}

const segmentsOf = async (gw: TestGateway) => ((await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)).body.rollouts as Record<string, { segments?: Record<string, number> }>).checkout?.segments

t.test('Undo: shows the change and its calls, reverts a segment change, refuses the first state', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, rollout: SEGMENTS }), t)
  const browser = await startBrowser(t)
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))

  await t.test('a viewer sees Undo disabled, saying why', async (t) => {
    await signIn(page, gw, VIEWER)
    const b = page.locator('[data-testid=undo-checkout]')
    t.equal(await b.isDisabled(), true)
    t.match(await b.getAttribute('title'), /viewer\): only an operator token can change the rollout/)
    await page.evaluate('sessionStorage.clear()')
  })

  await t.test('the first state cannot be undone: the dialog says why and Undo stays disabled', async (t) => {
    await signIn(page, gw, OPERATOR)
    await page.click('[data-testid=undo-checkout]')
    await page.waitForSelector('[data-testid=undo-refused]', { timeout: 20_000 })
    t.equal(await page.locator('[data-testid=undo-refused]').textContent(), 'init is checkout\'s first state, from the YAML: there is nothing before it')
    t.equal(await page.locator('[data-testid=confirm]').isDisabled(), true)
    await page.click('[data-testid=cancel]')
  })

  await t.test('a segment change comes back, through the admin API, in the audit', async (t) => {
    const put = await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { segments: { 'new-signups': 40 }, reason: 'signups look fine' })
    t.equal(put.status, 200)
    await page.click('[data-testid=undo-checkout]')
    await page.waitForSelector('[data-testid=undo-summary]', { timeout: 20_000 })
    t.match(await page.locator('[data-testid=undo-summary]').textContent(), /^set-segments by oncall .*: \{"new-signups":40\} → \{"new-signups":10\}$/)
    await page.click('[data-testid=confirm]')
    await waitFor(async () => (await segmentsOf(gw))?.['new-signups'] === 10, { what: 'new-signups back at 10%', timeoutMs: 20_000 })
    const last = ((await call(gw.adminUrl, 'GET', '/admin/audit?limit=1', VIEWER)).body.entries as { actor: string, action: string, reason: string }[])[0]
    t.match(last, { actor: 'oncall', action: 'set-segments', reason: /^undo set-segments by oncall at / })
    await page.locator('[data-testid=rollout-checkout]', { hasText: 'new-signups 10%' }).waitFor({ timeout: 20_000 })
    t.equal(await page.locator('[data-testid=error]:not([hidden])').count(), 0, 'no error shown')
  })
  t.same(errors, [], 'no script error on the page')
})
