// baseline: bare @fastify/http-proxy to legacy, no routing, no logs (what a Fastify proxy costs)
//   ORIGIN_LEGACY=http://127.0.0.1:4001 PORT=0 node bench/baselines/fastify-http-proxy.js
// prints {"port":N} once listening
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const upstream = process.env.ORIGIN_LEGACY ?? 'http://127.0.0.1:4001'
const app = Fastify({ logger: false, bodyLimit: 1_048_576 })
await app.register(proxy, { upstream })
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
process.stdout.write(JSON.stringify({ port: app.server.address().port }) + '\n')

const close = () => { app.close().then(() => process.exit(0), () => process.exit(1)) }
process.once('SIGTERM', close)
process.once('SIGINT', close)
