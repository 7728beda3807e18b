// the dualtrack command: start, demo, and the admin API's verbs for people at a terminal.
// exit codes: 0 done, 1 the call failed, 2 a usage error (status --timeout adds 3 and 4)
import { Command, CommanderError } from 'commander'
import { addAdminCommands, type Io } from './admin-commands.js'
import { CallError, UsageError, EXIT } from './admin-client.js'

// the gateway's modules load only for the commands that run it: an on-call engineer's
// `dualtrack rollback` should not wait for Fastify, ioredis and prom-client to load
const gateway = () => Promise.all([import('../config/index.js'), import('../main.js'), import('../demo/index.js')])

/** -1: keep running (a server); otherwise the exit code */
export async function main (argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env, isTTY: process.stdout.isTTY === true }): Promise<number> {
  let code: number = EXIT.ok
  const done = (c: number) => { code = c }
  const program = new Command('dualtrack')
    .description('a gateway that moves users from a legacy system to its replacement; these commands run it and drive its admin API')
    .option('--admin <url>', 'the admin API (default DUALTRACK_ADMIN_URL or http://127.0.0.1:9090); the token comes from DUALTRACK_TOKEN')
    .option('--json', 'print the server\'s JSON (for scripts)')
    .exitOverride()
    .showHelpAfterError(`(dualtrack ${commandName(argv) || '<command>'} --help shows the usage)`)
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: (s, write) => write(`dualtrack${commandName(argv) ? ` ${commandName(argv)}` : ''}: ${s.replace(/^error: /, '')}`) })

  program.command('start')
    .description('run the gateway (DUALTRACK_CONFIG picks the file too)')
    .option('--config <path>', 'the YAML config (default DUALTRACK_CONFIG or config/gateway.yaml)')
    .option('--pretty', 'human-readable logs')
    .action(async (opts: { config?: string, pretty?: boolean }) => {
      const [{ resolveConfigPath }, { startGateway }] = await gateway()
      try {
        await startGateway({ configPath: resolveConfigPath(opts.config), pretty: opts.pretty ?? false, signals: true, watch: true })
      } catch (err) {
        throw new CallError((err as Error).message, undefined, undefined)
      }
      done(-1)
    })

  program.command('demo')
    .description('run the gateway with sample legacy and new systems, and print the console\'s address and tokens')
    .option('--port <n>', 'the gateway\'s port (default 8080; 0 picks a free one)')
    .option('--admin-port <n>', 'the admin port (default 9090; 0 picks a free one)')
    .option('--config <path>', 'another config (default: the bundled config/demo.yaml)')
    .option('--pretty', 'human-readable logs (default when the output is a terminal)')
    .action(async (opts: { port?: string, adminPort?: string, config?: string, pretty?: boolean }) => {
      const port = (v: string | undefined, what: string) => {
        if (v === undefined) return undefined
        if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65_535) throw new UsageError(`${what}: a port number, got ${v}`)
        return Number(v)
      }
      const gatewayPort = port(opts.port, '--port')
      const adminPort = port(opts.adminPort, '--admin-port')
      const [, { DEFAULT_SHUTDOWN_GRACE_MS, handleSignals, createLogger }, { startDemo }] = await gateway()
      const demo = await startDemo({ configPath: opts.config, pretty: opts.pretty ?? io.isTTY, gatewayPort, adminPort })
      printDemo(io, demo.gateway.gatewayUrl, demo.gateway.adminUrl, demo.legacy.url, demo.new.url, demo.tokens)
      // the demo runs on a terminal: SIGHUP, or the terminal going away, stops it like Ctrl-C
      handleSignals({ logger: createLogger(opts.pretty ?? io.isTTY), delayMs: DEFAULT_SHUTDOWN_GRACE_MS, stop: () => demo.stop() })
      done(-1)
    })

  program.command('demo-backend')
    .description('run one sample system')
    .requiredOption('--name <name>', 'legacy or new')
    .option('--port <n>', 'port', '0')
    .option('--host <host>', 'address to bind', '0.0.0.0')
    .action(async (opts: { name: string, port: string, host: string }) => {
      if (opts.name !== 'legacy' && opts.name !== 'new') throw new UsageError(`--name: legacy or new, got ${opts.name}`)
      const [, { DEFAULT_SHUTDOWN_GRACE_MS, handleSignals, createLogger }, { startDemoBackend }] = await gateway()
      const b = await startDemoBackend(opts.name, Number(opts.port), opts.host)
      io.stdout.write(`sample ${b.name} system on ${b.url}\n`)
      handleSignals({ logger: createLogger(false), delayMs: DEFAULT_SHUTDOWN_GRACE_MS, stop: () => b.close() })
      done(-1)
    })

  addAdminCommands(program, io, done)

  if (argv.length === 0) {
    io.stderr.write(program.helpInformation())
    return EXIT.usage
  }
  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors; everything else commander refuses is usage
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return EXIT.ok
      return EXIT.usage
    }
    const name = commandName(argv)
    if (err instanceof UsageError) {
      io.stderr.write(`dualtrack ${name}: ${err.message}\n(dualtrack ${name} --help shows the usage)\n`)
      return EXIT.usage
    }
    io.stderr.write(`dualtrack ${name}: ${(err as Error).message}\n`)
    return EXIT.failed
  }
  return code
}

function commandName (argv: string[]): string {
  return argv.find((a) => !a.startsWith('-')) ?? ''
}

function printDemo (io: Io, g: string, admin: string, legacy: string, fresh: string, tokens: { operator: string, viewer: string }) {
  io.stdout.write(`
dualtrack demo
  console  ${admin}/   open it and paste a token:
             operator  ${tokens.operator}
             viewer    ${tokens.viewer}
  gateway  ${g}
  admin    ${admin}
  legacy   ${legacy}
  new      ${fresh}

try:
  curl -si ${g}/api/whoami -H 'x-user-id: alice'          # sticky: alice always lands on one system
  curl -si ${g}/api/whoami -H 'x-user-id: qa-user-1'      # forced to new
  curl -si ${g}/api/whoami -H 'x-user-id: bob' -H 'x-user-registered-at: 2026-11-20'   # a new sign-up: reason segment (new-signups)
  curl -si ${g}/api/whoami                                # no key: unkeyed, legacy
  curl -s  ${g}/api/orders -H 'x-user-id: alice' -H 'content-type: application/json' -d '{"items":[{"sku":"tea","qty":2,"price":9.5}]}'
  curl -s  ${g}/api/payments/notify -d 'out_trade_no=<orderId from above>'
  curl -s  ${g}/api/payments/notify -H 'content-type: text/xml' -d '<xml><out_trade_no><![CDATA[<orderId from above>]]></out_trade_no></xml>'   # WeChat Pay v2 style

the CLI, in another terminal:
  export DUALTRACK_ADMIN_URL=${admin} DUALTRACK_TOKEN=${tokens.operator}
  dualtrack status --watch

Ctrl-C (or closing the terminal) stops everything.
`)
}
