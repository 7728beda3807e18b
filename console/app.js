// the dualtrack console (DESIGN.md §10): plain ES module, Preact + htm, uPlot; no build step.
// every read and every change goes through the admin API with the pasted bearer token
import { html, render, useState, useEffect, useRef, useCallback } from '/console/vendor/preact-htm.js'
import { undoOf } from '/console/undo.js'

const TOKEN_KEY = 'dualtrack.token'
const REFRESH_MS = 5000
const COLORS = { legacy: '#d99a2b', new: '#3d8bfd', target: '#9aa5b1', match: '#30a46c', mismatch: '#e5484d', error: '#f5a524' }

class ApiError extends Error {
  constructor (status, code, message) { super(message); this.status = status; this.code = code }
}

async function api (token, method, path, body) {
  const res = await fetch(path, {
    method,
    cache: 'no-store',
    credentials: 'omit',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const data = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, data?.error ?? String(res.status), data?.message ?? `${method} ${path}: HTTP ${res.status}`)
  return data
}

const errText = (e) => (e instanceof ApiError ? `${e.status} ${e.code}: ${e.message}` : String(e?.message ?? e))
const pct = (v) => (v === null || v === undefined ? '–' : `${Math.round(v * 10000) / 100}%`)
const num = (v, d = 2) => (v === null || v === undefined ? '–' : String(Math.round(v * 10 ** d) / 10 ** d))
const ago = (iso) => {
  if (!iso) return ''
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000)
  return s < 90 ? `${s}s ago` : s < 5400 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`
}
const dur = (ms) => {
  const s = Math.max(0, Math.round(ms / 1000))
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}
const json = (v) => (v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v))

// ---- sign-in -------------------------------------------------------------------------------

function SignIn ({ onToken, error }) {
  const [value, setValue] = useState('')
  const submit = (e) => { e.preventDefault(); if (value.trim()) onToken(value.trim()) }
  return html`
    <form class="signin" onSubmit=${submit}>
      <h1>dualtrack console</h1>
      <p class="dim">Paste an admin token (<code>admin.tokens</code> in the config, or the one the gateway printed at start).
        It stays in this tab only (sessionStorage) and is sent as a bearer header, never as a cookie.</p>
      <input data-testid="token" type="password" autocomplete="off" placeholder="admin token" value=${value}
        onInput=${(e) => setValue(e.target.value)} autofocus />
      <button data-testid="sign-in" class="primary" type="submit">Sign in</button>
      <${ErrorBox} error=${error} />
    </form>`
}

function ErrorBox ({ error }) {
  return html`<div data-testid="error" class="error" role="alert" hidden=${!error}>${error ?? ''}</div>`
}

// ---- charts ---------------------------------------------------------------------------------

function Chart ({ testid, title, t, series, yFormat, yFloor = 1 }) {
  const el = useRef(null)
  const plot = useRef(null)
  const points = series.reduce((n, s) => n + s.values.filter((v) => v !== null && v !== undefined).length, 0)
  const shape = series.map((s) => s.label).join('|')
  useEffect(() => {
    if (!el.current || !window.uPlot) return
    const data = [t.map((ms) => ms / 1000), ...series.map((s) => s.values)]
    if (plot.current && plot.current.shape === shape) {
      plot.current.u.setData(data)
      return
    }
    plot.current?.u.destroy()
    const width = Math.max(300, el.current.clientWidth || 420)
    const u = new window.uPlot({
      width,
      height: 170,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, dash: s.dash, value: (_u, v) => (v === null ? '–' : yFormat(v)) }))],
      axes: [{ stroke: '#9aa5b1', grid: { stroke: '#2a333d40' } }, { stroke: '#9aa5b1', grid: { stroke: '#2a333d40' }, values: (_u, vals) => vals.map(yFormat), size: 60 }],
      // from zero, and a floor so that a flat line of zeros does not fill the chart
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, yFloor) * 1.1] } },
      legend: { live: true }
    }, data, el.current)
    plot.current = { u, shape }
  }, [t, series, shape])
  useEffect(() => () => plot.current?.u.destroy(), [])
  return html`<div class="chart" data-testid=${testid} data-points=${points}>
    <h4>${title}</h4>
    <div ref=${el}></div>
  </div>`
}

// whose traffic the charts show: the fleet's through Redis, or this replica's (and why, when the fleet is out of reach)
function scopeText (stats) {
  if (stats.scope === 'fleet') return `fleet: ${stats.replicas} replica${stats.replicas === 1 ? '' : 's'}`
  return stats.fleet ? `this replica only, fleet ${stats.fleet}` : 'this replica'
}

function Charts ({ stats, state }) {
  if (!stats) return html`<section><h2>Last 15 minutes</h2><p class="dim">waiting for /admin/stats…</p></section>`
  const t = stats.t
  const b = stats.backends
  const names = Object.keys(state?.rollouts ?? {})
  const share = []
  for (const n of names) {
    const r = stats.rollouts[n]
    if (!r) continue
    share.push({ label: `${n} on new`, color: COLORS.new, values: r.share })
    share.push({ label: `${n} target`, color: COLORS.target, dash: [6, 4], values: r.target })
  }
  return html`<section>
    <h2>Last 15 minutes <span class="dim" data-testid="stats-scope">(5 s slots, ${scopeText(stats)})</span></h2>
    <div class="charts">
      <${Chart} testid="chart-requests" title="requests/s" t=${t} yFormat=${(v) => num(v, 1)}
        series=${[{ label: 'legacy', color: COLORS.legacy, values: b.legacy.rps }, { label: 'new', color: COLORS.new, values: b.new.rps }]} />
      <${Chart} testid="chart-errors" title="error rate (5xx)" t=${t} yFormat=${(v) => pct(v)} yFloor=${0.01}
        series=${[{ label: 'legacy', color: COLORS.legacy, values: b.legacy.errorRate }, { label: 'new', color: COLORS.new, values: b.new.errorRate }]} />
      <${Chart} testid="chart-latency" title="p99 latency (ms)" t=${t} yFormat=${(v) => num(v, 1)}
        series=${[{ label: 'legacy', color: COLORS.legacy, values: b.legacy.p99Ms }, { label: 'new', color: COLORS.new, values: b.new.p99Ms }]} />
      <${Chart} testid="chart-share" title="share on new vs target" t=${t} yFormat=${(v) => pct(v)} yFloor=${0.1} series=${share} />
      <${Chart} testid="chart-shadow" title="shadow comparisons/s" t=${t} yFormat=${(v) => num(v, 2)}
        series=${[{ label: 'match', color: COLORS.match, values: stats.shadow.match }, { label: 'mismatch', color: COLORS.mismatch, values: stats.shadow.mismatch }, { label: 'error', color: COLORS.error, values: stats.shadow.error }]} />
    </div>
  </section>`
}

// ---- rollouts -------------------------------------------------------------------------------

function Verdict ({ name, guard }) {
  const g = guard?.[name]
  if (g === undefined || g === null) {
    return html`<span data-testid=${`verdict-${name}`}><span class="badge none">no verdict</span> <span class="dim">${guard === null ? 'this gateway has no /admin/guard' : guard === undefined ? 'loading' : 'no guard on this rollout'}</span></span>`
  }
  const v = String(g.verdict ?? 'unknown')
  const cls = /pass|ok|healthy/.test(v) ? 'ok' : /fail|breach|rollback/.test(v) ? 'bad' : 'warn'
  const win = g.window && typeof g.window === 'object' ? `${g.window.kind ?? 'window'} of ${dur(g.window.ms ?? 0)}` : g.window
  const l = g.backends?.legacy
  const n = g.backends?.new
  return html`<span data-testid=${`verdict-${name}`}>
    <span class="badge ${cls}">${v}</span>
    ${win ? html` <span class="dim">over the ${win}${g.scope ? `, ${g.scope}` : ''}</span>` : ''}
    ${l && n ? html`<div class="dim">errors: legacy ${pct(l.errorRate)} (${l.errors}/${l.requests}), new ${pct(n.errorRate)} (${n.errors}/${n.requests})
      · p99 legacy ${num(l.p99Ms, 1)} ms, new ${num(n.p99Ms, 1)} ms</div>` : ''}
    ${g.errorRate ? html`<div class="dim">error-rate Δ ${pct(g.errorRate.delta)} [${pct(g.errorRate.lower)}, ${pct(g.errorRate.upper)}], p=${num(g.errorRate.pValue, 4)}</div>` : ''}
    ${g.latency ? html`<div class="dim">p99 ratio new/legacy ${num(g.latency.ratio, 2)}, p=${num(g.latency.pValue, 4)}</div>` : ''}
    ${Array.isArray(g.reasons) && g.reasons.length ? html`<div>${g.reasons.join('; ')}</div>` : ''}
  </span>`
}

function SampleRatio ({ sr }) {
  if (!sr || sr.n === 0) return html`<span class="dim">no percent-decided requests in the last minute</span>`
  const cls = sr.ok === false ? 'bad' : 'ok'
  return html`<span><span class="badge ${cls}">${sr.ok === false ? 'mismatch' : 'ok'}</span>
    ${' '}${pct(sr.observed)} on new vs ${pct(sr.expected)} expected over ${sr.n} requests (p=${num(sr.pValue, 4)})</span>`
}

function Plan ({ name, plan, ro, disabledWhy, act }) {
  if (plan === undefined) return html`<span class="dim">no plan</span>`
  if (plan === null) return html`<span class="dim">plan not started</span>`
  const steps = plan.steps ?? []
  const left = plan.holdMs !== undefined && plan.since ? plan.holdMs - (Date.now() - Date.parse(plan.since)) : undefined
  return html`<span>
    step ${plan.step + 1}/${steps.length} (${steps[plan.step] ?? '–'}%) · ${plan.state}${plan.paused ? ' (paused)' : ''}
    ${left !== undefined && plan.state !== 'done' ? html` · hold left ${dur(left)}` : ''}
    ${plan.note ? html`<div class="dim">${plan.note}</div>` : ''}
    <div class="row">
      <button data-testid=${`plan-${plan.paused ? 'resume' : 'pause'}-${name}`} disabled=${ro} title=${ro ? disabledWhy : ''}
        onClick=${() => act(`${plan.paused ? 'resume' : 'pause'} the plan of ${name}`, 'POST', `/admin/rollouts/${encodeURIComponent(name)}/plan/${plan.paused ? 'resume' : 'pause'}`, {})}>
        ${plan.paused ? 'Resume plan' : 'Pause plan'}</button>
    </div>
  </span>`
}

function RolloutCard ({ name, r, stats, guard, ro, disabledWhy, askPercent, askUndo }) {
  const [value, setValue] = useState('')
  const regions = Object.entries(r.regions ?? {})
  const segments = r.segments && Object.entries(r.segments)
  return html`<section class="card ${r.rollback ? 'rolled' : ''}" data-testid=${`rollout-${name}`}>
    <h3><span>${name}</span><span class="pct" data-testid=${`percent-${name}`}>${r.percent}%</span></h3>
    <div class="dim">last change by ${r.updatedBy} via ${r.source}, ${ago(r.updatedAt)}</div>
    <dl>
      <dt>rollback</dt><dd>${r.rollback
        ? html`<span class="badge bad">${r.rollback.mode}</span> by ${r.rollback.by} ${ago(r.rollback.at)}: ${r.rollback.reason}${r.rollback.propagated ? '' : html` <span class="badge warn">not yet propagated</span>`}`
        : html`<span class="dim">none</span>`}</dd>
      <dt>regions</dt><dd>${regions.length ? regions.map(([k, v]) => html`<span class="chip">${k} ${v}%</span>`) : html`<span class="dim">none</span>`}</dd>
      ${segments ? html`<dt>segments</dt><dd>${segments.map(([k, v]) => html`<span class="chip">${k} ${typeof v === 'object' ? json(v) : `${v}%`}</span>`)}</dd>` : ''}
      <dt>plan</dt><dd><${Plan} name=${name} plan=${r.plan} ro=${ro} disabledWhy=${disabledWhy} act=${askPercent.act} /></dd>
      <dt>guard</dt><dd><${Verdict} name=${name} guard=${guard} /></dd>
      <dt>split</dt><dd><${SampleRatio} sr=${stats?.rollouts?.[name]?.sampleRatio} /></dd>
    </dl>
    <form class="row" novalidate onSubmit=${(e) => { e.preventDefault(); askPercent.open(name, r.percent, value) }}>
      <input data-testid=${`set-percent-${name}`} type="number" min="0" max="100" step="0.01" placeholder=${String(r.percent)}
        value=${value} onInput=${(e) => setValue(e.target.value)} disabled=${ro} title=${ro ? disabledWhy : 'new percent (0–100, two decimals at most)'} />
      <button data-testid=${`apply-${name}`} type="submit" class="primary" disabled=${ro} title=${ro ? disabledWhy : ''}>Set percent…</button>
      <button data-testid=${`undo-${name}`} type="button" disabled=${ro} title=${ro ? disabledWhy : 'revert the last change of this rollout, from the audit'}
        onClick=${() => askUndo(name)}>Undo…</button>
    </form>
  </section>`
}

// ---- shadow, audit, explain -----------------------------------------------------------------

function Mismatches ({ summary, samples, route, setRoute }) {
  const routes = Object.entries(summary?.routes ?? {})
  return html`<section data-testid="mismatches">
    <h2>Shadow comparisons</h2>
    ${routes.length === 0 ? html`<p class="dim">no route has shadow traffic</p>` : html`
    <table>
      <thead><tr><th>route</th><th>match</th><th>mismatch</th><th>error</th><th>dropped</th><th>mismatch rate</th><th>top fields</th></tr></thead>
      <tbody>${routes.map(([name, s]) => html`<tr>
        <td>${name}</td><td class="num">${s.match}</td><td class="num">${s.mismatch}</td><td class="num">${s.error}</td><td class="num">${s.dropped}</td>
        <td class="num">${s.matchRate === null ? '–' : pct(1 - s.matchRate)}</td>
        <td>${(s.topFields ?? []).slice(0, 5).map((f) => html`<span class="chip">${f.field} ×${f.count}</span>`)}</td></tr>`)}</tbody>
    </table>`}
    <div class="row spaced">
      <label>latest samples of <select value=${route} onChange=${(e) => setRoute(e.target.value)}>
        <option value="">every route</option>${routes.map(([name]) => html`<option value=${name}>${name}</option>`)}</select></label>
      <span class="dim">(redacted before they were stored)</span>
    </div>
    ${(samples ?? []).length === 0 ? html`<p class="dim">no mismatch sample</p>` : html`
    <table>
      <thead><tr><th>at</th><th>route</th><th>request</th><th>fields</th><th>primary</th><th>shadow</th></tr></thead>
      <tbody>${samples.map((s) => html`<tr>
        <td>${ago(s.at)}</td><td>${s.route}</td><td>${s.method} ${s.path}</td><td>${(s.fields ?? []).join(', ')}</td>
        <td><pre>${s.primary?.backend} ${s.primary?.status}\n${json(s.primary?.body)}</pre></td>
        <td><pre>${s.shadow?.backend} ${s.shadow?.status}\n${json(s.shadow?.body)}</pre></td></tr>`)}</tbody>
    </table>`}
  </section>`
}

function Audit ({ entries }) {
  return html`<section>
    <h2>Audit log</h2>
    <table data-testid="audit">
      <thead><tr><th>at</th><th>actor</th><th>source</th><th>action</th><th>rollout</th><th>before → after</th><th>reason</th></tr></thead>
      <tbody>${(entries ?? []).map((e) => html`<tr>
        <td title=${e.at}>${ago(e.at)}</td><td>${e.actor}</td><td>${e.source}</td><td>${e.action}</td><td>${e.rollout ?? '*'}</td>
        <td>${json(e.before)} → ${json(e.after)}</td><td>${e.reason ?? ''}</td></tr>`)}</tbody>
    </table>
  </section>`
}

function Explain ({ token, rollouts, onError }) {
  const [form, setForm] = useState({ key: '', rollout: '', region: '', attributes: '' })
  const [result, setResult] = useState(null)
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value })
  const submit = async (e) => {
    e.preventDefault()
    const rollout = form.rollout || rollouts[0]
    if (!form.rollout) setForm({ ...form, rollout })
    try {
      let body
      if (form.attributes.trim()) {
        // a whole request (headers, cookies, query, path, clientIp): segments decide on more than
        // the key, so the POST form explains a request as the gateway would see it (DESIGN.md §8)
        let described
        try { described = JSON.parse(form.attributes) } catch { described = null }
        if (described === null || typeof described !== 'object' || Array.isArray(described)) {
          throw new Error('request: not a JSON object (for example {"headers": {"x-user-id": "u1", "x-plan": "gold"}})')
        }
        body = await api(token, 'POST', '/admin/explain', { rollout, ...described })
      } else {
        const q = new URLSearchParams({ key: form.key, rollout, ...(form.region ? { region: form.region } : {}) })
        body = await api(token, 'GET', `/admin/explain?${q}`)
      }
      setResult(body)
      onError(null)
    } catch (err) {
      setResult(null)
      onError(errText(err))
    }
  }
  return html`<section>
    <h2>Explain a decision</h2>
    <form data-testid="explain" class="row" onSubmit=${submit}>
      <input name="key" placeholder="cohort key (user id)" value=${form.key} onInput=${set('key')} />
      <select name="rollout" value=${form.rollout || rollouts[0]} onChange=${set('rollout')}>${rollouts.map((n) => html`<option value=${n}>${n}</option>`)}</select>
      <input name="region" placeholder="region (optional)" value=${form.region} onInput=${set('region')} />
      <input name="attributes" placeholder='or a request: {"headers": {...}}' title='a JSON request description for POST /admin/explain: headers, cookies, query, path, method, clientIp' value=${form.attributes} onInput=${set('attributes')} />
      <button type="submit">Explain</button>
    </form>
    <div data-testid="explain-result" data-key=${result?.key ?? ''} data-backend=${result?.backend ?? ''} data-reason=${result?.reason ?? ''} data-bucket=${result?.bucket ?? ''}>
      ${result ? html`<p><b>${result.backend}</b> (reason <b>${result.reason}</b>, bucket ${result.bucket})</p><pre class="dim">${JSON.stringify(result, null, 2)}</pre>` : html`<p class="dim">which system would serve this user, and why</p>`}
    </div>
  </section>`
}

// ---- dialogs --------------------------------------------------------------------------------

function Dialog ({ title, children, onCancel, onConfirm, confirmLabel, danger, canConfirm }) {
  useEffect(() => {
    const esc = (e) => { if (e.key === 'Escape') onCancel() }
    window.addEventListener('keydown', esc)
    return () => window.removeEventListener('keydown', esc)
  }, [onCancel])
  return html`<div class="overlay"><div class="dialog" role="dialog" aria-modal="true" aria-label=${title}>
    <h3>${title}</h3>
    ${children}
    <div class="row">
      <button data-testid="confirm" class=${danger ? 'danger' : 'primary'} disabled=${!canConfirm} onClick=${onConfirm}>${confirmLabel}</button>
      <button data-testid="cancel" onClick=${onCancel}>Cancel</button>
    </div>
  </div></div>`
}

function RollbackDialog ({ rollouts, onCancel, onConfirm }) {
  const [reason, setReason] = useState('')
  const [mode, setMode] = useState('hard')
  const [rollout, setRollout] = useState('')
  return html`<${Dialog} title="Roll back" danger confirmLabel="Roll back now" canConfirm=${reason.trim().length > 0}
      onCancel=${onCancel} onConfirm=${() => onConfirm({ reason: reason.trim(), mode, ...(rollout ? { rollout } : {}) })}>
    <label>rollout <select value=${rollout} onChange=${(e) => setRollout(e.target.value)}>
      <option value="">every rollout</option>${rollouts.map((n) => html`<option value=${n}>${n}</option>`)}</select></label>
    <label>mode <select data-testid="mode" value=${mode} onChange=${(e) => setMode(e.target.value)}>
      <option value="hard">hard: everything to legacy</option>
      <option value="drain">drain: orders new already owns keep going there</option></select></label>
    <p class="dim">${mode === 'hard' ? 'Requests for orders only new holds get 404 from legacy: for systems that share their data.' : 'New orders go to legacy; payments and callbacks of orders on new still reach new.'}</p>
    <label>reason (required, lands in the audit)
      <textarea data-testid="reason" value=${reason} onInput=${(e) => setReason(e.target.value)} placeholder="why, for the people reading the audit later"></textarea></label>
  </${Dialog}>`
}

function PercentDialog ({ name, from, to, onCancel, onConfirm }) {
  const [reason, setReason] = useState('')
  return html`<${Dialog} title=${`Set ${name}`} confirmLabel="Apply" canConfirm=${true} onCancel=${onCancel}
      onConfirm=${() => onConfirm({ percent: to, ...(reason.trim() ? { reason: reason.trim() } : {}) })}>
    <div class="fromto" data-testid="from-to">${from}% → ${to}%</div>
    <label>reason (optional) <input value=${reason} onInput=${(e) => setReason(e.target.value)} /></label>
  </${Dialog}>`
}

// the same plan as `dualtrack undo` (console/undo.js): what the last change was, and the calls that revert it
function UndoDialog ({ name, entry, plan, onCancel, onConfirm }) {
  const refused = 'refused' in plan
  return html`<${Dialog} title=${`Undo the last change of ${name}`} confirmLabel="Undo" canConfirm=${!refused} onCancel=${onCancel} onConfirm=${onConfirm}>
    <p data-testid="undo-summary">${entry.action} by ${entry.actor} ${ago(entry.at)}: <span class="fromto">${json(entry.after)} → ${json(entry.before)}</span></p>
    ${refused
      ? html`<p class="badge bad" data-testid="undo-refused">${plan.refused}</p>`
      : html`<ul class="dim">${plan.calls.map((c) => html`<li>${c.method} ${c.path} ${json(c.body)}</li>`)}</ul>${plan.note ? html`<p>${plan.note}</p>` : ''}`}
  </${Dialog}>`
}

// ---- the page -------------------------------------------------------------------------------

function Console ({ token, me, signOut }) {
  const [state, setState] = useState(null)
  const [stats, setStats] = useState(null)
  const [guard, setGuard] = useState(undefined)
  const [audit, setAudit] = useState([])
  const [summary, setSummary] = useState(null)
  const [samples, setSamples] = useState([])
  const [route, setRoute] = useState('')
  const [error, setError] = useState(null)
  const [dialog, setDialog] = useState(null)
  const [refreshed, setRefreshed] = useState(null)
  const guardMissing = useRef(false)

  const ro = me.role !== 'operator'
  const disabledWhy = ro ? `signed in as ${me.name} (viewer): only an operator token can change the rollout` : ''

  const refresh = useCallback(async () => {
    try {
      const [s, st, a, sum, mm] = await Promise.all([
        api(token, 'GET', '/admin/state'),
        api(token, 'GET', '/admin/stats?window=15m'),
        api(token, 'GET', '/admin/audit?limit=50'),
        api(token, 'GET', '/admin/shadow/summary').catch(() => null),
        api(token, 'GET', `/admin/shadow/mismatches?limit=10${route ? `&route=${encodeURIComponent(route)}` : ''}`).catch(() => ({ samples: [] }))
      ])
      setState(s); setStats(st); setAudit(a.entries); setSummary(sum); setSamples(mm.samples)
      // the guard's verdicts (GET /admin/guard: {rollouts: {NAME: verdict}}); a gateway without it
      // answers 404: ask once, then stop asking
      if (!guardMissing.current) {
        try {
          const body = await api(token, 'GET', '/admin/guard')
          const g = {}
          for (const name of Object.keys(s.rollouts)) g[name] = body?.rollouts?.[name] ?? (body?.verdict !== undefined && body?.rollout === name ? body : undefined)
          setGuard(g)
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) { guardMissing.current = true; setGuard(null) } else throw err
        }
      }
      setRefreshed(new Date())
    } catch (err) {
      setError(errText(err))
      if (err instanceof ApiError && err.status === 401) signOut(errText(err))
    }
  }, [token, route])

  useEffect(() => {
    void refresh()
    const id = setInterval(() => { if (!document.hidden) void refresh() }, REFRESH_MS)
    return () => clearInterval(id)
  }, [refresh])

  const act = async (what, method, path, body) => {
    try {
      await api(token, method, path, body)
      setError(null)
      setDialog(null)
      await refresh()
    } catch (err) {
      setDialog(null)
      setError(`${what}: ${errText(err)}`)
    }
  }
  const askPercent = {
    act,
    open (name, from, value) {
      if (value === '' || value === undefined) { setError(`${name}: type a percent first`); return }
      const to = Number(value)
      setDialog({ kind: 'percent', name, from, to })
    }
  }
  // the newest audit entry of the rollout (the table shows 50 of every rollout: ask for more)
  const askUndo = async (name) => {
    try {
      const [{ entries }, s] = await Promise.all([api(token, 'GET', '/admin/audit?limit=1000'), api(token, 'GET', '/admin/state')])
      const entry = entries.find((e) => e.rollout === name)
      if (entry === undefined) { setError(`undo ${name}: no change of ${name} in the audit`); return }
      setDialog({ kind: 'undo', name, entry, plan: undoOf(name, entry, s.rollouts[name], `undo ${entry.action} by ${entry.actor} at ${entry.at}`) })
    } catch (err) {
      setError(`undo ${name}: ${errText(err)}`)
    }
  }
  // in order: a plan is paused before the percent it set is put back
  const undo = async (name, calls) => {
    try {
      for (const c of calls) await api(token, c.method, c.path, c.body)
      setError(null)
    } catch (err) {
      setError(`undo ${name}: ${errText(err)}`)
    }
    setDialog(null)
    await refresh()
  }
  const names = Object.keys(state?.rollouts ?? {})
  const anyRolledBack = names.some((n) => state.rollouts[n].rollback)

  return html`
    <header>
      <h1>dualtrack console</h1>
      <span class="who" data-testid="who" data-role=${me.role}>${me.name} (${me.role})</span>
      ${state ? html`<span class="dim">state v${state.version} · store ${state.store?.store ?? ''} ${state.store?.up ? 'up' : html`<span class="badge warn">down</span>`}${state.store?.pending ? ` · ${state.store.pending} pending` : ''}</span>` : ''}
      <span class="spacer"></span>
      <span class="dim">${refreshed ? `updated ${refreshed.toLocaleTimeString()}` : ''}</span>
      <button data-testid="rollback" class="danger" disabled=${ro} title=${ro ? disabledWhy : 'send users back to legacy now'} onClick=${() => setDialog({ kind: 'rollback' })}>Roll back…</button>
      <button data-testid="resume" disabled=${ro} title=${ro ? disabledWhy : anyRolledBack ? 'resume: percentages as before the rollback' : 'nothing is rolled back'}
        onClick=${() => act('resume', 'POST', '/admin/resume', {})}>Resume</button>
      <button onClick=${() => signOut(null)}>Sign out</button>
    </header>
    <main>
      <${ErrorBox} error=${error} />
      ${state === null ? html`<p class="dim">loading…</p>` : html`
        <div class="cards">${names.map((n) => html`<${RolloutCard} key=${n} name=${n} r=${state.rollouts[n]} stats=${stats} guard=${guard}
          ro=${ro} disabledWhy=${disabledWhy} askPercent=${askPercent} askUndo=${askUndo} />`)}</div>`}
      <${Charts} stats=${stats} state=${state} />
      <div class="two">
        <${Mismatches} summary=${summary} samples=${samples} route=${route} setRoute=${setRoute} />
        <${Explain} token=${token} rollouts=${names} onError=${setError} />
      </div>
      <${Audit} entries=${audit} />
    </main>
    ${dialog?.kind === 'rollback' ? html`<${RollbackDialog} rollouts=${names} onCancel=${() => setDialog(null)}
      onConfirm=${(body) => act('roll back', 'POST', '/admin/rollback', body)} />` : ''}
    ${dialog?.kind === 'percent' ? html`<${PercentDialog} name=${dialog.name} from=${dialog.from} to=${dialog.to} onCancel=${() => setDialog(null)}
      onConfirm=${(body) => act(`set ${dialog.name}`, 'PUT', `/admin/rollouts/${encodeURIComponent(dialog.name)}`, body)} />` : ''}
    ${dialog?.kind === 'undo' ? html`<${UndoDialog} name=${dialog.name} entry=${dialog.entry} plan=${dialog.plan} onCancel=${() => setDialog(null)}
      onConfirm=${() => undo(dialog.name, dialog.plan.calls)} />` : ''}`
}

function App () {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY))
  const [me, setMe] = useState(null)
  const [error, setError] = useState(null)
  useEffect(() => {
    if (!token) return
    api(token, 'GET', '/admin/whoami').then((who) => { setMe(who); setError(null) }, (err) => {
      sessionStorage.removeItem(TOKEN_KEY)
      setToken(null)
      setError(errText(err))
    })
  }, [token])
  const signIn = (t) => { sessionStorage.setItem(TOKEN_KEY, t); setMe(null); setToken(t) }
  const signOut = (why) => { sessionStorage.removeItem(TOKEN_KEY); setMe(null); setToken(null); setError(why) }
  if (!token) return html`<${SignIn} onToken=${signIn} error=${error} />`
  if (!me) return html`<p class="boot">signing in…</p>`
  return html`<${Console} token=${token} me=${me} signOut=${signOut} />`
}

const root = document.getElementById('root')
root.textContent = ''
render(html`<${App} />`, root)
