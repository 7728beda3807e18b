import { request } from 'undici'

export const OPERATOR = 'operator-token-0123456789'
export const VIEWER = 'viewer-token-0123456789abc'
export const TOKENS_YAML = `
admin:
  tokens:
    - { name: oncall, token: "${OPERATOR}", role: operator }
    - { name: grafana, token: "${VIEWER}", role: viewer }
`

export interface AdminAnswer { status: number, body: Record<string, unknown>, headers: Record<string, string | string[] | undefined> }

export async function call (base: string, method: 'GET' | 'PUT' | 'POST', path: string, token?: string, body?: unknown, raw?: string | Buffer): Promise<AdminAnswer> {
  const res = await request(base + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body))
  })
  const text = await res.body.text()
  let parsed: Record<string, unknown>
  try { parsed = JSON.parse(text) as Record<string, unknown> } catch { parsed = { text } }
  return { status: res.statusCode, body: parsed, headers: res.headers }
}
