// the console in a real headless Chromium against a real gateway: sign-in, roles, actions that
// land in the admin state and the audit, charts after traffic, explain, and no foreign request
import t from 'tap'
import { request } from 'undici'
import type { Page } from 'playwright-core'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml, type TestGateway } from '../helpers/gateway.js'
import { OPERATOR, VIEWER, TOKENS_YAML, call } from '../helpers/admin.js'
import { startBrowser } from '../helpers/browser.js'
import { waitFor } from '../helpers/wait.js'

const SHADOW_ROUTE = `
  - name: catalog
    match: { prefix: /api/catalog }
    rollout: checkout
    shadow: { percent: 100, methods: [GET] }
`

async function setup (t: { teardown(fn: () => unknown): void }) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, routes: SHADOW_ROUTE }), t)
  const browser = await startBrowser(t)
  return { gw, browser }
}

/** a page that records every request it makes and refuses any that leaves the admin origin */
async function openPage (browser: Awaited<ReturnType<typeof startBrowser>>, gw: TestGateway) {
  const page = await browser.newPage()
  const origin = new URL(gw.adminUrl).origin
  const seen: string[] = []
  const errors: string[] = []
  page.on('request', (r) => seen.push(r.url()))
  page.on('pageerror', (e) => errors.push(e.message))
  await page.route('**/*', (route) => (new URL(route.request().url()).origin === origin ? route.continue() : route.abort()))
  return { page, seen, errors, origin }
}

async function signIn (page: Page, gw: TestGateway, token: string) {
  await page.goto(gw.adminUrl + '/')
  await page.fill('[data-testid=token]', token)
  await page.click('[data-testid=sign-in]')
}

const text = (page: Page, testid: string) => page.locator(`[data-testid=${testid}]`).first().textContent()
/** wait until the element's text matches */
const shows = (page: Page, testid: string, re: RegExp, what: string) =>
  waitFor(async () => re.test(await text(page, testid) ?? ''), { what: `${testid} showing ${re} (${what})`, timeoutMs: 20_000 })

t.test('the page is served with a CSP that keeps it to its own origin', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  const res = await request(gw.adminUrl + '/')
  const html = await res.body.text()
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.headers['content-security-policy'], /^default-src 'self';/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.notMatch(html, /https?:\/\//, 'no absolute URL in the page')
  t.notMatch(html, /<script>|<style>| style=/, 'no inline script or style')
  for (const path of ['/console/app.js', '/console/vendor/preact-htm.js', '/console/vendor/uplot.js', '/console/style.css']) {
    const r = await request(gw.adminUrl + path)
    await r.body.dump()
    t.equal(r.statusCode, 200, path)
    const again = await request(gw.adminUrl + path, { headers: { 'if-none-match': String(r.headers.etag) } })
    await again.body.dump()
    t.equal(again.statusCode, 304, `${path} revalidates`)
  }
  t.same((await call(gw.adminUrl, 'GET', '/admin/whoami', VIEWER)).body, { name: 'grafana', role: 'viewer' })
  t.same((await call(gw.adminUrl, 'GET', '/admin/whoami')).body, { error: 'DUALTRACK_ERR_UNAUTHORIZED', message: 'missing or unknown bearer token' })
})

t.test('a wrong token shows the API\'s error and stays signed out', async (t) => {
  const { gw, browser } = await setup(t)
  const { page, errors } = await openPage(browser, gw)
  await signIn(page, gw, 'not-a-token')
  await page.waitForSelector('[data-testid=error]:not([hidden])', { timeout: 20_000 })
  t.equal(await text(page, 'error'), '401 DUALTRACK_ERR_UNAUTHORIZED: missing or unknown bearer token')
  t.equal(await page.locator('[data-testid=token]').count(), 1, 'the sign-in form is still there')
  t.equal(await page.evaluate("sessionStorage.getItem('dualtrack.token')"), null, 'a refused token is not kept')
  t.equal(await page.evaluate('document.cookie'), '', 'no cookie')
  t.same(errors, [])
})

t.test('a viewer sees everything and every action is disabled, saying why', async (t) => {
  const { gw, browser } = await setup(t)
  const { page, seen, origin, errors } = await openPage(browser, gw)
  await signIn(page, gw, VIEWER)
  await page.waitForSelector('[data-testid=percent-checkout]', { timeout: 20_000 })
  t.equal(await text(page, 'percent-checkout'), '50%')
  t.match(await text(page, 'rollout-checkout'), /guangdong 100%/)
  for (const id of ['rollback', 'resume', 'apply-checkout', 'set-percent-checkout']) {
    const el = page.locator(`[data-testid=${id}]`)
    t.ok(await el.isDisabled(), `${id} is disabled`)
    t.match(await el.getAttribute('title'), /signed in as grafana \(viewer\): only an operator token can change/, `${id} says why`)
  }
  t.equal(await page.evaluate("sessionStorage.getItem('dualtrack.token')"), VIEWER, 'the token lives in sessionStorage')
  t.equal(await page.evaluate('document.cookie'), '')
  t.ok(seen.length > 5)
  t.same(seen.filter((u) => new URL(u).origin !== origin), [], 'no request leaves the admin origin')
  t.same(errors, [])
})

t.test('an operator sets a percent, rolls back with a reason and resumes: state and audit show each', async (t) => {
  const { gw, browser } = await setup(t)
  const { page, seen, origin, errors } = await openPage(browser, gw)
  await signIn(page, gw, OPERATOR)
  await page.waitForSelector('[data-testid=percent-checkout]', { timeout: 20_000 })

  // set percent: the confirm shows from -> to
  await page.fill('[data-testid=set-percent-checkout]', '12.5')
  await page.click('[data-testid=apply-checkout]')
  t.equal(await text(page, 'from-to'), '50% → 12.5%')
  await page.click('[data-testid=confirm]')
  await shows(page, 'percent-checkout', /^12\.5%$/, 'the new percent')
  const st = await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)
  t.match(st.body, { rollouts: { checkout: { percent: 12.5, updatedBy: 'oncall', source: 'admin' } } })
  await shows(page, 'audit', /set-percent/, 'the change in the audit')

  // roll back: the reason is required before confirm does anything
  await page.click('[data-testid=rollback]')
  t.ok(await page.locator('[data-testid=confirm]').isDisabled(), 'no reason, no rollback')
  await page.selectOption('[data-testid=mode]', 'drain')
  await page.fill('[data-testid=reason]', 'new answers 500 on payments')
  await page.click('[data-testid=confirm]')
  await shows(page, 'rollout-checkout', /drain by oncall/, 'the rollback on the card')
  t.match((await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)).body, { rollouts: { checkout: { rollback: { mode: 'drain', reason: 'new answers 500 on payments', by: 'oncall' } } } })
  await shows(page, 'audit', /new answers 500 on payments/, 'the rollback reason in the audit')

  // resume
  await page.click('[data-testid=resume]')
  await waitFor(async () => ((await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)).body.rollouts as Record<string, { rollback: unknown }>).checkout?.rollback === null, { what: 'the rollback lifted by the console' })
  await waitFor(async () => /resume/.test(await page.locator('[data-testid=audit] tbody tr').first().textContent() ?? ''), { what: 'resume on top of the audit', timeoutMs: 20_000 })
  const audit = (await call(gw.adminUrl, 'GET', '/admin/audit?limit=3', VIEWER)).body.entries as { action: string, actor: string, reason: string | null, before: unknown, after: unknown }[]
  t.match(audit, [
    { action: 'resume', actor: 'oncall', before: { mode: 'drain' }, after: null },
    { action: 'rollback', actor: 'oncall', reason: 'new answers 500 on payments', after: { mode: 'drain' } },
    { action: 'set-percent', actor: 'oncall', before: 50, after: 12.5 }
  ])

  // an API refusal shows the API's message
  await page.fill('[data-testid=set-percent-checkout]', '5.555')
  await page.click('[data-testid=apply-checkout]')
  await page.click('[data-testid=confirm]')
  await page.waitForSelector('[data-testid=error]:not([hidden])', { timeout: 20_000 })
  t.equal(await text(page, 'error'), 'set checkout: 400 DUALTRACK_ERR_BAD_REQUEST: body.percent: must have at most two decimals')

  t.same(seen.filter((u) => new URL(u).origin !== origin), [], 'no request leaves the admin origin')
  t.same(errors, [])
})

t.test('charts fill after traffic; explain agrees with the API; mismatches show', async (t) => {
  const { gw, browser } = await setup(t)
  const { page, seen, origin, errors } = await openPage(browser, gw)
  await signIn(page, gw, VIEWER)
  await page.waitForSelector('[data-testid=chart-requests] canvas', { timeout: 20_000 })
  for (const id of ['chart-requests', 'chart-errors', 'chart-latency', 'chart-share']) {
    t.equal(await page.locator(`[data-testid=${id}] canvas`).count(), 1, `${id} has a canvas`)
  }

  // traffic through the gateway, a little at a time until the charts have points
  let n = 0
  await waitFor(async () => {
    for (let i = 0; i < 20; i++) {
      const path = n % 2 === 0 ? '/api/orders/1' : '/api/catalog/tea'
      const res = await request(gw.url + path, { headers: { 'x-user-id': `user-${n++}` } })
      await res.body.dump()
    }
    const points = await page.locator('[data-testid=chart-requests]').getAttribute('data-points')
    return Number(points) > 0
  }, { what: 'requests/s points in the chart after traffic', timeoutMs: 60_000, intervalMs: 500 })
  await waitFor(async () => Number(await page.locator('[data-testid=chart-latency]').getAttribute('data-points')) > 0, { what: 'p99 points', timeoutMs: 30_000 })
  await waitFor(async () => Number(await page.locator('[data-testid=chart-share]').getAttribute('data-points')) > 0, { what: 'share points', timeoutMs: 30_000 })

  // the catalog's copies differ (each backend names itself): the mismatch table shows the route
  await waitFor(async () => /catalog/.test(await text(page, 'mismatches') ?? ''), { what: 'the catalog route in the mismatch table', timeoutMs: 30_000 })

  for (const key of ['qa-user-1', 'vip-42', 'someone-7']) {
    await page.fill('[data-testid=explain] input[name=key]', key)
    await page.click('[data-testid=explain] button[type=submit]')
    const api = (await call(gw.adminUrl, 'GET', `/admin/explain?key=${key}&rollout=checkout`, VIEWER)).body
    await waitFor(async () => (await page.locator('[data-testid=explain-result]').getAttribute('data-key')) === key, { what: `the explain result for ${key}`, timeoutMs: 20_000 })
    const shown = page.locator('[data-testid=explain-result]')
    t.same({ backend: await shown.getAttribute('data-backend'), reason: await shown.getAttribute('data-reason'), bucket: Number(await shown.getAttribute('data-bucket')) },
      { backend: api.backend, reason: api.reason, bucket: api.bucket }, `explain ${key} agrees with the API`)
  }

  t.same(seen.filter((u) => new URL(u).origin !== origin), [], 'no request leaves the admin origin')
  t.same(errors, [])
})
