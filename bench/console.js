// the console on the demo: page weight (bytes of every file the page loads, as is and as sent), load time in a cold
// headless Chromium, and the README's screenshots (docs/console.png, docs/console-rollback.png).
//   npm run build && node bench/console.js            (CONSOLE_RUNS=5 CONSOLE_TRAFFIC_S=40)
// needs Debian's chromium (or CHROMIUM_PATH); everything binds to 127.0.0.1 on free ports
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { chromium } from 'playwright-core'
import { startDemo } from '../dist/demo/index.js'

const RUNS = Number(process.env.CONSOLE_RUNS ?? 5)
const TRAFFIC_S = Number(process.env.CONSOLE_TRAFFIC_S ?? 40)
const SHOTS = process.env.CONSOLE_SCREENSHOTS !== '0'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

// a fresh state each run: one left rolled back by an earlier run would show in the pictures
const stateDir = mkdtempSync(join(tmpdir(), 'dualtrack-console-bench-state-'))
const demo = await startDemo({ gatewayPort: 0, adminPort: 0, cwd: tmpdir(), stateDir })
const admin = demo.gateway.adminUrl
const gw = demo.gateway.gatewayUrl

// a ramp in the audit, before the traffic: the last minute's split is then judged against the
// target it ran at (the sample-ratio check does not know the target moved within its minute)
await request(`${admin}/admin/rollouts/checkout`, { method: 'PUT', headers: { authorization: `Bearer ${demo.tokens.operator}`, 'content-type': 'application/json' }, body: '{"percent":30,"reason":"ramp: errors flat for 30 min"}' }).then((r) => r.body.dump())

// traffic like a small shop: users browse orders, a few pay; bounded in time and count
const until = Date.now() + TRAFFIC_S * 1000
let sent = 0
async function traffic () {
  while (Date.now() < until && sent < 200_000) {
    const user = `user-${sent % 5000}`
    const res = sent % 10 === 0
      ? await request(`${gw}/api/orders`, { method: 'POST', headers: { 'x-user-id': user, 'content-type': 'application/json' }, body: '{"items":[{"sku":"tea","qty":1,"price":9.5}]}' })
      : await request(`${gw}/api/orders/${sent % 50}`, { headers: { 'x-user-id': user } })
    await res.body.dump()
    sent++
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
const load = Promise.all([traffic(), traffic()])

async function browser () {
  const profile = mkdtempSync(join(tmpdir(), 'dualtrack-console-bench-'))
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ARGS, headless: true, viewport: { width: 1400, height: 1050 } })
  return { ctx, close: async () => { await ctx.close(); rmSync(profile, { recursive: true, force: true }) } }
}

// one cold load: a fresh profile, the sign-in page, the token, the first card and chart drawn
async function once () {
  const b = await browser()
  const page = await b.ctx.newPage()
  const files = new Map()
  page.on('response', async (r) => {
    try { files.set(new URL(r.url()).pathname, (await r.body()).length) } catch { /* redirects have no body */ }
  })
  const t0 = performance.now()
  await page.goto(admin + '/')
  await page.waitForSelector('[data-testid=token]')
  const signInShown = performance.now() - t0
  await page.fill('[data-testid=token]', demo.tokens.operator)
  const t1 = performance.now()
  await page.click('[data-testid=sign-in]')
  await page.waitForSelector('[data-testid=percent-checkout]')
  await page.waitForSelector('[data-testid=chart-requests] canvas')
  const consoleShown = performance.now() - t1
  await b.close()
  return { signInShown, consoleShown, files }
}

const runs = []
for (let i = 0; i < RUNS; i++) runs.push(await once())
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const files = runs[0].files
const assets = [...files.entries()].filter(([p]) => p === '/' || p.startsWith('/console/'))
let raw = 0
let gz = 0
let wire = 0
for (const [p] of assets) {
  const res = await request(admin + p)
  const body = Buffer.from(await res.body.arrayBuffer())
  raw += body.length
  gz += gzipSync(body).length
  // what a browser is sent: the files precompressed at build, brotli (undici does not decode)
  const br = await request(admin + p, { headers: { 'accept-encoding': 'br, gzip' } })
  wire += Buffer.from(await br.body.arrayBuffer()).length
}

let verdict
if (SHOTS) {
  await load
  const b = await browser()
  const page = await b.ctx.newPage()
  await page.goto(admin + '/')
  await page.fill('[data-testid=token]', demo.tokens.operator)
  await page.click('[data-testid=sign-in]')
  await page.waitForSelector('[data-testid=chart-requests] canvas')
  await page.locator('[data-testid=percent-checkout]', { hasText: '30%' }).waitFor({ timeout: 20_000 })
  await page.fill('[data-testid=explain] input[name=key]', 'alice')
  await page.click('[data-testid=explain] button[type=submit]')
  await page.waitForSelector('[data-testid=explain-result][data-key=alice]')
  // the guard's verdict with its numbers (the demo guards checkout: 60 s window, 50 requests a side)
  await page.locator('[data-testid=verdict-checkout]', { hasText: 'errors: legacy' }).waitFor({ timeout: 60_000 })
  verdict = (await page.locator('[data-testid=verdict-checkout]').innerText()).replace(/\s+/g, ' ')
  await page.evaluate('window.scrollTo(0, 0)')
  mkdirSync('docs', { recursive: true })
  await page.screenshot({ path: 'docs/console.png' })
  await page.click('[data-testid=rollback]')
  await page.selectOption('[data-testid=mode]', 'drain')
  await page.fill('[data-testid=reason]', 'new answers 502 on /api/payments since 03:10')
  await page.screenshot({ path: 'docs/console-rollback.png' })
  await b.close()
} else {
  await load
}
await demo.stop()
rmSync(stateDir, { recursive: true, force: true })

const out = {
  runs: RUNS,
  requestsSent: sent,
  files: Object.fromEntries(assets),
  pageWeightKB: Math.round(raw / 102.4) / 10,
  pageWeightGzipKB: Math.round(gz / 102.4) / 10,
  pageWeightSentKB: Math.round(wire / 102.4) / 10,
  signInPageMs: Math.round(median(runs.map((r) => r.signInShown))),
  signInToConsoleMs: Math.round(median(runs.map((r) => r.consoleShown))),
  screenshotVerdict: verdict,
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
  loadavg: (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10)
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n')
