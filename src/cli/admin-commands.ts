// the admin verbs of the dualtrack command. A rollout is named the same way everywhere: as the
// first argument or with --rollout (both accepted; two different names are a usage error)
import type { Command } from 'commander'
import {
  createClient, renderAudit, renderExplain, renderGuard, renderMismatches, renderPlans, renderState, renderTraffic, CallError, UsageError, EXIT,
  type AuditEntry, type Client, type ExplainView, type GuardBody, type GuardView, type MismatchSample, type ShadowSummary, type StateView, type StatsView
} from './admin-client.js'
import { loadUndo } from './undo.js'

interface Common { admin?: string, json?: boolean, rollout?: string }
type Out = { write (s: string): unknown }
export interface Io { stdout: Out, stderr: Out, env: NodeJS.ProcessEnv, isTTY: boolean }

/** a command's result: the exit code */
export type Result = number

const WATCH_MS = 2000
const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/

/** the rollout named by the positional, --rollout, or both (when they agree) */
export function pickRollout (positional: string | undefined, option: string | undefined): string | undefined {
  if (positional !== undefined && option !== undefined && positional !== option) throw new UsageError(`two rollouts named: ${positional} and --rollout ${option}`)
  return positional ?? option
}

/** a rollout is required: the one named, or the gateway's only one */
async function requireRollout (client: Client, name: string | undefined): Promise<string> {
  if (name !== undefined) return name
  const s = await client.call<StateView>('GET', '/admin/state')
  const names = Object.keys(s.rollouts)
  if (names.length === 1) return names[0] as string
  throw new UsageError(`name a rollout (one of: ${names.join(', ')}), as the first argument or with --rollout`)
}

export function parseTimeout (v: string): number {
  const m = /^([0-9]+)(ms|s|m|h)?$/.exec(v)
  if (m === null) throw new UsageError(`--timeout: not a duration: ${v} (for example 30s, 10m)`)
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number)
}

async function optional<T> (p: Promise<T>): Promise<T | undefined> {
  try { return await p } catch (err) {
    // an older gateway without the endpoint: show the rest
    if (err instanceof CallError && err.status === 404) return undefined
    throw err
  }
}

async function guardOf (client: Client, names: string[]): Promise<Record<string, GuardView | undefined>> {
  // GET /admin/guard answers {rollouts: {NAME: verdict}}; a gateway without the guard's view: none
  const g = await optional(client.call<{ rollouts?: Record<string, GuardView> }>('GET', '/admin/guard'))
  const out: Record<string, GuardView | undefined> = {}
  for (const name of names) out[name] = g?.rollouts?.[name]
  return out
}

async function statusScreen (client: Client, only: string | undefined): Promise<{ text: string, state: StateView, guard: Record<string, GuardView | undefined> }> {
  const state = await client.call<StateView>('GET', '/admin/state')
  if (only !== undefined && !(only in state.rollouts)) throw new CallError(`404 DUALTRACK_ERR_UNKNOWN_ROLLOUT unknown rollout ${only}`, 404, 'DUALTRACK_ERR_UNKNOWN_ROLLOUT')
  const [stats, guard] = await Promise.all([optional(client.call<StatsView>('GET', '/admin/stats?window=1m')), guardOf(client, Object.keys(state.rollouts))])
  return { text: `${renderState(state, only)}\n\n${renderTraffic(state, stats, guard, only)}`, state, guard }
}

/** where a rollout stands for `status --timeout`: done, still moving, or rolled back */
export function settled (state: StateView, names: string[], guard: Record<string, GuardView | undefined>): 'healthy' | 'progressing' | 'rolled-back' {
  let moving = false
  for (const n of names) {
    const r = state.rollouts[n]
    if (r === undefined) continue
    if (r.rollback !== null || r.plan?.state === 'stopped' || /fail|breach/.test(guard[n]?.verdict ?? '')) return 'rolled-back'
    if (r.plan && r.plan.state !== 'done') moving = true
  }
  return moving ? 'progressing' : 'healthy'
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function addAdminCommands (program: Command, io: Io, done: (code: Result) => void): void {
  const client = (cmd: Command) => createClient((cmd.optsWithGlobals() as Common).admin, io.env)
  const json = (cmd: Command) => (cmd.optsWithGlobals() as Common).json === true
  const print = (s: string) => io.stdout.write(s.endsWith('\n') ? s : s + '\n')
  const withRollout = (c: Command) => c.option('--rollout <name>', 'the rollout (the same as the first argument)')

  // status
  withRollout(program.command('status').argument('[rollout]', 'one rollout (default: all)'))
    .description('every rollout: percent, regions, rollback, plan; the last minute\'s split, errors, p99 and verdict')
    .option('--watch', 'redraw every 2 s until Ctrl-C')
    .option('--timeout <duration>', 'wait until healthy (exit 0), rolled back (exit 3) or the time is up while a plan is still moving (exit 4)')
    .addHelpText('after', '\nExit codes: 0 healthy, 1 the call failed, 2 usage error, 3 rolled back (or the guard failed), 4 --timeout reached while still progressing.')
    .action(async (pos: string | undefined, opts: Common & { watch?: boolean, timeout?: string }, cmd: Command) => {
      const only = pickRollout(pos, opts.rollout)
      const c = client(cmd)
      if (opts.watch && opts.timeout) throw new UsageError('--watch and --timeout: pick one')
      if (opts.watch) {
        // Ctrl-C ends the watch normally
        let stop = false
        const onInt = () => { stop = true; wake() }
        let wake = () => {}
        process.once('SIGINT', onInt)
        try {
          while (!stop) {
            let text: string
            try {
              text = (await statusScreen(c, only)).text
            } catch (err) {
              if (err instanceof CallError && err.status !== undefined && err.status < 500) throw err
              text = `dualtrack status: ${(err as Error).message}`
            }
            io.stdout.write(`${io.isTTY ? '\x1b[H\x1b[2J' : ''}dualtrack status  ${c.base}  every 2s, Ctrl-C to stop  ${new Date().toISOString()}\n\n${text}\n`)
            await new Promise<void>((resolve) => { const t = setTimeout(resolve, WATCH_MS); wake = () => { clearTimeout(t); resolve() } })
          }
        } finally {
          process.removeListener('SIGINT', onInt)
        }
        return done(EXIT.ok)
      }
      if (opts.timeout !== undefined) {
        const ms = parseTimeout(opts.timeout)
        const deadline = Date.now() + ms
        for (;;) {
          const s = await statusScreen(c, only)
          const verdict = settled(s.state, only === undefined ? Object.keys(s.state.rollouts) : [only], s.guard)
          if (verdict !== 'progressing' || Date.now() >= deadline) {
            print(json(cmd) ? JSON.stringify({ result: verdict === 'progressing' ? 'timed-out' : verdict, state: s.state }, null, 2) : `${s.text}\n\n${verdict === 'progressing' ? `still progressing after ${opts.timeout}` : verdict}`)
            return done(verdict === 'healthy' ? EXIT.ok : verdict === 'rolled-back' ? EXIT.rolledBack : EXIT.timedOut)
          }
          await sleep(Math.min(WATCH_MS, Math.max(0, deadline - Date.now())))
        }
      }
      if (json(cmd)) {
        print(JSON.stringify(await c.call('GET', '/admin/state'), null, 2))
        return done(EXIT.ok)
      }
      print((await statusScreen(c, only)).text)
      return done(EXIT.ok)
    })

  // set
  withRollout(program.command('set').argument('<args...>', '[rollout] <percent>'))
    .usage('[rollout] <percent> [--region R] [--reason TEXT]')
    .description('ramp a rollout (or one region) to a percent, 0 to 100 with two decimals at most')
    .option('--region <region>', 'set this region\'s percent instead')
    .option('--segment <segment>', 'set this segment\'s percent instead (where the gateway has segments)')
    .option('--reason <text>', 'why, for the audit')
    .action(async (args: string[], opts: Common & { region?: string, segment?: string, reason?: string }, cmd: Command) => {
      if (opts.region && opts.segment) throw new UsageError('--region or --segment, not both')
      if (args.length > 2) throw new UsageError(`set takes [rollout] <percent>, got ${args.join(' ')}`)
      const pct = args.at(-1) as string
      // a number; its range and decimals are the API's to check (one message, in one place)
      if (!NUMBER.test(pct)) throw new UsageError(`percent must be a number, got ${pct}`)
      const c = client(cmd)
      const name = await requireRollout(c, pickRollout(args.length === 2 ? args[0] : undefined, opts.rollout))
      const percent = Number(pct)
      const body = { ...(opts.region ? { regions: { [opts.region]: percent } } : opts.segment ? { segments: { [opts.segment]: percent } } : { percent }), ...(opts.reason ? { reason: opts.reason } : {}) }
      const s = await c.call<StateView>('PUT', `/admin/rollouts/${encodeURIComponent(name)}`, body)
      print(json(cmd) ? JSON.stringify(s, null, 2) : renderState(s))
      return done(EXIT.ok)
    })

  // rollback
  withRollout(program.command('rollback').argument('[rollout]', 'one rollout (default: all)'))
    .description('send users back to legacy now (hard), or only new orders (--drain)')
    .requiredOption('--reason <text>', 'why (required: it lands in the audit)')
    .option('--drain', 'orders new already owns keep going there (the same as --mode drain)')
    .option('--mode <mode>', 'hard (default) or drain')
    .action(async (pos: string | undefined, opts: Common & { reason: string, drain?: boolean, mode?: string }, cmd: Command) => {
      const name = pickRollout(pos, opts.rollout)
      if (opts.mode !== undefined && opts.mode !== 'hard' && opts.mode !== 'drain') throw new UsageError(`--mode: hard or drain, got ${opts.mode}`)
      if (opts.drain && opts.mode === 'hard') throw new UsageError('--drain and --mode hard: pick one')
      if (!opts.reason.trim()) throw new UsageError('--reason: say why')
      const s = await client(cmd).call<StateView>('POST', '/admin/rollback', { reason: opts.reason, mode: opts.drain ? 'drain' : opts.mode ?? 'hard', ...(name ? { rollout: name } : {}) })
      print(json(cmd) ? JSON.stringify(s, null, 2) : renderState(s))
      return done(EXIT.ok)
    })

  // resume
  withRollout(program.command('resume').argument('[rollout]', 'one rollout (default: all)'))
    .description('lift a rollback: percentages are as before it')
    .option('--reason <text>', 'why, for the audit')
    .action(async (pos: string | undefined, opts: Common & { reason?: string }, cmd: Command) => {
      const name = pickRollout(pos, opts.rollout)
      const s = await client(cmd).call<StateView>('POST', '/admin/resume', { ...(name ? { rollout: name } : {}), ...(opts.reason ? { reason: opts.reason } : {}) })
      print(json(cmd) ? JSON.stringify(s, null, 2) : renderState(s))
      return done(EXIT.ok)
    })

  // explain
  const collect = (v: string, prev: string[] = []) => [...prev, v]
  withRollout(program.command('explain').argument('[rollout]', 'the rollout (default: the only one)'))
    .description('which system serves a user, and why: by key (GET), or a whole request as it would arrive (POST)')
    .option('--key <key>', 'the cohort key (user id)')
    .option('--region <region>', 'the request\'s region')
    .option('--attr <name=value>', 'an attribute value by name, for segments (repeatable)', collect)
    .option('--header <name=value>', 'a request header (repeatable): explains the request as the gateway would see it', collect)
    .option('--cookie <name=value>', 'a cookie (repeatable)', collect)
    .option('--query <name=value>', 'a query parameter (repeatable)', collect)
    .option('--client-ip <ip>', 'the client address')
    .action(async (pos: string | undefined, opts: Common & { key?: string, region?: string, attr?: string[], header?: string[], cookie?: string[], query?: string[], clientIp?: string }, cmd: Command) => {
      const name = pickRollout(pos, opts.rollout)
      const pairs = (list: string[] | undefined, flag: string): Record<string, string> => {
        const out: Record<string, string> = {}
        for (const p of list ?? []) {
          const eq = p.indexOf('=')
          if (eq <= 0) throw new UsageError(`--${flag} takes NAME=VALUE, got ${p}`)
          out[p.slice(0, eq)] = p.slice(eq + 1)
        }
        return out
      }
      const headers = pairs(opts.header, 'header')
      const cookies = pairs(opts.cookie, 'cookie')
      const query = pairs(opts.query, 'query')
      const attrs = pairs(opts.attr, 'attr')
      let b: ExplainView
      if (opts.header || opts.cookie || opts.query || opts.clientIp) {
        if (opts.key !== undefined) throw new UsageError('--key or a request (--header, --cookie, --query, --client-ip), not both')
        // a whole request: the gateway reads the key, region and attributes from it as it would
        b = await client(cmd).call<ExplainView>('POST', '/admin/explain', { ...(name ? { rollout: name } : {}), headers, cookies, query, ...(opts.clientIp ? { clientIp: opts.clientIp } : {}) })
      } else {
        if (opts.key === undefined) throw new UsageError('--key K, or a request with --header, --cookie, --query or --client-ip')
        const q = new URLSearchParams({ key: opts.key, ...(opts.region ? { region: opts.region } : {}), ...(name ? { rollout: name } : {}) })
        for (const [k, x] of Object.entries(attrs)) q.append(`attr.${k}`, x)
        b = await client(cmd).call<ExplainView>('GET', `/admin/explain?${q}`)
      }
      print(json(cmd) ? JSON.stringify(b, null, 2) : renderExplain(b))
      return done(EXIT.ok)
    })

  // guard
  withRollout(program.command('guard').argument('[rollout]', 'one rollout (default: all guarded ones)'))
    .description('the guard\'s verdict per rollout, with its numbers and p-values')
    .action(async (pos: string | undefined, opts: Common, cmd: Command) => {
      const name = pickRollout(pos, opts.rollout)
      let b: GuardBody
      try {
        b = await client(cmd).call<GuardBody>('GET', '/admin/guard')
      } catch (err) {
        if (err instanceof CallError && err.status === 404 && err.code !== 'DUALTRACK_ERR_UNKNOWN_ROLLOUT') throw new CallError('this gateway has no guard view (GET /admin/guard answered 404)', 404, err.code)
        throw err
      }
      print(json(cmd) ? JSON.stringify(b, null, 2) : renderGuard(b, name))
      return done(EXIT.ok)
    })

  // audit
  withRollout(program.command('audit').argument('[rollout]', 'only this rollout\'s entries'))
    .description('the change log, newest first')
    .option('--limit <n>', 'entries to show', '20')
    .action(async (pos: string | undefined, opts: Common & { limit: string }, cmd: Command) => {
      if (!/^[0-9]{1,4}$/.test(opts.limit) || Number(opts.limit) < 1) throw new UsageError(`--limit: a number from 1 to 1000, got ${opts.limit}`)
      const name = pickRollout(pos, opts.rollout)
      // a rollout's entries among the last thousand
      const { entries } = await client(cmd).call<{ entries: AuditEntry[] }>('GET', `/admin/audit?limit=${name ? 1000 : Math.min(Number(opts.limit), 1000)}`)
      const shown = (name ? entries.filter((e) => e.rollout === name || e.rollout === null) : entries).slice(0, Number(opts.limit))
      print(json(cmd) ? JSON.stringify({ entries: shown }, null, 2) : renderAudit(shown))
      return done(EXIT.ok)
    })

  // mismatches
  program.command('mismatches')
    .description('shadow comparisons: mismatch rate and top fields per route, the latest redacted samples')
    .option('--route <route>', 'one route')
    .option('--limit <n>', 'samples to show', '10')
    .action(async (opts: Common & { route?: string, limit: string }, cmd: Command) => {
      if (!/^[0-9]{1,3}$/.test(opts.limit) || Number(opts.limit) < 1) throw new UsageError(`--limit: a number from 1 to 500, got ${opts.limit}`)
      const c = client(cmd)
      const q = new URLSearchParams({ limit: opts.limit, ...(opts.route ? { route: opts.route } : {}) })
      const [summary, { samples }] = await Promise.all([
        c.call<ShadowSummary>('GET', '/admin/shadow/summary'),
        c.call<{ samples: MismatchSample[] }>('GET', `/admin/shadow/mismatches?${q}`)
      ])
      print(json(cmd) ? JSON.stringify({ summary, samples }, null, 2) : renderMismatches(summary, samples, opts.route))
      return done(EXIT.ok)
    })

  // plan
  withRollout(program.command('plan').argument('[args...]', 'status|pause|resume [rollout] (or <rollout> pause|resume)'))
    .usage('status|pause|resume [rollout]')
    .description('ramp plans: show each step and hold (status), pause or resume one')
    .action(async (args: string[], opts: Common, cmd: Command) => {
      const verbs = new Set(['status', 'pause', 'resume'])
      let action: string
      let pos: string | undefined
      if (args.length === 0) action = 'status'
      else if (verbs.has(args[0] as string) && args.length <= 2) { action = args[0] as string; pos = args[1] }
      else if (args.length === 2 && verbs.has(args[1] as string)) { action = args[1] as string; pos = args[0] }
      else throw new UsageError(`plan status|pause|resume [rollout], got: plan ${args.join(' ')}`)
      const c = client(cmd)
      const name = pickRollout(pos, opts.rollout)
      if (action === 'status') {
        const s = await c.call<StateView>('GET', '/admin/state')
        if (name !== undefined && !(name in s.rollouts)) throw new CallError(`404 DUALTRACK_ERR_UNKNOWN_ROLLOUT unknown rollout ${name}`, 404, 'DUALTRACK_ERR_UNKNOWN_ROLLOUT')
        print(json(cmd) ? JSON.stringify(s, null, 2) : renderPlans(s, name))
        return done(EXIT.ok)
      }
      const target = await requireRollout(c, name)
      const s = await c.call<StateView>('POST', `/admin/rollouts/${encodeURIComponent(target)}/plan/${action}`, {})
      print(json(cmd) ? JSON.stringify(s, null, 2) : renderPlans(s, target))
      return done(EXIT.ok)
    })

  // undo
  withRollout(program.command('undo').argument('[rollout]', 'the rollout (default: the only one)'))
    .description('revert the last change of a rollout (percent, regions, segments, rollback, resume, plan steps, plan pause/resume) to the audit\'s "before"')
    .option('--reason <text>', 'why, for the audit')
    .action(async (pos: string | undefined, opts: Common & { reason?: string }, cmd: Command) => {
      const c = client(cmd)
      const name = await requireRollout(c, pickRollout(pos, opts.rollout))
      const [{ entries }, state] = await Promise.all([c.call<{ entries: AuditEntry[] }>('GET', '/admin/audit?limit=1000'), c.call<StateView>('GET', '/admin/state')])
      const e = entries.find((x) => x.rollout === name)
      if (e === undefined) throw new CallError(`no change of ${name} in the audit`, undefined, undefined)
      const reason = opts.reason ?? `undo ${e.action} by ${e.actor} at ${e.at}`
      const plan = (await loadUndo())(name, e, state.rollouts[name], reason)
      if ('refused' in plan) throw new CallError(`cannot undo the last change of ${name}: ${plan.refused}`, undefined, undefined)
      let s: StateView | undefined
      // in order: a plan is paused before the percent it set is put back
      for (const call of plan.calls) s = await c.call<StateView>(call.method, call.path, call.body)
      const final = s ?? await c.call<StateView>('GET', '/admin/state')
      print(json(cmd) ? JSON.stringify(final, null, 2) : `undid ${e.action} by ${e.actor} at ${e.at} (${JSON.stringify(e.after)} -> ${JSON.stringify(e.before)})${plan.note ? `\n${plan.note}` : ''}\n${renderState(final)}`)
      return done(EXIT.ok)
    })

  // owners: the ownership ledger (which system holds an order; what to reconcile after a rollback)
  const owners = program.command('owners').description('the ownership ledger: which system holds an order, since when')
  owners.command('get')
    .argument('<orderId>', 'the order id')
    .option('--rollout <name>', 'the rollout whose owners to read (default: the only one with affinity)')
    .description('which system owns an order, and since when')
    .action(async (orderId: string, opts: Common, cmd: Command) => {
      const q = opts.rollout ? `?rollout=${encodeURIComponent(opts.rollout)}` : ''
      const o = await client(cmd).call<{ orderId: string, owner: string, learnedAt: string | null }>('GET', `/admin/affinity/${encodeURIComponent(orderId)}${q}`)
      print(json(cmd) ? JSON.stringify(o, null, 2) : `order ${o.orderId}: ${o.owner} (learned ${o.learnedAt ?? 'before the ledger'})`)
      return done(EXIT.ok)
    })
  owners.command('export')
    .option('--backend <backend>', 'legacy or new (default: both)')
    .option('--rollout <name>', 'one rollout')
    .description('every known owner as NDJSON on stdout, streamed (after a rollback: what new owns)')
    .action(async (opts: Common & { backend?: string }, cmd: Command) => {
      if (opts.backend !== undefined && opts.backend !== 'legacy' && opts.backend !== 'new') throw new UsageError(`--backend: legacy or new, got ${opts.backend}`)
      const q = new URLSearchParams({ ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.rollout ? { rollout: opts.rollout } : {}) })
      const lines = await client(cmd).stream(`/admin/affinity${q.size > 0 ? `?${q}` : ''}`, io.stdout)
      io.stderr.write(`dualtrack owners: ${lines} owners exported\n`)
      return done(EXIT.ok)
    })

  // reload
  program.command('reload')
    .description('re-read the YAML; a bad file is refused whole')
    .action(async (_opts: Common, cmd: Command) => {
      const s = await client(cmd).call('POST', '/admin/reload', {})
      print(json(cmd) ? JSON.stringify(s, null, 2) : 'config reloaded')
      return done(EXIT.ok)
    })
}
