export { createAuth, type Auth, type Principal, type Role, type TokenSpec } from './auth.js'
export { ADMIN_BODY_LIMIT, type AdminDeps } from './routes.js'
export { createAdmin } from './plugin.js'
export { watchTokenFiles, type TokenWatch } from './tokens.js'
