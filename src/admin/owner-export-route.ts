// GET /admin/affinity?backend=new: every owner the store holds, streamed as NDJSON (the ownership
// ledger, DESIGN.md §11), one store batch at a time: the export of a million owners holds one batch
// in memory, and waits while the client reads. GET /admin/affinity/:orderId is affinity-route.ts
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { BackendName } from '../config/index.js'
import type { OwnerRecord } from '../state/index.js'
import { DUALTRACK_ERR_STORE_UNAVAILABLE } from '../errors.js'

/** every owner (of one backend, one rollout), a batch at a time */
export type OwnerExport = (filter: { backend?: BackendName, rollout?: string }) => AsyncIterable<OwnerRecord[]>

type Hook = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>

const exportSchema = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { backend: { type: 'string', enum: ['legacy', 'new'] }, rollout: { type: 'string', minLength: 1 } }
  }
} as const

export function registerOwnerExportRoute (admin: FastifyInstance, owners: OwnerExport, viewer: Hook): void {
  admin.get<{ Querystring: { backend?: BackendName, rollout?: string } }>('/admin/affinity', { onRequest: viewer, schema: exportSchema }, async (req, reply) => {
    const filter = { ...(req.query.backend ? { backend: req.query.backend } : {}), ...(req.query.rollout ? { rollout: req.query.rollout } : {}) }
    const it = owners(filter)[Symbol.asyncIterator]()
    // the first batch before the 200: a store that cannot answer gets a 503, not an empty export
    let first: IteratorResult<OwnerRecord[]>
    try {
      first = await it.next()
    } catch (err) {
      const e = new DUALTRACK_ERR_STORE_UNAVAILABLE((err as Error).message)
      return reply.code(503).send({ error: e.code, message: e.message })
    }
    const lines = (batch: OwnerRecord[]) => batch.map((r) => JSON.stringify({ orderId: r.orderId, owner: r.owner, learnedAt: r.learnedAt, rollout: r.rollout }) + '\n').join('')
    async function * body (): AsyncGenerator<string> {
      if (first.done === true) return
      yield lines(first.value)
      for (;;) {
        // a store failure midway ends the response without its last chunk: the client sees a cut transfer
        const next = await it.next()
        if (next.done === true) return
        yield lines(next.value)
      }
    }
    const stream = Readable.from(body(), { objectMode: false, highWaterMark: 1 })
    stream.on('error', (err) => req.log.warn({ err: { message: err.message } }, 'owner export cut short'))
    return reply.header('content-type', 'application/x-ndjson').send(stream)
  })
}
