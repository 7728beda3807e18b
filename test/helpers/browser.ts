// a real headless Chromium (Debian's `chromium`) driven by playwright-core, with a fresh profile
// and nothing that phones home, so every request the page makes is the page's own
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** a browser with a fresh profile (its own --user-data-dir), closed and removed at teardown */
export async function startBrowser (t: { teardown(fn: () => unknown): void }, viewport = { width: 1400, height: 1000 }): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'dualtrack-chromium-'))
  let ctx: BrowserContext
  try {
    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000, viewport })
  } catch (err) {
    throw new Error(`Chromium is required for this test (apt-get install chromium, or set CHROMIUM_PATH): ${(err as Error).message}`, { cause: err })
  }
  t.teardown(async () => {
    await ctx.close()
    rmSync(profile, { recursive: true, force: true })
  })
  return ctx
}
