// GET /admin/affinity/:orderId: who owns an order. Peers ask it while their store is down
// (state.peers), so what this replica holds in memory answers first, with no store call; then the
// store, when it answers. {orderId, owner, learnedAt}; 404 when neither knows, with how many owner
// records this replica still holds for a store that was down (`pending`): a peer that hears
// "unknown, 0 pending" from every replica can trust its store's unknown again
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { DUALTRACK_ERR_UNKNOWN_ORDER, DUALTRACK_ERR_UNKNOWN_ROLLOUT } from '../errors.js'

export interface OwnerAnswer { readonly orderId: string, readonly owner: 'legacy' | 'new', readonly learnedAt: string | null }

export interface AffinityView {
  /** from memory only (learned, cached, or waiting for the store) */
  known (rollout: string | undefined, orderId: string): OwnerAnswer | undefined
  /** from the store; throws when it cannot answer */
  stored (rollout: string | undefined, orderId: string): Promise<OwnerAnswer | undefined>
  rollouts (): readonly string[]
  /** owner records waiting for the store to come back */
  readonly pending: number
  /** peers holding such records (state.peers), at their last poll */
  readonly peersPending: number
}

const schema = {
  params: { type: 'object', properties: { orderId: { type: 'string', minLength: 1, maxLength: 512 } }, required: ['orderId'] },
  querystring: { type: 'object', additionalProperties: false, properties: { rollout: { type: 'string', minLength: 1 } } }
} as const

type Hook = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>

export function registerAffinityRoute (admin: FastifyInstance, view: AffinityView, viewer: Hook): void {
  admin.get<{ Params: { orderId: string }, Querystring: { rollout?: string } }>('/admin/affinity/:orderId', { onRequest: viewer, schema }, async (req, reply) => {
    const { orderId } = req.params
    const rollout = req.query.rollout
    if (rollout !== undefined && !view.rollouts().includes(rollout)) {
      const e = new DUALTRACK_ERR_UNKNOWN_ROLLOUT(rollout)
      return reply.code(404).send({ error: e.code, message: e.message })
    }
    let found = view.known(rollout, orderId)
    // memory answers at once, with the time it was recorded (kept from the store or a peer); an owner
    // without one (a value older than the ledger) is read from the store, which may know better
    if (found === undefined || found.learnedAt === null) {
      try {
        found = (await view.stored(rollout, orderId)) ?? found
      } catch { /* store down: memory was all there is */ }
    }
    if (found === undefined) {
      const e = new DUALTRACK_ERR_UNKNOWN_ORDER(orderId)
      return reply.code(404).send({ error: e.code, message: e.message, pending: view.pending })
    }
    return found
  })
}
