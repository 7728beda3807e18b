// the dualtrack command: start, demo, and the admin API's commands for people at a terminal
import { parseArgs } from 'node:util'
import { adminCommand, ADMIN_COMMANDS } from './admin-client.js'
import type closeWithGraceFn from 'close-with-grace'
import type { resolveConfigPath as ResolveConfigPath } from '../config/index.js'
import type { startGateway as StartGateway } from '../main.js'
import type { startDemo as StartDemo, startDemoBackend as StartDemoBackend } from '../demo/index.js'

// the gateway's modules load only for the commands that run it: an on-call engineer's
// `dualtrack rollback` should not wait for Fastify, ioredis and prom-client to load
const gateway = () => Promise.all([import('close-with-grace'), import('../config/index.js'), import('../main.js'), import('../demo/index.js')])

const USAGE = `usage: dualtrack <command> [options]

  start [--config PATH] [--pretty]      run the gateway (DUALTRACK_CONFIG picks the file too)
  demo [--port N] [--admin-port N]      run the gateway with sample legacy and new systems
  demo-backend --name legacy|new --port N   run one sample system
  status                                every rollout: percent, regions, rollback
  set <rollout> <percent> [--region R]  ramp a rollout (or one region)
  rollback --reason "..." [--rollout R] [--drain]
  resume [--rollout R]
  explain --key K [--region R] [--rollout R]
  audit [--limit N]
  plan <rollout> pause|resume           pause or resume a ramp plan
  reload                                re-read the YAML
  owners get <orderId> [--rollout R]    which system owns an order, since when
  owners export [--backend new] [--rollout R]   every owner, NDJSON on stdout

admin commands talk to --admin URL (default http://127.0.0.1:9090, or DUALTRACK_ADMIN_URL)
with the token in DUALTRACK_TOKEN; --json prints the server's JSON for scripts`

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n')
    return command === undefined ? 1 : 0
  }
  if (command === 'start' || command === 'demo' || command === 'demo-backend') {
    const [{ default: closeWithGrace }, { resolveConfigPath }, { startGateway, DEFAULT_SHUTDOWN_GRACE_MS }, { startDemo, startDemoBackend }] = await gateway()
    return runServer(command, rest, { closeWithGrace, resolveConfigPath, startGateway, DEFAULT_SHUTDOWN_GRACE_MS, startDemo, startDemoBackend })
  }
  if (ADMIN_COMMANDS.has(command)) return adminCommand(command, rest)
  process.stderr.write(`dualtrack: unknown command ${command}\n${USAGE}\n`)
  return 1
}

interface ServerModules {
  closeWithGrace: typeof closeWithGraceFn
  resolveConfigPath: typeof ResolveConfigPath
  startGateway: typeof StartGateway
  DEFAULT_SHUTDOWN_GRACE_MS: number
  startDemo: typeof StartDemo
  startDemoBackend: typeof StartDemoBackend
}

async function runServer (command: string, rest: string[], m: ServerModules): Promise<number> {
  const { closeWithGrace, resolveConfigPath, startGateway, DEFAULT_SHUTDOWN_GRACE_MS, startDemo, startDemoBackend } = m
  if (command === 'start') {
    const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, pretty: { type: 'boolean' } } })
    try {
      await startGateway({ configPath: resolveConfigPath(values.config), pretty: values.pretty ?? false, signals: true, watch: true })
    } catch (err) {
      process.stderr.write(`dualtrack: ${(err as Error).message}\n`)
      return 1
    }
    return -1 // keep running
  }
  if (command === 'demo') {
    const { values } = parseArgs({ args: rest, options: { port: { type: 'string' }, 'admin-port': { type: 'string' }, config: { type: 'string' }, pretty: { type: 'boolean' } } })
    const demo = await startDemo({
      configPath: values.config,
      pretty: values.pretty ?? process.stdout.isTTY,
      gatewayPort: values.port === undefined ? undefined : Number(values.port),
      adminPort: values['admin-port'] === undefined ? undefined : Number(values['admin-port'])
    })
    const g = demo.gateway.gatewayUrl
    process.stdout.write(`
dualtrack demo
  gateway  ${g}
  admin    ${demo.gateway.adminUrl}   (token: see the log line "admin token")
  legacy   ${demo.legacy.url}
  new      ${demo.new.url}

try:
  curl -si ${g}/api/whoami -H 'x-user-id: alice'          # sticky: alice always lands on one system
  curl -si ${g}/api/whoami -H 'x-user-id: qa-user-1'      # forced to new
  curl -si ${g}/api/whoami                                # no key: unkeyed, legacy
  curl -s  ${g}/api/orders -H 'x-user-id: alice' -H 'content-type: application/json' -d '{"items":[{"sku":"tea","qty":2,"price":9.5}]}'
  curl -s  ${g}/api/payments/notify -d 'out_trade_no=<orderId from above>'
  curl -s  ${g}/api/payments/notify -H 'content-type: text/xml' -d '<xml><out_trade_no><![CDATA[<orderId from above>]]></out_trade_no></xml>'   # WeChat Pay v2 style

Ctrl-C stops everything.
`)
    closeWithGrace({ delay: DEFAULT_SHUTDOWN_GRACE_MS }, async () => {
      await demo.stop()
    })
    return -1
  }
  if (command === 'demo-backend') {
    const { values } = parseArgs({ args: rest, options: { name: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } } })
    const b = await startDemoBackend(values.name ?? 'legacy', Number(values.port ?? 0), values.host ?? '0.0.0.0')
    process.stdout.write(`sample ${b.name} system on ${b.url}\n`)
    closeWithGrace({ delay: DEFAULT_SHUTDOWN_GRACE_MS }, async () => { await b.close() })
    return -1
  }
  return 1
}
